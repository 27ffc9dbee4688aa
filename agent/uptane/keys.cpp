#include "agent/uptane/keys.h"

#include "agent/common/error.h"
#include "agent/common/hex.h"

namespace ota::uptane {

PublicKey public_key_of(const SigningKey& key) {
    return PublicKey{key.scheme(), key.public_pem()};
}

std::string key_type_of_scheme(const std::string& scheme) {
    if (scheme == kSchemeEcdsaP256) return "ecdsa";
    if (scheme == kSchemeRsaPss) return "rsa";
    return scheme; // "ed25519" is both the TUF keytype and scheme
}

std::string key_id(const PublicKey& key) {
    const Json object{{"keytype", key_type_of_scheme(key.scheme)},
                      {"scheme", key.scheme},
                      {"keyval", Json{{"public", key.pem}}}};
    return sha256_hex(canonical_json(object));
}

Json public_key_to_json(const PublicKey& key) {
    return Json{{"scheme", key.scheme}, {"public", key.pem}};
}

PublicKey public_key_from_json(const Json& json, const std::string& what) {
    if (!json.is_object() || json.size() != 2)
        throw Error(ErrorKind::Malformed, what + ": a key is {\"scheme\", \"public\"}");
    auto scheme = json.find("scheme");
    auto pem = json.find("public");
    if (scheme == json.end() || !scheme->is_string() || pem == json.end() || !pem->is_string())
        throw Error(ErrorKind::Malformed, what + ": \"scheme\" and \"public\" must be strings");
    PublicKey key{scheme->get<std::string>(), pem->get<std::string>()};
    if (key.scheme.empty() || key.scheme.size() > kMaxSchemeName)
        throw Error(ErrorKind::Malformed, what + ": bad key scheme");
    if (key.pem.empty() || key.pem.size() > kMaxPublicKeyPem)
        throw Error(ErrorKind::TooLarge, what + ": public key is empty or larger than " +
                                             std::to_string(kMaxPublicKeyPem) + " bytes");
    return key;
}

Json sign_document(const Json& signed_part, const SigningKey& key) {
    const std::vector<uint8_t> sig = key.sign(canonical_json(signed_part));
    return Json{{"signed", signed_part},
                {"signatures", Json::array({Json{{"keyid", key_id(public_key_of(key))},
                                                 {"method", key.scheme()},
                                                 {"sig", to_hex(sig)}}})}};
}

bool document_signed_by(const Json& doc, const PublicKey& key) {
    try {
        if (!doc.is_object()) return false;
        auto signed_part = doc.find("signed");
        auto sigs = doc.find("signatures");
        if (signed_part == doc.end() || !signed_part->is_object() || sigs == doc.end() ||
            !sigs->is_array() || sigs->size() > kMaxDocumentSignatures)
            return false;
        const std::string id = key_id(key);
        const std::string message = canonical_json(*signed_part);
        for (const auto& s : *sigs) {
            if (!s.is_object()) continue;
            auto keyid = s.find("keyid");
            auto sig = s.find("sig");
            if (keyid == s.end() || !keyid->is_string() || *keyid != id) continue;
            if (sig == s.end() || !sig->is_string()) continue;
            // A signature naming another method than the registered key's scheme is not ours.
            if (auto m = s.find("method"); m != s.end() && (!m->is_string() || *m != key.scheme))
                continue;
            const std::string& hex = sig->get_ref<const std::string&>();
            if (hex.empty() || hex.size() > 2 * 1024 || !is_hex(hex)) continue;
            if (verify_signature(key.scheme, key.pem, message, from_hex(hex))) return true;
        }
        return false;
    } catch (const std::exception&) {
        return false; // e.g. a float in "signed" (not canonical JSON): not a valid signature
    }
}

} // namespace ota::uptane
