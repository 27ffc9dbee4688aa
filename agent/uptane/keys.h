// ECU keys and the documents they sign (ECU version reports, vehicle version manifests).
//
// A signed document has the shape of TUF metadata:
//   {"signed": {...}, "signatures": [{"keyid": KEYID, "method": SCHEME, "sig": HEX}]}
// and the signature covers the canonical JSON of "signed". The scheme of a key travels with the
// key (the director's inventory, the secondary's answer to get-info), never with the signature,
// so a forged "method" cannot choose the algorithm a verifier uses.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"

#include <string>

namespace ota::uptane {

// Bounds on what a key may be: PEM SubjectPublicKeyInfo of any supported scheme fits easily.
constexpr size_t kMaxPublicKeyPem = 16 * 1024;
constexpr size_t kMaxSchemeName = 64;
// A document carries few signatures; more is hostile.
constexpr size_t kMaxDocumentSignatures = 8;

struct PublicKey {
    std::string scheme; // "ecdsa-sha2-nistp256", "rsassa-pss-sha256", "ed25519", ...
    std::string pem;    // PEM SubjectPublicKeyInfo
};

PublicKey public_key_of(const SigningKey& key);
// TUF's keytype for a scheme ("ecdsa", "rsa", "ed25519"); the scheme itself for others.
std::string key_type_of_scheme(const std::string& scheme);
// The TUF key id: SHA-256 (hex) of the canonical key object
// {"keytype", "scheme", "keyval": {"public": PEM}}.
std::string key_id(const PublicKey& key);

// {"scheme": ..., "public": PEM}: how keys appear in the protocol and the director's inventory.
Json public_key_to_json(const PublicKey& key);
// Strict and bounded; throws Error(Malformed) naming `what`.
PublicKey public_key_from_json(const Json& json, const std::string& what);

Json sign_document(const Json& signed_part, const SigningKey& key);
// True when `doc` is an object with a "signed" part and at most kMaxDocumentSignatures
// signatures, one of which is by `key` (matching key id) and verifies over the canonical "signed".
// Never throws.
bool document_signed_by(const Json& doc, const PublicKey& key);

} // namespace ota::uptane
