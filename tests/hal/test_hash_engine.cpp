// Hash engines: every engine present here gives the NIST digests and the same digests as the others
// on random data fed in odd pieces; `auto` falls back when an engine is missing or wrong; the
// chosen engine is the one every ota::Hasher uses.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "hal/hash_engine.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

using namespace ota;
using namespace ota::hal;

namespace {

std::string digest(HashEngine& engine, HashAlgorithm algorithm, const std::string& data,
                   const std::vector<size_t>& pieces = {}) {
    auto stream = engine.start(algorithm);
    size_t pos = 0, k = 0;
    while (pos < data.size()) {
        size_t n =
            pieces.empty() ? data.size() : std::min(pieces[k++ % pieces.size()], data.size() - pos);
        stream->update(data.data() + pos, n);
        pos += n;
    }
    std::vector<uint8_t> out(hash_length(algorithm));
    stream->finish(out.data());
    return to_hex(out);
}

// The engines this system has, each with the reason when it has not.
std::vector<std::shared_ptr<HashEngine>> available_engines() {
    std::vector<std::shared_ptr<HashEngine>> engines;
    for (const char* name : {"mbedtls", "openssl", "kernel"}) {
        EngineProbe p = open_hash_engine(name);
        if (p.engine)
            engines.push_back(std::move(p.engine));
        else
            WARN(name << " hash engine not available here: " << p.unavailable);
    }
    // OpenSSL's EVP path, taken where libcrypto no longer exports SHA256_Init and friends.
    EngineProbe evp = open_openssl_engine(default_libcrypto_soname(), /*evp_only=*/true);
    if (evp.engine) engines.push_back(std::move(evp.engine));
    return engines;
}

// Gives the right digest for short messages only: a known-answer test must catch it.
class WrongForLongMessages : public HashEngine {
    class Stream : public HashStream {
    public:
        explicit Stream(HashAlgorithm a) : inner_(mbedtls_hash_stream(a)) {}
        void update(const void* d, size_t n) override {
            total_ += n;
            inner_->update(d, n);
        }
        void finish(uint8_t* out) override {
            inner_->finish(out);
            if (total_ > 3) out[0] ^= 1;
        }

    private:
        std::unique_ptr<HashStream> inner_;
        size_t total_ = 0;
    };

public:
    std::string name() const override { return "openssl"; }
    std::unique_ptr<HashStream> start(HashAlgorithm a) override {
        return std::make_unique<Stream>(a);
    }
};

// Counts the streams it starts (mbedTLS underneath).
class CountingEngine : public HashEngine {
public:
    std::string name() const override { return "mbedtls"; }
    std::unique_ptr<HashStream> start(HashAlgorithm a) override {
        ++started;
        return mbedtls_hash_stream(a);
    }
    int started = 0;
};

// A crypto engine with SHA-256 only (as the kernel's API without its SHA-512 module): asked for
// SHA-512, it fails the way the kernel engine does.
class Sha256OnlyEngine : public HashEngine {
public:
    std::string name() const override { return "kernel"; }
    std::unique_ptr<HashStream> start(HashAlgorithm a) override {
        if (a != HashAlgorithm::Sha256)
            throw Error(ErrorKind::Unsupported, "kernel hash (AF_ALG) accept: Bad file descriptor");
        return mbedtls_hash_stream(a);
    }
};

EngineProbe missing(const std::string& why) {
    return {nullptr, why};
}

} // namespace

TEST_CASE("every available hash engine gives the NIST digests", "[hash]") {
    const std::string million_a(1000000, 'a');
    const std::string two_block_256 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    const std::string two_block_512 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
        "lmnopqrsmnopqrstnopqrstu";
    for (auto& engine : available_engines()) {
        CAPTURE(engine->name());
        CHECK(self_test(*engine) == "");
        const auto sha256 = HashAlgorithm::Sha256;
        const auto sha512 = HashAlgorithm::Sha512;
        CHECK(digest(*engine, sha256, "") ==
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(digest(*engine, sha256, "abc") ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(digest(*engine, sha256, two_block_256) ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        CHECK(digest(*engine, sha256, million_a) ==
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        CHECK(digest(*engine, sha256, million_a, {1000}) ==
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        CHECK(digest(*engine, sha512, "") ==
              "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
              "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
        CHECK(digest(*engine, sha512, "abc") ==
              "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
        CHECK(digest(*engine, sha512, two_block_512) ==
              "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
              "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
        CHECK(digest(*engine, sha512, million_a) ==
              "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
              "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
        CHECK(digest(*engine, sha512, million_a, {999, 1}) ==
              "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
              "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
    }
}

TEST_CASE("every available hash engine agrees on random data of odd lengths in odd pieces",
          "[hash]") {
    auto engines = available_engines();
    auto reference = open_mbedtls_engine().engine;
    const std::vector<std::vector<size_t>> piecings = {
        {}, {1}, {3, 61}, {7, 4099, 1}, {55, 64, 65, 127, 128, 129, 111, 112}, {262147}};
    for (size_t length : {size_t{0}, size_t{1}, size_t{55}, size_t{56}, size_t{63}, size_t{64},
                          size_t{65}, size_t{111}, size_t{112}, size_t{127}, size_t{128},
                          size_t{129}, size_t{4097}, size_t{65537}, size_t{1000003}}) {
        const std::string data = test::pseudo_random_bytes(length, length + 17);
        for (auto algorithm : {HashAlgorithm::Sha256, HashAlgorithm::Sha512}) {
            const std::string expected = digest(*reference, algorithm, data);
            for (auto& engine : engines)
                for (const auto& pieces : piecings) {
                    CAPTURE(engine->name(), length, pieces.size(), hash_length(algorithm));
                    CHECK(digest(*engine, algorithm, data, pieces) == expected);
                }
        }
    }
}

TEST_CASE("auto falls back to mbedTLS when the other engines are missing or wrong", "[hash]") {
    SECTION("libcrypto that does not exist, no kernel engine") {
        HashEngineFactory factory = [](const std::string& name) {
            if (name == "openssl") return open_openssl_engine("libcrypto.so.does-not-exist");
            if (name == "kernel") return missing("no AF_ALG in this test");
            return open_hash_engine(name);
        };
        EngineChoice c = choose_hash_engine("auto", factory);
        CHECK(c.engine->name() == "mbedtls");
        CHECK_THAT(c.others, Catch::Contains("cannot load libcrypto.so.does-not-exist"));
        CHECK_THAT(c.others, Catch::Contains("no AF_ALG in this test"));
        // Named explicitly, a missing engine is an error that says why, never a silent fallback.
        try {
            choose_hash_engine("openssl", factory);
            FAIL("expected an error");
        } catch (const Error& e) {
            CHECK(e.kind() == ErrorKind::Config);
            CHECK_THAT(e.what(), Catch::Contains("libcrypto.so.does-not-exist"));
        }
    }
    SECTION("an engine that fails its known-answer test is never chosen") {
        HashEngineFactory factory = [](const std::string& name) {
            if (name == "openssl") return EngineProbe{std::make_unique<WrongForLongMessages>(), ""};
            if (name == "kernel") return missing("no AF_ALG in this test");
            return open_hash_engine(name);
        };
        auto broken = std::make_unique<WrongForLongMessages>();
        CHECK_THAT(self_test(*broken), Catch::Contains("SHA-256"));
        EngineChoice c = choose_hash_engine("auto", factory);
        CHECK(c.engine->name() == "mbedtls");
        CHECK_THAT(c.others, Catch::Contains("openssl failed its self-test"));
        try {
            choose_hash_engine("openssl", factory);
            FAIL("expected an error");
        } catch (const Error& e) {
            CHECK(e.kind() == ErrorKind::Config);
            CHECK_THAT(e.what(), Catch::Contains("self-test"));
        }
    }
    SECTION("with every engine present, auto takes one that passes") {
        EngineChoice c = choose_hash_engine("auto");
        REQUIRE(c.engine);
        CHECK(self_test(*c.engine) == "");
        CHECK_THAT(c.summary, Catch::Contains(c.engine->name()));
    }
    SECTION("unknown settings are refused") {
        CHECK_THROWS_AS(choose_hash_engine("fastest"), Error);
        CHECK_FALSE(is_hash_engine_setting("OpenSSL"));
        CHECK(is_hash_engine_setting("kernel"));
    }
}

TEST_CASE("an engine without SHA-512 takes it from a stand-in, and the log says so", "[hash]") {
    Sha256OnlyEngine alone;
    CHECK_THAT(self_test(alone), Catch::Contains("self-test failed"));

    const std::string why = "the kernel's crypto API has no sha512 hash for AF_ALG";
    auto open_with_stand_in = [&] {
        return with_stand_in(std::make_unique<Sha256OnlyEngine>(), HashAlgorithm::Sha512,
                             open_mbedtls_engine().engine, why);
    };
    std::unique_ptr<HashEngine> engine = open_with_stand_in();
    CHECK(self_test(*engine) == "");
    CHECK(engine->name() == "kernel");
    CHECK(engine->description() == "kernel, SHA-512 through mbedtls (" + why + ")");
    std::unique_ptr<HashEngine> reference = open_mbedtls_engine().engine;
    for (size_t length : {size_t{0}, size_t{1}, size_t{111}, size_t{129}, size_t{65537}}) {
        const std::string data = test::pseudo_random_bytes(length, length + 5);
        for (auto algorithm : {HashAlgorithm::Sha256, HashAlgorithm::Sha512})
            CHECK(digest(*engine, algorithm, data) == digest(*reference, algorithm, data));
    }

    HashEngineFactory factory = [&](const std::string& name) {
        if (name == "kernel") return EngineProbe{open_with_stand_in(), ""};
        if (name == "openssl") return missing("not in this test");
        return open_hash_engine(name);
    };
    EngineChoice configured = choose_hash_engine("kernel", factory);
    CHECK(configured.summary ==
          "kernel, SHA-512 through mbedtls (" + why + ") (configured; self-test passed)");
    EngineChoice chosen = choose_hash_engine("auto", factory);
    CHECK(self_test(*chosen.engine) == "");
    CHECK_THAT(chosen.summary, Catch::Contains(chosen.engine->name()));
}

TEST_CASE("without AF_ALG the kernel engine says so and cannot be configured", "[hash]") {
    const int fd = ::socket(AF_ALG, SOCK_SEQPACKET, 0);
    const int err = errno;
    if (fd >= 0) {
        ::close(fd);
        EngineProbe p = open_kernel_engine();
        if (p.engine) CHECK(self_test(*p.engine) == "");
        return; // the kernel has AF_ALG: the engine is covered by the tests above
    }
    REQUIRE(err == EAFNOSUPPORT);
    EngineProbe p = open_kernel_engine();
    CHECK_FALSE(p.engine);
    CHECK_THAT(p.unavailable, Catch::Contains("AF_ALG"));
    CHECK_THAT(p.unavailable, Catch::Contains("CONFIG_CRYPTO_USER_API_HASH"));
    try {
        choose_hash_engine("kernel");
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Config);
        CHECK_THAT(e.what(), Catch::Contains("hash_engine \"kernel\" is not available"));
        CHECK_THAT(e.what(), Catch::Contains("AF_ALG"));
    }
}

TEST_CASE("the installed engine is the one every Hasher uses", "[hash]") {
    auto counting = std::make_shared<CountingEngine>();
    install_hash_engine(counting);
    const std::string digest_abc = sha256_hex("abc");
    Hasher h(HashAlgorithm::Sha512);
    h.update("abc");
    const std::string digest512 = h.finish_hex();
    install_hash_engine(nullptr);
    CHECK(counting->started == 2);
    CHECK(digest_abc == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(digest512 == sha512_hex("abc"));
    CHECK(counting->started == 2); // mbedTLS again after the reset
}
