// OpenSSL's libcrypto, loaded with dlopen when the image has it: its SHA-2 code uses SHA-NI on
// x86-64 and the ARMv8 SHA-2 instructions, several times mbedTLS 2.28's speed. The agent neither
// links it nor needs its headers: the functions below are resolved by name, and their signatures
// are part of OpenSSL's stable ABI since 1.1.0.
//
// The SHA256_Init/Update/Final family is used where libcrypto still exports it (1.1 and 3.x,
// deprecated in 3.0): it runs the same assembly as EVP but without OpenSSL 3's provider set-up,
// which costs 2 MiB more resident memory on the first EVP digest. EVP is the fallback.
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

// SHA256_CTX is 112 bytes and SHA512_CTX 216 in every OpenSSL since 0.9.8 (public struct layouts).
constexpr size_t kMaxShaContext = 256;

// One algorithm's low-level functions; the context is a SHA256_CTX or SHA512_CTX.
struct DirectFunctions {
    int (*init)(void* ctx) = nullptr;
    int (*update)(void* ctx, const void* data, size_t size) = nullptr;
    int (*final)(unsigned char* out, void* ctx) = nullptr;
};

struct LibCrypto {
    bool direct = false;
    DirectFunctions sha256_direct, sha512_direct;
    // EVP: EVP_MD_CTX and EVP_MD are opaque.
    void* (*md_ctx_new)() = nullptr;
    void (*md_ctx_free)(void* ctx) = nullptr;
    int (*digest_init_ex)(void* ctx, const void* md, void* engine) = nullptr;
    int (*digest_update)(void* ctx, const void* data, size_t size) = nullptr;
    int (*digest_final_ex)(void* ctx, unsigned char* out, unsigned int* size) = nullptr;
    const void* sha256 = nullptr;
    const void* sha512 = nullptr;
};

template <typename Fn> bool resolve(void* handle, const char* name, Fn& fn, std::string& missing) {
    fn = reinterpret_cast<Fn>(dlsym(handle, name));
    if (!fn && missing.empty()) missing = name;
    return fn != nullptr;
}

bool resolve_direct(void* handle, LibCrypto& api) {
    std::string missing;
    resolve(handle, "SHA256_Init", api.sha256_direct.init, missing);
    resolve(handle, "SHA256_Update", api.sha256_direct.update, missing);
    resolve(handle, "SHA256_Final", api.sha256_direct.final, missing);
    resolve(handle, "SHA512_Init", api.sha512_direct.init, missing);
    resolve(handle, "SHA512_Update", api.sha512_direct.update, missing);
    resolve(handle, "SHA512_Final", api.sha512_direct.final, missing);
    return missing.empty();
}

// Empty when EVP is complete, else the first missing function.
std::string resolve_evp(void* handle, LibCrypto& api) {
    std::string missing;
    const void* (*sha256)() = nullptr;
    const void* (*sha512)() = nullptr;
    resolve(handle, "EVP_MD_CTX_new", api.md_ctx_new, missing);
    resolve(handle, "EVP_MD_CTX_free", api.md_ctx_free, missing);
    resolve(handle, "EVP_DigestInit_ex", api.digest_init_ex, missing);
    resolve(handle, "EVP_DigestUpdate", api.digest_update, missing);
    resolve(handle, "EVP_DigestFinal_ex", api.digest_final_ex, missing);
    resolve(handle, "EVP_sha256", sha256, missing);
    resolve(handle, "EVP_sha512", sha512, missing);
    if (!missing.empty()) return missing;
    // OpenSSL 3 looks the implementation up at each init (microseconds; a few hundred inits per
    // install). An EVP_MD_fetch()ed one would be quicker to init but must be freed before
    // OpenSSL's own exit handler runs, which a process-wide cache cannot promise.
    api.sha256 = sha256();
    api.sha512 = sha512();
    return api.sha256 && api.sha512 ? "" : "EVP_sha256/EVP_sha512 implementations";
}

// Loads `soname` once per process and soname (never unloaded: libcrypto registers exit handlers).
// Returns null with *why set when it cannot be used.
const LibCrypto* load(const std::string& soname, bool evp_only, std::string* why) {
    static std::mutex mutex;
    static std::vector<std::pair<std::string, std::unique_ptr<LibCrypto>>> loaded;
    std::lock_guard<std::mutex> lock(mutex);
    const std::string key = soname + (evp_only ? " evp" : "");
    for (const auto& entry : loaded)
        if (entry.first == key) return entry.second.get();
    void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* error = dlerror();
        *why = "cannot load " + soname + ": " + (error ? error : "unknown error");
        return nullptr;
    }
    auto api = std::make_unique<LibCrypto>();
    api->direct = !evp_only && resolve_direct(handle, *api);
    if (!api->direct) {
        const std::string missing = resolve_evp(handle, *api);
        if (!missing.empty()) {
            *why = soname + " has no " + missing + " (OpenSSL 1.1.0 or newer is needed)";
            return nullptr;
        }
    }
    loaded.emplace_back(key, std::move(api));
    return loaded.back().second.get();
}

class DirectStream : public HashStream {
public:
    explicit DirectStream(const DirectFunctions& fns) : fns_(fns) {
        if (fns_.init(context_) != 1)
            throw Error(ErrorKind::Unsupported, "OpenSSL: SHA-2 init failed");
    }
    void update(const void* data, size_t size) override {
        if (fns_.update(context_, data, size) != 1)
            throw Error(ErrorKind::Unsupported, "OpenSSL: SHA-2 update failed");
    }
    void finish(uint8_t* out) override {
        if (fns_.final(out, context_) != 1)
            throw Error(ErrorKind::Unsupported, "OpenSSL: SHA-2 final failed");
    }

private:
    const DirectFunctions& fns_;
    alignas(16) unsigned char context_[kMaxShaContext] = {};
};

class EvpStream : public HashStream {
public:
    EvpStream(const LibCrypto& api, HashAlgorithm algorithm)
        : api_(api), ctx_(api.md_ctx_new()), length_(hash_length(algorithm)) {
        if (!ctx_) throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_MD_CTX_new failed");
        const void* md = algorithm == HashAlgorithm::Sha256 ? api.sha256 : api.sha512;
        if (api_.digest_init_ex(ctx_, md, nullptr) != 1) {
            api_.md_ctx_free(ctx_);
            throw Error(ErrorKind::Unsupported, "OpenSSL: EVP_DigestInit_ex failed");
        }
    }
    ~EvpStream() override { api_.md_ctx_free(ctx_); }
    EvpStream(const EvpStream&) = delete;
    EvpStream& operator=(const EvpStream&) = delete;

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
        if (!api_.direct) return std::make_unique<EvpStream>(api_, algorithm);
        return std::make_unique<DirectStream>(
            algorithm == HashAlgorithm::Sha256 ? api_.sha256_direct : api_.sha512_direct);
    }

private:
    const LibCrypto& api_;
};

} // namespace

const char* default_libcrypto_soname() {
    return OTA_LIBCRYPTO_SONAME;
}

EngineProbe open_openssl_engine(const std::string& soname, bool evp_only) {
    std::string why;
    const LibCrypto* api = load(soname, evp_only, &why);
    if (!api) return {nullptr, why};
    return {std::make_unique<OpenSslHashEngine>(*api), ""};
}

} // namespace ota::hal
