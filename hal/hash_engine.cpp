#include "hal/hash_engine.h"

#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "agent/common/log.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ota::hal {

namespace {

struct KnownAnswer {
    HashAlgorithm algorithm;
    const char* message;
    const char* digest;
};

// FIPS 180-2, appendices B and C.
constexpr KnownAnswer kKnownAnswers[] = {
    {HashAlgorithm::Sha256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {HashAlgorithm::Sha256, "abc",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {HashAlgorithm::Sha256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {HashAlgorithm::Sha512, "",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
    {HashAlgorithm::Sha512, "abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    {HashAlgorithm::Sha512,
     "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
     "q"
     "rsmnopqrstnopqrstu",
     "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
     "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"},
};

const char* algorithm_name(HashAlgorithm a) {
    return a == HashAlgorithm::Sha256 ? "SHA-256" : "SHA-512";
}

// Digest of `message` fed in pieces of `piece` bytes (0: in one call).
std::string digest_hex(HashEngine& engine, HashAlgorithm algorithm, const std::string& message,
                       size_t piece) {
    std::unique_ptr<HashStream> stream = engine.start(algorithm);
    if (!stream) throw Error(ErrorKind::Unsupported, "no stream");
    const size_t step = piece ? piece : std::max<size_t>(message.size(), 1);
    for (size_t pos = 0; pos < message.size(); pos += step)
        stream->update(message.data() + pos, std::min(step, message.size() - pos));
    std::vector<uint8_t> out(hash_length(algorithm));
    stream->finish(out.data());
    return to_hex(out);
}

// Throughput of `engine` in MB/s on buffers the size the installer reads back (best of a few
// short runs, so a context switch does not decide the choice).
double measure_mb_per_s(HashEngine& engine) {
    static const std::vector<uint8_t> buffer = [] {
        std::vector<uint8_t> b(256u << 10);
        for (size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
        return b;
    }();
    double best = 1e9;
    for (int run = 0; run < 3; ++run) {
        auto start = std::chrono::steady_clock::now();
        std::unique_ptr<HashStream> s = engine.start(HashAlgorithm::Sha256);
        s->update(buffer.data(), buffer.size());
        uint8_t out[32];
        s->finish(out);
        std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
        best = std::min(best, d.count());
    }
    return static_cast<double>(buffer.size()) / 1e6 / std::max(best, 1e-9);
}

class StandInEngine : public HashEngine {
public:
    StandInEngine(std::unique_ptr<HashEngine> primary, HashAlgorithm algorithm,
                  std::unique_ptr<HashEngine> stand_in, std::string why)
        : primary_(std::move(primary)), algorithm_(algorithm), stand_in_(std::move(stand_in)),
          why_(std::move(why)) {}
    std::string name() const override { return primary_->name(); }
    std::string description() const override {
        return primary_->description() + ", " + algorithm_name(algorithm_) + " through " +
               stand_in_->name() + " (" + why_ + ")";
    }
    std::unique_ptr<HashStream> start(HashAlgorithm algorithm) override {
        return algorithm == algorithm_ ? stand_in_->start(algorithm) : primary_->start(algorithm);
    }

private:
    std::unique_ptr<HashEngine> primary_;
    HashAlgorithm algorithm_;
    std::unique_ptr<HashEngine> stand_in_;
    std::string why_;
};

// Tried by `auto` in this order; on equal speed the earlier one wins.
constexpr const char* kEngineNames[] = {"openssl", "kernel", "mbedtls"};

} // namespace

std::unique_ptr<HashEngine> with_stand_in(std::unique_ptr<HashEngine> primary,
                                          HashAlgorithm algorithm,
                                          std::unique_ptr<HashEngine> stand_in,
                                          const std::string& why) {
    return std::make_unique<StandInEngine>(std::move(primary), algorithm, std::move(stand_in), why);
}

std::string self_test(HashEngine& engine) {
    try {
        for (const KnownAnswer& ka : kKnownAnswers) {
            // Whole, then in 7-byte pieces (block boundaries fall inside an update).
            for (size_t piece : {size_t{0}, size_t{7}}) {
                const std::string got = digest_hex(engine, ka.algorithm, ka.message, piece);
                if (got != ka.digest)
                    return std::string(algorithm_name(ka.algorithm)) + " of a " +
                           std::to_string(std::string(ka.message).size()) +
                           "-byte test message is wrong (" + got.substr(0, 16) + "...)";
            }
        }
        return "";
    } catch (const std::exception& e) {
        return std::string("self-test failed: ") + e.what();
    }
}

bool is_hash_engine_setting(const std::string& setting) {
    if (setting == "auto") return true;
    for (const char* name : kEngineNames)
        if (setting == name) return true;
    return false;
}

EngineProbe open_hash_engine(const std::string& name) {
    if (name == "mbedtls") return open_mbedtls_engine();
    if (name == "openssl") return open_openssl_engine(default_libcrypto_soname());
    if (name == "kernel") return open_kernel_engine();
    return {nullptr, "no hash engine is called \"" + name + "\""};
}

EngineChoice choose_hash_engine(const std::string& setting, const HashEngineFactory& factory) {
    if (!is_hash_engine_setting(setting))
        throw Error(ErrorKind::Config,
                    "hash_engine must be auto, mbedtls, openssl or kernel, not \"" + setting +
                        "\"");
    if (setting != "auto") {
        EngineProbe probe = factory(setting);
        if (!probe.engine)
            throw Error(ErrorKind::Config,
                        "hash_engine \"" + setting + "\" is not available: " + probe.unavailable);
        const std::string failed = self_test(*probe.engine);
        if (!failed.empty())
            throw Error(ErrorKind::Config, "hash_engine \"" + setting +
                                               "\" failed its known-answer self-test: " + failed);
        const std::string summary = probe.engine->description() + " (configured; self-test passed)";
        return {std::shared_ptr<HashEngine>(std::move(probe.engine)), summary, ""};
    }
    std::shared_ptr<HashEngine> best;
    double best_speed = 0;
    std::string others;
    auto note = [&](const std::string& text) { others += (others.empty() ? "" : "; ") + text; };
    for (const char* name : kEngineNames) {
        EngineProbe probe = factory(name);
        if (!probe.engine) {
            note(std::string(name) + " unavailable: " + probe.unavailable);
            continue;
        }
        const std::string failed = self_test(*probe.engine);
        if (!failed.empty()) {
            note(std::string(name) + " failed its self-test: " + failed);
            continue;
        }
        double speed = 0;
        try {
            speed = measure_mb_per_s(*probe.engine);
        } catch (const std::exception& e) {
            note(std::string(name) + " failed: " + e.what());
            continue;
        }
        const std::string speed_text = std::to_string(static_cast<long>(speed)) + " MB/s";
        if (speed > best_speed) {
            if (best)
                note(best->name() + " " + std::to_string(static_cast<long>(best_speed)) + " MB/s");
            best = std::move(probe.engine);
            best_speed = speed;
        } else {
            note(std::string(name) + " " + speed_text);
        }
    }
    if (!best)
        throw Error(ErrorKind::Config, "no hash engine passed its self-test (" + others + ")");
    return {best,
            best->description() + " (auto: " + std::to_string(static_cast<long>(best_speed)) +
                " MB/s, the fastest engine that passed its self-test)",
            others};
}

void install_hash_engine(std::shared_ptr<HashEngine> engine) {
    if (!engine) {
        set_hash_provider({});
        return;
    }
    set_hash_provider([engine](HashAlgorithm algorithm) { return engine->start(algorithm); });
}

std::string use_hash_engine(const std::string& setting, LogLevel level) {
    EngineChoice choice = choose_hash_engine(setting);
    install_hash_engine(choice.engine);
    OTA_LOG(level, "hash engine: " << choice.summary);
    if (!choice.others.empty()) LOG_DEBUG("other hash engines: " << choice.others);
    return choice.engine->name();
}

} // namespace ota::hal
