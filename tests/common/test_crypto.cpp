// Hashing (PSA) and signatures (ECDSA P-256, RSA-PSS, Ed25519) as the verifier uses them.
#include "agent/common/crypto.h"
#include "agent/common/ed25519.h"
#include "agent/common/hex.h"
#include "support/test_support.h"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cctype>

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
    const std::string scheme = GENERATE(std::string(kSchemeEcdsaP256), std::string(kSchemeRsaPss),
                                        std::string(kSchemeEd25519));
    SigningKey key = SigningKey::generate(scheme, 2048);
    CHECK(key.scheme() == scheme);
    const std::string msg = "{\"signed\":true}";
    auto sig = key.sign(msg);
    CHECK(verify_signature(scheme, key.tuf_public_key(), msg, sig));
    CHECK_FALSE(verify_signature(scheme, key.tuf_public_key(), msg + " ", sig));
    auto flipped = sig;
    flipped[flipped.size() / 2] ^= 0x01;
    CHECK_FALSE(verify_signature(scheme, key.tuf_public_key(), msg, flipped));
    SigningKey other = SigningKey::generate(scheme, 2048);
    CHECK_FALSE(verify_signature(scheme, other.tuf_public_key(), msg, sig));
    // The key round-trips through PEM, and keeps its scheme.
    SigningKey again = SigningKey::from_pem(key.private_pem());
    CHECK(again.scheme() == scheme);
    CHECK(again.tuf_public_key() == key.tuf_public_key());
    CHECK(verify_signature(scheme, key.tuf_public_key(), msg, again.sign(msg)));
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

namespace {

struct Rfc8032Vector {
    const char* secret; // the 32-byte seed
    const char* public_key;
    const char* message;
    const char* signature;
};

// RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc) (TEST 1024 is left out: its
// 1023-byte message adds nothing these four do not cover).
const Rfc8032Vector kRfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
     "1cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
     "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760"
     "984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23"
     "a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c6"
     "6431e0303dca179c138ac17ad9bef1177331a704"},
};

std::string bytes_of(const char* hex) {
    auto v = from_hex(hex);
    return std::string(v.begin(), v.end());
}

} // namespace

TEST_CASE("Ed25519: the RFC 8032 test vectors, key derivation, signing and verification") {
    for (const auto& v : kRfc8032) {
        INFO("public key " << v.public_key);
        const std::string message = bytes_of(v.message);
        const std::vector<uint8_t> signature = from_hex(v.signature);
        CHECK(verify_signature(kSchemeEd25519, v.public_key, message, signature));
        // Our signer derives the same public key and, Ed25519 being deterministic, the same bytes.
        std::array<uint8_t, ed25519::kSeedSize> seed;
        auto seed_bytes = from_hex(v.secret);
        std::copy(seed_bytes.begin(), seed_bytes.end(), seed.begin());
        const auto pair = ed25519::KeyPair::from_seed(seed);
        CHECK(to_hex(pair.public_key().data(), pair.public_key().size()) == v.public_key);
        CHECK(to_hex(pair.sign(message)) == v.signature);
        // Anything else fails: another message, a flipped bit in R or in S, another key.
        CHECK_FALSE(verify_signature(kSchemeEd25519, v.public_key, message + "x", signature));
        for (size_t byte : {size_t{0}, size_t{40}}) {
            auto flipped = signature;
            flipped[byte] ^= 0x01;
            CHECK_FALSE(verify_signature(kSchemeEd25519, v.public_key, message, flipped));
        }
        CHECK_FALSE(verify_signature(kSchemeEd25519, kRfc8032[(&v - kRfc8032 + 1) % 4].public_key,
                                     message, signature));
        // The TUF keyval holds hex in either case.
        std::string upper = v.public_key;
        for (auto& c : upper)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        CHECK(verify_signature(kSchemeEd25519, upper, message, signature));
    }
}

TEST_CASE(
    "Ed25519: public keys other than 32 bytes of hex and signatures of the wrong length fail") {
    const Rfc8032Vector& v = kRfc8032[1];
    const std::string message = bytes_of(v.message);
    const std::vector<uint8_t> signature = from_hex(v.signature);
    const std::string key = v.public_key;
    REQUIRE(verify_signature(kSchemeEd25519, key, message, signature));
    for (const std::string& bad_key :
         {key.substr(0, 62), key + "00", key.substr(0, 63), key.substr(0, 63) + "g",
          std::string(""), " " + key.substr(1), key + "\n",
          SigningKey::generate(kSchemeEd25519).public_pem()}) {
        INFO("key " << bad_key);
        CHECK_FALSE(verify_signature(kSchemeEd25519, bad_key, message, signature));
    }
    for (size_t length : {0, 1, 32, 63, 65, 128, 4096}) {
        INFO("signature length " << length);
        auto sig = signature;
        sig.resize(length, 0);
        CHECK_FALSE(verify_signature(kSchemeEd25519, key, message, sig));
    }
    // An Ed25519 key named with another scheme, and the other way round, never verify.
    CHECK_FALSE(verify_signature(kSchemeEcdsaP256, key, message, signature));
    SigningKey ec = SigningKey::generate(kSchemeEcdsaP256);
    CHECK_FALSE(verify_signature(kSchemeEd25519, ec.tuf_public_key(), message, ec.sign(message)));
}

TEST_CASE("Ed25519 keys are RFC 8410 PEM that openssl reads and signs with") {
    if (run_command("openssl version >/dev/null 2>&1") != 0) {
        WARN("openssl not installed: Ed25519 PEM interop not checked");
        return;
    }
    TempDir dir;
    SigningKey key = SigningKey::generate(kSchemeEd25519);
    CHECK(key.keytype() == "ed25519");
    CHECK(key.tuf_public_key().size() == 64);
    CHECK(is_hex(key.tuf_public_key()));
    write_all_file(dir.file("key.pem"), key.private_pem());
    write_all_file(dir.file("msg"), "interop message");
    // openssl derives the same public key from our private key file.
    std::string public_pem;
    REQUIRE(run_command("openssl pkey -in '" + dir.file("key.pem") + "' -pubout", &public_pem) ==
            0);
    CHECK(public_pem == key.public_pem());
    // A signature made by openssl verifies with us, and ours with openssl.
    REQUIRE(run_command("openssl pkeyutl -sign -rawin -inkey '" + dir.file("key.pem") + "' -in '" +
                        dir.file("msg") + "' -out '" + dir.file("sig") + "'") == 0);
    const std::string theirs = read_all(dir.file("sig"));
    CHECK(verify_signature(kSchemeEd25519, key.tuf_public_key(), "interop message",
                           std::vector<uint8_t>(theirs.begin(), theirs.end())));
    const auto ours = key.sign("interop message");
    write_all_file(dir.file("ours"), std::string(ours.begin(), ours.end()));
    write_all_file(dir.file("pub.pem"), key.public_pem());
    CHECK(run_command("openssl pkeyutl -verify -rawin -pubin -inkey '" + dir.file("pub.pem") +
                      "' -in '" + dir.file("msg") + "' -sigfile '" + dir.file("ours") + "'") == 0);
    // A key openssl made is read by us.
    REQUIRE(run_command("openssl genpkey -algorithm ed25519 -out '" + dir.file("theirs.pem") +
                        "'") == 0);
    SigningKey imported = SigningKey::from_pem(read_all(dir.file("theirs.pem")));
    CHECK(imported.scheme() == kSchemeEd25519);
    CHECK(imported.private_pem() == read_all(dir.file("theirs.pem")));
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
