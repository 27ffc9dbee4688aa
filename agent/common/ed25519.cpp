#include "ed25519.h"

#include "error.h"

#include <algorithm>
#include <mutex>
#include <sodium.h>

namespace ota::ed25519 {

namespace {

// RFC 8410 DER prefixes: the fixed ASN.1 around the 32 key bytes (PKCS#8 v1 without the optional
// public key, as OpenSSL writes it, and SubjectPublicKeyInfo).
constexpr uint8_t kPkcs8Prefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                    0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
constexpr uint8_t kSpkiPrefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                   0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
constexpr const char* kPrivateLabel = "PRIVATE KEY";
constexpr const char* kPublicLabel = "PUBLIC KEY";

bool sodium_ready() {
    static std::once_flag once;
    static bool ready = false;
    std::call_once(once, [] { ready = sodium_init() >= 0; });
    return ready;
}

void require_sodium() {
    if (!sodium_ready()) throw Error(ErrorKind::Unsupported, "libsodium failed to initialise");
}

// libsodium wants a valid pointer even for an empty message.
const unsigned char* message_bytes(std::string_view message) {
    static const unsigned char empty = 0;
    return message.empty() ? &empty : reinterpret_cast<const unsigned char*>(message.data());
}

std::string pem_encode(const char* label, const std::vector<uint8_t>& der) {
    std::string b64(sodium_base64_ENCODED_LEN(der.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), der.data(), der.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    b64.resize(b64.find('\0'));
    std::string out = std::string("-----BEGIN ") + label + "-----\n";
    for (size_t i = 0; i < b64.size(); i += 64)
        out += b64.substr(i, 64) + "\n";
    return out + "-----END " + label + "-----\n";
}

// The DER inside the first "-----BEGIN label-----" block; nullopt when there is none.
std::optional<std::vector<uint8_t>> pem_decode(const std::string& pem, const char* label,
                                               size_t max_der) {
    const std::string begin = std::string("-----BEGIN ") + label + "-----";
    const std::string end = std::string("-----END ") + label + "-----";
    const size_t b = pem.find(begin);
    if (b == std::string::npos) return std::nullopt;
    const size_t body = b + begin.size();
    const size_t e = pem.find(end, body);
    if (e == std::string::npos) return std::nullopt;
    std::vector<uint8_t> der(max_der);
    size_t len = 0;
    const char* b64_end = nullptr;
    if (sodium_base642bin(der.data(), der.size(), pem.data() + body, e - body, " \t\r\n", &len,
                          &b64_end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        b64_end != pem.data() + e)
        return std::nullopt;
    der.resize(len);
    return der;
}

} // namespace

bool verify(const std::vector<uint8_t>& public_key, std::string_view message,
            const std::vector<uint8_t>& signature) {
    if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES)
        return false;
    if (!sodium_ready()) return false;
    return crypto_sign_verify_detached(signature.data(), message_bytes(message), message.size(),
                                       public_key.data()) == 0;
}

KeyPair KeyPair::generate() {
    require_sodium();
    std::array<uint8_t, kSeedSize> seed;
    randombytes_buf(seed.data(), seed.size());
    KeyPair k = from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    return k;
}

KeyPair KeyPair::from_seed(const std::array<uint8_t, kSeedSize>& seed) {
    require_sodium();
    KeyPair k;
    k.seed_ = seed;
    unsigned char secret[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(k.public_key_.data(), secret, k.seed_.data());
    sodium_memzero(secret, sizeof secret);
    return k;
}

std::optional<KeyPair> KeyPair::from_private_pem(const std::string& pem) {
    auto der = pem_decode(pem, kPrivateLabel, 256);
    if (!der || der->size() != sizeof kPkcs8Prefix + kSeedSize ||
        !std::equal(std::begin(kPkcs8Prefix), std::end(kPkcs8Prefix), der->begin()))
        return std::nullopt;
    std::array<uint8_t, kSeedSize> seed;
    std::copy(der->begin() + sizeof kPkcs8Prefix, der->end(), seed.begin());
    sodium_memzero(der->data(), der->size());
    KeyPair k = from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    return k;
}

KeyPair::~KeyPair() {
    sodium_memzero(seed_.data(), seed_.size());
}

std::vector<uint8_t> KeyPair::sign(std::string_view message) const {
    require_sodium();
    unsigned char secret[crypto_sign_SECRETKEYBYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_seed_keypair(pk, secret, seed_.data());
    std::vector<uint8_t> sig(crypto_sign_BYTES);
    unsigned long long len = 0;
    const int rc =
        crypto_sign_detached(sig.data(), &len, message_bytes(message), message.size(), secret);
    sodium_memzero(secret, sizeof secret);
    if (rc != 0 || len != crypto_sign_BYTES)
        throw Error(ErrorKind::Unsupported, "Ed25519 signing failed");
    return sig;
}

std::string KeyPair::private_pem() const {
    std::vector<uint8_t> der(std::begin(kPkcs8Prefix), std::end(kPkcs8Prefix));
    der.insert(der.end(), seed_.begin(), seed_.end());
    std::string pem = pem_encode(kPrivateLabel, der);
    sodium_memzero(der.data(), der.size());
    return pem;
}

std::string KeyPair::public_pem() const {
    std::vector<uint8_t> der(std::begin(kSpkiPrefix), std::end(kSpkiPrefix));
    der.insert(der.end(), public_key_.begin(), public_key_.end());
    return pem_encode(kPublicLabel, der);
}

} // namespace ota::ed25519
