// Hashing (PSA) and signatures (ECDSA P-256, RSA-PSS) as the verifier uses them.
#include "agent/common/crypto.h"
#include "agent/common/hex.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;

TEST_CASE("SHA-256 and SHA-512 known answers, one-shot and streaming") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha512_hex("abc") == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                               "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Hasher h(HashAlgorithm::Sha256);
    h.update("a");
    h.update("bc");
    CHECK(h.finish_hex() == sha256_hex("abc"));
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "ab"));
}

TEST_CASE("file hashing reads the whole file or a prefix") {
    TempDir dir;
    const std::string data = pseudo_random_bytes(300000, 7);
    write_all_file(dir.file("f"), data);
    CHECK(file_sha256_hex(dir.file("f")) == sha256_hex(data));
    CHECK(file_sha256_hex(dir.file("f"), 1000) == sha256_hex(data.substr(0, 1000)));
}

TEST_CASE("signatures verify for the signed message only, for each scheme") {
    const std::string scheme = GENERATE(std::string(kSchemeEcdsaP256), std::string(kSchemeRsaPss));
    SigningKey key = SigningKey::generate(scheme, 2048);
    const std::string msg = "{\"signed\":true}";
    auto sig = key.sign(msg);
    CHECK(verify_signature(scheme, key.public_pem(), msg, sig));
    CHECK_FALSE(verify_signature(scheme, key.public_pem(), msg + " ", sig));
    auto flipped = sig;
    flipped[flipped.size() / 2] ^= 0x01;
    CHECK_FALSE(verify_signature(scheme, key.public_pem(), msg, flipped));
    SigningKey other = SigningKey::generate(scheme, 2048);
    CHECK_FALSE(verify_signature(scheme, other.public_pem(), msg, sig));
    // The key round-trips through PEM.
    SigningKey again = SigningKey::from_pem(key.private_pem());
    CHECK(verify_signature(scheme, key.public_pem(), msg, again.sign(msg)));
}

TEST_CASE("wrong schemes, garbage keys and empty signatures never verify and never throw") {
    SigningKey ec = SigningKey::generate(kSchemeEcdsaP256);
    const std::string msg = "m";
    auto sig = ec.sign(msg);
    CHECK_FALSE(verify_signature(kSchemeRsaPss, ec.public_pem(), msg, sig));
    CHECK_FALSE(verify_signature("ed25519", ec.public_pem(), msg, sig));
    CHECK_FALSE(verify_signature(kSchemeEcdsaP256, "not a pem", msg, sig));
    CHECK_FALSE(verify_signature(kSchemeEcdsaP256, "", msg, sig));
    CHECK_FALSE(verify_signature(kSchemeEcdsaP256, ec.public_pem(), msg, {}));
    CHECK_FALSE(
        verify_signature(kSchemeEcdsaP256, ec.public_pem(), msg, std::vector<uint8_t>(4096, 0x30)));
}

TEST_CASE("RSA-PSS signatures with any salt length verify (made by openssl)") {
    if (run_command("openssl version") != 0) {
        WARN("openssl not installed: salt-length interop not checked");
        return;
    }
    TempDir dir;
    SigningKey key = SigningKey::generate(kSchemeRsaPss, 2048);
    write_all_file(dir.file("key.pem"), key.private_pem());
    write_all_file(dir.file("msg"), "interop message");
    for (const char* salt : {"0", "20", "32", "max"}) {
        INFO("salt length " << salt);
        std::string cmd = "openssl dgst -sha256 -sign '" + dir.file("key.pem") +
                          "' -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:" + salt +
                          " -sigopt rsa_mgf1_md:sha256 -out '" + dir.file("sig") + "' '" +
                          dir.file("msg") + "'";
        REQUIRE(run_command(cmd) == 0);
        std::string sig = read_all(dir.file("sig"));
        CHECK(verify_signature(kSchemeRsaPss, key.public_pem(), "interop message",
                               std::vector<uint8_t>(sig.begin(), sig.end())));
    }
}

TEST_CASE("hex encoding round-trips and rejects non-hex") {
    std::vector<uint8_t> bytes{0x00, 0x7f, 0xff, 0x10};
    CHECK(to_hex(bytes) == "007fff10");
    CHECK(from_hex("007FFF10") == bytes);
    CHECK(is_hex("00ff"));
    CHECK_FALSE(is_hex("0g"));
    CHECK_THROWS(from_hex("abc"));
}
