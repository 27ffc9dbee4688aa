// Hashing and signatures. Hashes and randomness use mbedTLS's PSA Crypto API; ECDSA and RSA-PSS
// key parsing and signature checks use its pk module, whose calls are the same in mbedTLS 2.28 and
// 3.x (PSA has no PEM/SubjectPublicKeyInfo parser, and 2.28's PSA cannot verify RSA-PSS with any
// salt). Ed25519, which mbedTLS 2.28 lacks, goes through libsodium (ed25519.h).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ota {

enum class HashAlgorithm { Sha256, Sha512 };

// Digest size in bytes: 32 or 64.
size_t hash_length(HashAlgorithm algorithm);

// One running SHA-256 or SHA-512 computation of a hash engine.
class HashStream {
public:
    virtual ~HashStream() = default;
    virtual void update(const void* data, size_t size) = 0;
    // Writes the hash_length() digest bytes to `out`; the stream is not used afterwards.
    virtual void finish(uint8_t* out) = 0;
};

// Where every Hasher of the process gets its hash code. mbedTLS (PSA) is built in and used until
// set_hash_provider() installs another engine (hal/hash_engine.h picks one at startup). Set it
// before other threads start hashing; a Hasher keeps the engine it started with.
using HashProvider = std::function<std::unique_ptr<HashStream>(HashAlgorithm)>;
// An empty provider restores mbedTLS.
void set_hash_provider(HashProvider provider);
// The built-in mbedTLS (PSA) implementation, whatever provider is set.
std::unique_ptr<HashStream> mbedtls_hash_stream(HashAlgorithm algorithm);

// Streaming hash through the process's hash provider; move-only.
class Hasher {
public:
    explicit Hasher(HashAlgorithm algorithm = HashAlgorithm::Sha256);
    ~Hasher();
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    Hasher(Hasher&&) noexcept;
    Hasher& operator=(Hasher&&) noexcept;
    void update(const void* data, size_t size);
    void update(std::string_view s) { update(s.data(), s.size()); }
    std::vector<uint8_t> finish();
    std::string finish_hex();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

std::vector<uint8_t> sha256(const void* data, size_t size);
std::string sha256_hex(std::string_view data);
std::string sha512_hex(std::string_view data);
// Hash of a whole file (or the first `length` bytes of it when length is given), read in chunks.
std::string file_sha256_hex(const std::string& path, int64_t length = -1);
// Constant-time comparison for hashes and MACs.
bool equal_constant_time(std::string_view a, std::string_view b);

void random_bytes(void* out, size_t size);

// Signature schemes as named in TUF metadata.
inline constexpr const char* kSchemeEcdsaP256 = "ecdsa-sha2-nistp256";
inline constexpr const char* kSchemeRsaPss = "rsassa-pss-sha256";
inline constexpr const char* kSchemeEd25519 = "ed25519";

// Verifies `signature` (raw bytes: DER for ECDSA, the PSS block for RSA, 64 bytes for Ed25519)
// over `message` with `public_key` in the form TUF metadata carries it ("keyval"."public"): PEM
// SubjectPublicKeyInfo for ECDSA and RSA-PSS (mbedTLS), 64 hex digits for Ed25519 (libsodium).
// Never throws: an unsupported scheme, a key of the wrong type or a malformed key/signature
// simply do not verify.
bool verify_signature(const std::string& scheme, const std::string& public_key,
                      std::string_view message, const std::vector<uint8_t>& signature);

// A private key for signing (publisher, device reports, tests).
class SigningKey {
public:
    // scheme: kSchemeEcdsaP256, kSchemeRsaPss (rsa_bits used for RSA) or kSchemeEd25519.
    static SigningKey generate(const std::string& scheme, unsigned rsa_bits = 3072);
    // Parses a PEM private key (PKCS#8 for Ed25519); the scheme is inferred from the key type.
    static SigningKey from_pem(const std::string& private_pem);
    SigningKey(SigningKey&&) noexcept;
    SigningKey& operator=(SigningKey&&) noexcept;
    ~SigningKey();

    const std::string& scheme() const { return scheme_; }
    // TUF "keytype": "ecdsa", "rsa" or "ed25519".
    std::string keytype() const;
    std::string private_pem() const;
    // SubjectPublicKeyInfo PEM, for every key type.
    std::string public_pem() const;
    // The public key as TUF metadata carries it: public_pem() for ECDSA and RSA, the 32 key bytes
    // as 64 lower-case hex digits for Ed25519.
    std::string tuf_public_key() const;
    std::vector<uint8_t> sign(std::string_view message) const;

private:
    SigningKey();
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string scheme_;
};

} // namespace ota
