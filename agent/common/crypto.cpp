#include "crypto.h"

#include "ed25519.h"
#include "error.h"
#include "fs.h"
#include "hex.h"

#include <fcntl.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/version.h>
#include <mutex>
#include <optional>
#include <psa/crypto.h>

namespace ota {

static void ensure_psa() {
    static std::once_flag once;
    static psa_status_t status = PSA_SUCCESS;
    std::call_once(once, [] { status = psa_crypto_init(); });
    if (status != PSA_SUCCESS)
        throw Error(ErrorKind::Unsupported, "psa_crypto_init failed: " + std::to_string(status));
}

size_t hash_length(HashAlgorithm algorithm) {
    return algorithm == HashAlgorithm::Sha256 ? 32 : 64;
}

namespace {

class PsaHashStream : public HashStream {
public:
    explicit PsaHashStream(HashAlgorithm algorithm)
        : alg_(algorithm == HashAlgorithm::Sha256 ? PSA_ALG_SHA_256 : PSA_ALG_SHA_512) {
        ensure_psa();
        if (psa_hash_setup(&op_, alg_) != PSA_SUCCESS)
            throw Error(ErrorKind::Unsupported, "psa_hash_setup failed");
    }
    ~PsaHashStream() override { psa_hash_abort(&op_); }
    PsaHashStream(const PsaHashStream&) = delete;
    PsaHashStream& operator=(const PsaHashStream&) = delete;

    void update(const void* data, size_t size) override {
        if (psa_hash_update(&op_, static_cast<const uint8_t*>(data), size) != PSA_SUCCESS)
            throw Error(ErrorKind::Unsupported, "psa_hash_update failed");
    }
    void finish(uint8_t* out) override {
        size_t len = 0;
        const size_t want = PSA_HASH_LENGTH(alg_);
        if (psa_hash_finish(&op_, out, want, &len) != PSA_SUCCESS || len != want)
            throw Error(ErrorKind::Unsupported, "psa_hash_finish failed");
    }

private:
    psa_hash_operation_t op_ = PSA_HASH_OPERATION_INIT;
    psa_algorithm_t alg_;
};

std::mutex provider_mutex;
HashProvider& current_provider() {
    static HashProvider provider;
    return provider;
}

std::unique_ptr<HashStream> start_stream(HashAlgorithm algorithm) {
    HashProvider provider;
    {
        std::lock_guard<std::mutex> lock(provider_mutex);
        provider = current_provider();
    }
    if (!provider) return mbedtls_hash_stream(algorithm);
    std::unique_ptr<HashStream> stream = provider(algorithm);
    if (!stream) throw Error(ErrorKind::Unsupported, "the hash engine returned no stream");
    return stream;
}

} // namespace

std::unique_ptr<HashStream> mbedtls_hash_stream(HashAlgorithm algorithm) {
    return std::make_unique<PsaHashStream>(algorithm);
}

void set_hash_provider(HashProvider provider) {
    std::lock_guard<std::mutex> lock(provider_mutex);
    current_provider() = std::move(provider);
}

struct Hasher::Impl {
    std::unique_ptr<HashStream> stream;
    HashAlgorithm algorithm;
};

Hasher::Hasher(HashAlgorithm algorithm)
    : impl_(std::make_unique<Impl>(Impl{start_stream(algorithm), algorithm})) {}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, size_t size) {
    if (size == 0) return;
    impl_->stream->update(data, size);
}

std::vector<uint8_t> Hasher::finish() {
    std::vector<uint8_t> out(hash_length(impl_->algorithm));
    impl_->stream->finish(out.data());
    return out;
}

std::string Hasher::finish_hex() {
    return to_hex(finish());
}

std::vector<uint8_t> sha256(const void* data, size_t size) {
    Hasher h(HashAlgorithm::Sha256);
    h.update(data, size);
    return h.finish();
}

std::string sha256_hex(std::string_view data) {
    Hasher h(HashAlgorithm::Sha256);
    h.update(data);
    return h.finish_hex();
}

std::string sha512_hex(std::string_view data) {
    Hasher h(HashAlgorithm::Sha512);
    h.update(data);
    return h.finish_hex();
}

std::string file_sha256_hex(const std::string& path, int64_t length) {
    UniqueFd fd = open_or_throw(path, O_RDONLY);
    Hasher h;
    std::vector<uint8_t> buf(1 << 20);
    uint64_t remaining = length < 0 ? UINT64_MAX : static_cast<uint64_t>(length);
    while (remaining > 0) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining));
        size_t n = read_full(fd.get(), buf.data(), want, path);
        h.update(buf.data(), n);
        remaining -= n;
        if (n < want) {
            if (length >= 0) throw Error(ErrorKind::Io, path + " is shorter than expected");
            break;
        }
    }
    return h.finish_hex();
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

void random_bytes(void* out, size_t size) {
    ensure_psa();
    if (psa_generate_random(static_cast<uint8_t*>(out), size) != PSA_SUCCESS)
        throw Error(ErrorKind::Unsupported, "psa_generate_random failed");
}

// --- signatures -------------------------------------------------------------------------------

namespace {

struct PkContext {
    mbedtls_pk_context pk;
    PkContext() { mbedtls_pk_init(&pk); }
    ~PkContext() { mbedtls_pk_free(&pk); }
    PkContext(const PkContext&) = delete;
    PkContext& operator=(const PkContext&) = delete;
};

bool is_p256(const mbedtls_pk_context& pk) {
    if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY) return false;
#if MBEDTLS_VERSION_MAJOR >= 3
    return mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(grp).id == MBEDTLS_ECP_DP_SECP256R1;
#else
    return mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
#endif
}

int rng(void* ctx, unsigned char* out, size_t len) {
    (void)ctx;
    return psa_generate_random(out, len) == PSA_SUCCESS ? 0 : -1;
}

} // namespace

static bool verify_with_mbedtls(const std::string& scheme, const std::string& public_key_pem,
                                std::string_view message, const std::vector<uint8_t>& signature) {
    if (signature.empty() || signature.size() > MBEDTLS_PK_SIGNATURE_MAX_SIZE) return false;
    ensure_psa();
    PkContext key;
    // mbedtls_pk_parse_public_key wants the terminating NUL counted for PEM input.
    std::string pem = public_key_pem;
    if (mbedtls_pk_parse_public_key(&key.pk, reinterpret_cast<const unsigned char*>(pem.c_str()),
                                    pem.size() + 1) != 0)
        return false;
    std::vector<uint8_t> digest = sha256(message.data(), message.size());
    if (scheme == kSchemeEcdsaP256) {
        if (!is_p256(key.pk)) return false;
        return mbedtls_pk_verify(&key.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                                 signature.data(), signature.size()) == 0;
    }
    if (mbedtls_pk_get_type(&key.pk) != MBEDTLS_PK_RSA || mbedtls_pk_get_bitlen(&key.pk) < 2048)
        return false;
    mbedtls_pk_rsassa_pss_options options{};
    options.mgf1_hash_id = MBEDTLS_MD_SHA256;
    options.expected_salt_len = MBEDTLS_RSA_SALT_LEN_ANY;
    return mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &options, &key.pk, MBEDTLS_MD_SHA256,
                                 digest.data(), digest.size(), signature.data(),
                                 signature.size()) == 0;
}

static bool verify_ed25519(const std::string& public_key_hex, std::string_view message,
                           const std::vector<uint8_t>& signature) {
    // TUF writes Ed25519 public keys as exactly 32 bytes of hex, nothing else.
    if (public_key_hex.size() != 2 * ed25519::kPublicKeySize || !is_hex(public_key_hex))
        return false;
    return ed25519::verify(from_hex(public_key_hex), message, signature);
}

bool verify_signature(const std::string& scheme, const std::string& public_key,
                      std::string_view message, const std::vector<uint8_t>& signature) {
    try {
        if (scheme == kSchemeEd25519) return verify_ed25519(public_key, message, signature);
        if (scheme == kSchemeEcdsaP256 || scheme == kSchemeRsaPss)
            return verify_with_mbedtls(scheme, public_key, message, signature);
        return false;
    } catch (...) {
        return false;
    }
}

// An ECDSA or RSA key lives in the mbedTLS context, an Ed25519 key in `ed`.
struct SigningKey::Impl {
    PkContext key;
    std::optional<ed25519::KeyPair> ed;
};

SigningKey::SigningKey() : impl_(std::make_unique<Impl>()) {}
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

static void set_pss_padding(mbedtls_pk_context& pk) {
#if MBEDTLS_VERSION_MAJOR >= 3
    mbedtls_rsa_set_padding(mbedtls_pk_rsa(pk), MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
#else
    mbedtls_rsa_set_padding(mbedtls_pk_rsa(pk), MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
#endif
}

SigningKey SigningKey::generate(const std::string& scheme, unsigned rsa_bits) {
    ensure_psa();
    SigningKey k;
    k.scheme_ = scheme;
    mbedtls_pk_context& pk = k.impl_->key.pk;
    if (scheme == kSchemeEcdsaP256) {
        if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
            mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), rng, nullptr) != 0)
            throw Error(ErrorKind::Unsupported, "ECDSA P-256 key generation failed");
    } else if (scheme == kSchemeEd25519) {
        k.impl_->ed = ed25519::KeyPair::generate();
    } else if (scheme == kSchemeRsaPss) {
        if (rsa_bits < 2048)
            throw Error(ErrorKind::Config, "RSA keys must have at least 2048 bits");
        if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
            mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), rng, nullptr, rsa_bits, 65537) != 0)
            throw Error(ErrorKind::Unsupported, "RSA key generation failed");
        set_pss_padding(pk);
    } else {
        throw Error(ErrorKind::Unsupported, "unsupported signature scheme: " + scheme);
    }
    return k;
}

SigningKey SigningKey::from_pem(const std::string& private_pem) {
    ensure_psa();
    SigningKey k;
    // mbedTLS 2.28 cannot parse Ed25519 keys: they are recognised by their PKCS#8 form first.
    if (auto ed = ed25519::KeyPair::from_private_pem(private_pem)) {
        k.scheme_ = kSchemeEd25519;
        k.impl_->ed = std::move(*ed);
        return k;
    }
    mbedtls_pk_context& pk = k.impl_->key.pk;
    const auto* data = reinterpret_cast<const unsigned char*>(private_pem.c_str());
#if MBEDTLS_VERSION_MAJOR >= 3
    int rc = mbedtls_pk_parse_key(&pk, data, private_pem.size() + 1, nullptr, 0, rng, nullptr);
#else
    int rc = mbedtls_pk_parse_key(&pk, data, private_pem.size() + 1, nullptr, 0);
#endif
    if (rc != 0) throw Error(ErrorKind::Malformed, "cannot parse private key (PEM)");
    if (is_p256(pk)) {
        k.scheme_ = kSchemeEcdsaP256;
    } else if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA) {
        k.scheme_ = kSchemeRsaPss;
        set_pss_padding(pk);
    } else {
        throw Error(ErrorKind::Unsupported, "private key is neither ECDSA P-256, RSA nor Ed25519");
    }
    return k;
}

std::string SigningKey::keytype() const {
    if (scheme_ == kSchemeEd25519) return "ed25519";
    return scheme_ == kSchemeEcdsaP256 ? "ecdsa" : "rsa";
}

std::string SigningKey::private_pem() const {
    if (impl_->ed) return impl_->ed->private_pem();
    std::vector<unsigned char> buf(16000);
    if (mbedtls_pk_write_key_pem(&impl_->key.pk, buf.data(), buf.size()) != 0)
        throw Error(ErrorKind::Unsupported, "cannot encode private key");
    return std::string(reinterpret_cast<const char*>(buf.data()));
}

std::string SigningKey::public_pem() const {
    if (impl_->ed) return impl_->ed->public_pem();
    std::vector<unsigned char> buf(8000);
    if (mbedtls_pk_write_pubkey_pem(&impl_->key.pk, buf.data(), buf.size()) != 0)
        throw Error(ErrorKind::Unsupported, "cannot encode public key");
    return std::string(reinterpret_cast<const char*>(buf.data()));
}

std::string SigningKey::tuf_public_key() const {
    if (impl_->ed) return to_hex(impl_->ed->public_key().data(), impl_->ed->public_key().size());
    return public_pem();
}

std::vector<uint8_t> SigningKey::sign(std::string_view message) const {
    if (impl_->ed) return impl_->ed->sign(message); // pure Ed25519 signs the message itself
    std::vector<uint8_t> digest = sha256(message.data(), message.size());
    std::vector<uint8_t> sig(MBEDTLS_PK_SIGNATURE_MAX_SIZE);
    size_t len = 0;
#if MBEDTLS_VERSION_MAJOR >= 3
    int rc = mbedtls_pk_sign(&impl_->key.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                             sig.data(), sig.size(), &len, rng, nullptr);
#else
    int rc = mbedtls_pk_sign(&impl_->key.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                             sig.data(), &len, rng, nullptr);
#endif
    if (rc != 0) throw Error(ErrorKind::Unsupported, "signing failed: " + std::to_string(rc));
    sig.resize(len);
    return sig;
}

} // namespace ota
