// OpenSSL's libcrypto, loaded with dlopen when the image has it: its SHA-2 code uses SHA-NI on
// x86-64 and the ARMv8 SHA-2 instructions, several times mbedTLS 2.28's speed. The agent neither
// links it nor needs its headers: the few EVP functions below are resolved by name, and their
// signatures are part of OpenSSL's stable ABI since 1.1.0.
#include "hal/hash_engine.h"

#include "agent/common/error.h"

#include <dlfcn.h>
#include <mutex>
#include <vector>

#ifndef OTA_LIBCRYPTO_SONAME
#define OTA_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

namespace ota::hal {

namespace {

// EVP_MD_CTX and EVP_MD are opaque to us.
struct LibCrypto {
    void* (*md_ctx_new)();
    void (*md_ctx_free)(void* ctx);
    int (*digest_init_ex)(void* ctx, const void* md, void* engine);
    int (*digest_update)(void* ctx, const void* data, size_t size);
    int (*digest_final_ex)(void* ctx, unsigned char* out, unsigned int* size);
    const void* sha256 = nullptr;
    const void* sha512 = nullptr;
};

template <typename Fn> bool resolve(void* handle, const char* name, Fn& fn, std::string& missing) {
    fn = reinterpret_cast<Fn>(dlsym(handle, name));
    if (!fn && missing.empty()) missing = name;
    return fn != nullptr;
}

// Loads `soname` once per process and soname (never unloaded: libcrypto registers exit handlers).
// Returns null with *why set when it cannot be used.
const LibCrypto* load(const std::string& soname, std::string* why) {
    static std::mutex mutex;
    static std::vector<std::pair<std::string, std::unique_ptr<LibCrypto>>> loaded;
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& entry : loaded)
        if (entry.first == soname) return entry.second.get();
    void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* error = dlerror();
        *why = "cannot load " + soname + ": " + (error ? error : "unknown error");
        return nullptr;
    }
    auto api = std::make_unique<LibCrypto>();
    std::string missing;
    const void* (*sha256)() = nullptr;
    const void* (*sha512)() = nullptr;
    resolve(handle, "EVP_MD_CTX_new", api->md_ctx_new, missing);
    resolve(handle, "EVP_MD_CTX_free", api->md_ctx_free, missing);
    resolve(handle, "EVP_DigestInit_ex", api->digest_init_ex, missing);
    resolve(handle, "EVP_DigestUpdate", api->digest_update, missing);
    resolve(handle, "EVP_DigestFinal_ex", api->digest_final_ex, missing);
    resolve(handle, "EVP_sha256", sha256, missing);
    resolve(handle, "EVP_sha512", sha512, missing);
    if (!missing.empty()) {
        *why = soname + " has no function " + missing + " (OpenSSL 1.1.0 or newer is needed)";
        return nullptr;
    }
    // OpenSSL 3 looks the implementation up at each init (microseconds; a few hundred inits per
    // install). An EVP_MD_fetch()ed one would be quicker to init but must be freed before
    // OpenSSL's own exit handler runs, which a process-wide cache cannot promise.
    api->sha256 = sha256();
    api->sha512 = sha512();
    if (!api->sha256 || !api->sha512) {
        *why = soname + " offers no SHA-256 or SHA-512 implementation";
        return nullptr;
    }
    loaded.emplace_back(soname, std::move(api));
    return loaded.back().second.get();
}

class OpenSslStream : public HashStream {
public:
    OpenSslStream(const LibCrypto& api, HashAlgorithm algorithm)
        : api_(api), ctx_(api.md_ctx_new()), length_(hash_length(algorithm)) {
        if (!ctx_) throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_MD_CTX_new failed");
        const void* md = algorithm == HashAlgorithm::Sha256 ? api.sha256 : api.sha512;
        if (api_.digest_init_ex(ctx_, md, nullptr) != 1) {
            api_.md_ctx_free(ctx_);
            throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_DigestInit_ex failed");
        }
    }
    ~OpenSslStream() override { api_.md_ctx_free(ctx_); }
    OpenSslStream(const OpenSslStream&) = delete;
    OpenSslStream& operator=(const OpenSslStream&) = delete;

    void update(const void* data, size_t size) override {
        if (api_.digest_update(ctx_, data, size) != 1)
            throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_DigestUpdate failed");
    }
    void finish(uint8_t* out) override {
        unsigned int size = 0;
        if (api_.digest_final_ex(ctx_, out, &size) != 1 || size != length_)
            throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_DigestFinal_ex failed");
    }

private:
    const LibCrypto& api_;
    void* ctx_;
    size_t length_;
};

class OpenSslHashEngine : public HashEngine {
public:
    explicit OpenSslHashEngine(const LibCrypto& api) : api_(api) {}
    std::string name() const override { return "openssl"; }
    std::unique_ptr<HashStream> start(HashAlgorithm algorithm) override {
        return std::make_unique<OpenSslStream>(api_, algorithm);
    }

private:
    const LibCrypto& api_;
};

} // namespace

const char* default_libcrypto_soname() {
    return OTA_LIBCRYPTO_SONAME;
}

EngineProbe open_openssl_engine(const std::string& soname) {
    std::string why;
    const LibCrypto* api = load(soname, &why);
    if (!api) return {nullptr, why};
    return {std::make_unique<OpenSslHashEngine>(*api), ""};
}

} // namespace ota::hal
