// Ed25519 (RFC 8032) through libsodium: mbedTLS 2.28 has no Ed25519, and python-tuf, go-tuf and
// Uptane backends make Ed25519 keys by default. Keys are stored as RFC 8410 PEM (PKCS#8 private,
// SubjectPublicKeyInfo public), the form OpenSSL reads and writes.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ota::ed25519 {

inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSignatureSize = 64;
inline constexpr size_t kSeedSize = 32;

// True only for a 32-byte public key and a 64-byte signature that verifies over `message`.
// Never throws.
bool verify(const std::vector<uint8_t>& public_key, std::string_view message,
            const std::vector<uint8_t>& signature);

// A key pair kept as its 32-byte seed (RFC 8032's "secret key"); the seed is wiped on destruction.
class KeyPair {
public:
    static KeyPair generate();
    static KeyPair from_seed(const std::array<uint8_t, kSeedSize>& seed);
    // PKCS#8 "PRIVATE KEY" PEM of an Ed25519 key; nullopt when `pem` is anything else.
    static std::optional<KeyPair> from_private_pem(const std::string& pem);
    KeyPair(const KeyPair&) = default;
    KeyPair& operator=(const KeyPair&) = default;
    ~KeyPair();

    const std::array<uint8_t, kPublicKeySize>& public_key() const { return public_key_; }
    std::vector<uint8_t> sign(std::string_view message) const;
    std::string private_pem() const;
    std::string public_pem() const;

private:
    KeyPair() = default;
    std::array<uint8_t, kSeedSize> seed_{};
    std::array<uint8_t, kPublicKeySize> public_key_{};
};

} // namespace ota::ed25519
