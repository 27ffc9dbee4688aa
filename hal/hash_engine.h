// The code that computes SHA-256 and SHA-512 for the agent: every blob, source chunk, read-back
// chunk, bundle, model file and TUF target is hashed by one engine chosen at startup.
//
// Engines: mbedTLS (portable, always there), OpenSSL's libcrypto loaded with dlopen when present
// (SHA-NI on x86-64, the ARMv8 SHA-2 instructions on the ECUs), and the kernel's crypto API over
// AF_ALG (hash engines such as NXP's CAAM, or the kernel's own ARMv8 code). The setting
// `hash_engine: auto|mbedtls|openssl|kernel` picks one; `auto` takes the fastest that is present
// and passes its known-answer self-test. Signatures are not affected: they stay with mbedTLS.
#pragma once
#include "agent/common/crypto.h"
#include "agent/common/log.h"

#include <functional>
#include <memory>
#include <string>

namespace ota::hal {

class HashEngine {
public:
    virtual ~HashEngine() = default;
    // "mbedtls", "openssl" or "kernel": the value of the hash_engine setting that selects it.
    virtual std::string name() const = 0;
    // For the log: the name, and whatever an integrator should know about how it hashes.
    virtual std::string description() const { return name(); }
    // Starts one SHA-256 or SHA-512 computation; may be called from any thread. Throws
    // ota::Error(Unsupported) when the engine fails.
    virtual std::unique_ptr<HashStream> start(HashAlgorithm algorithm) = 0;
};

// Known-answer test: the FIPS 180-2 example messages (empty, "abc", the two-block ones, one fed in
// odd-sized pieces) for SHA-256 and SHA-512. Returns "" when every digest is right, otherwise what
// failed. Never throws.
std::string self_test(HashEngine& engine);

// `primary` for every algorithm but `algorithm`, which `stand_in` computes (a crypto engine that
// has SHA-256 but not SHA-512, say). Named after `primary`; its description says which algorithm
// goes where and `why`.
std::unique_ptr<HashEngine> with_stand_in(std::unique_ptr<HashEngine> primary,
                                          HashAlgorithm algorithm,
                                          std::unique_ptr<HashEngine> stand_in,
                                          const std::string& why);

// Opening an engine gives the engine, or why it cannot run on this system.
struct EngineProbe {
    std::unique_ptr<HashEngine> engine;
    std::string unavailable; // the reason, when engine is null
};

EngineProbe open_mbedtls_engine();
// libcrypto is loaded with dlopen: the agent does not link it, images without it still run.
// evp_only: use the EVP interface even where the low-level SHA256_* functions exist (tests: the
// path taken with an OpenSSL that no longer exports them).
EngineProbe open_openssl_engine(const std::string& soname, bool evp_only = false);
// SHA-256 must be in the kernel's crypto API; SHA-512, when the kernel lacks it (Debian builds it
// as a module; some crypto engines have none), comes from mbedTLS and the description says so.
EngineProbe open_kernel_engine();

// The soname open_openssl_engine loads by default (the OTA_LIBCRYPTO_SONAME build setting).
const char* default_libcrypto_soname();

// "auto" or an engine name.
bool is_hash_engine_setting(const std::string& setting);

// How `auto` and explicit settings open an engine by name; tests inject missing or broken ones.
using HashEngineFactory = std::function<EngineProbe(const std::string& name)>;
// mbedtls, openssl (default soname) and kernel.
EngineProbe open_hash_engine(const std::string& name);

struct EngineChoice {
    std::shared_ptr<HashEngine> engine;
    std::string summary; // for the log: the engine and how it was chosen (its speed for auto)
    std::string others;  // auto: each other engine's speed, or why it could not be taken
};

// An engine named explicitly must be available and pass its self-test, else Error(Config) says
// why. `auto` takes the fastest of the engines that are available and pass (measured on a short
// run of each), so at least mbedTLS. Error(Config) for an unknown setting.
EngineChoice choose_hash_engine(const std::string& setting,
                                const HashEngineFactory& factory = open_hash_engine);

// Makes `engine` the one every ota::Hasher of the process uses (null: mbedTLS again).
void install_hash_engine(std::shared_ptr<HashEngine> engine);

// choose_hash_engine + install_hash_engine, logging the choice at `level` (and, at debug level,
// the other engines' speeds or why they were not taken). Returns the engine's name.
std::string use_hash_engine(const std::string& setting, LogLevel level = LogLevel::Info);

} // namespace ota::hal
