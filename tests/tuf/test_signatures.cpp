// Key types and signature lists in whole repositories: Ed25519 (libsodium) beside ECDSA P-256 and
// RSA-PSS (mbedTLS), repositories whose roles mix all three, repositories made by ota-publish,
// and metadata whose "signatures" name a keyid twice (malformed: refused, nothing stored).
#include "agent/common/hex.h"
#include "agent/tuf/metadata.h"
#include "manifests/publisher/repository.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"
#include "tuf/tuf_test_client.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;

namespace {

std::string keytype_of(const Json& root, const std::string& role) {
    const std::string id = root.at("roles").at(role).at("keyids").at(0);
    return root.at("keys").at(id).at("keytype");
}

// Replaces the signatures of served metadata (and what the simulator remembers as published).
void serve_with_signatures(RepoSim& repo, const std::string& role, const Json& signatures) {
    Json env = Json::parse(repo.published.at(role));
    env["signatures"] = signatures;
    const std::string bytes = publish::to_bytes(env);
    repo.published[role] = bytes;
    repo.server.put(repo.role_path(role, repo.version(role)), bytes);
}

} // namespace

TEST_CASE("Ed25519 keys sign a whole repository, delegations and root rotations included") {
    TestHttpServer server;
    RepoSim repo(server, kSchemeEd25519);
    CHECK(keytype_of(repo.root(), "root") == "ed25519");
    repo.add_delegation("targets", "A", Json::array({"a/*"}));
    repo.add_artifact("targets", "top.bin", "top");
    repo.add_artifact("A", "a/file", "delegated");
    repo.bump_targets("A");
    repo.bump_targets();
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    tuf::TargetFile t;
    REQUIRE(client.find("a/file", &t) == std::nullopt);
    CHECK(t.length == 9);
    TempDir out;
    client.updater->download_target(t, out.file("a-file"));
    CHECK(read_all(out.file("a-file")) == "delegated");
    // A rotation to new Ed25519 root keys (old and new sign root 2).
    auto old = repo.rotate_keys("root");
    repo.bump_root(old);
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.version("root") == 2);
}

TEST_CASE("a repository whose roles mix ECDSA, RSA-PSS and Ed25519 keys verifies") {
    TestHttpServer server;
    RepoSim repo(server, kSchemeEcdsaP256,
                 {{"root", kSchemeEd25519},
                  {"timestamp", kSchemeRsaPss},
                  {"snapshot", kSchemeEcdsaP256},
                  {"targets", kSchemeEd25519},
                  {"A", kSchemeRsaPss},
                  {"B", kSchemeEd25519}});
    CHECK(keytype_of(repo.root(), "root") == "ed25519");
    CHECK(keytype_of(repo.root(), "timestamp") == "rsa");
    CHECK(keytype_of(repo.root(), "snapshot") == "ecdsa");
    repo.add_delegation("targets", "A", Json::array({"a/*"}));
    repo.add_delegation("A", "B", Json::array({"a/*"}));
    repo.add_artifact("B", "a/deep", "deep");
    repo.bump_targets("B");
    repo.bump_targets("A");
    repo.bump_targets();
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    REQUIRE(client.find("a/deep") == std::nullopt);
    // Root threshold 2 of an Ed25519 and an RSA-PSS key; the snapshot key becomes Ed25519.
    repo.key_scheme["root"] = kSchemeRsaPss;
    repo.add_key("root");
    repo.root()["roles"]["root"]["threshold"] = 2;
    repo.key_scheme["snapshot"] = kSchemeEd25519;
    repo.rotate_keys("snapshot");
    repo.bump_root();
    repo.bump_snapshot();
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.version("root") == 2);
    CHECK(client.version("snapshot") == repo.version("snapshot"));
    CHECK(client.files().at("snapshot.json") == repo.published["snapshot"]);
    // Root 3 signed by the Ed25519 root key alone does not meet the threshold of 2.
    auto both = repo.signers["root"];
    repo.signers["root"] = {both.at(0)};
    repo.bump_root();
    CHECK(client.refresh() == ErrorKind::BadSignature);
    CHECK(client.version("root") == 2);
}

TEST_CASE("Ed25519 signatures of the wrong length, or over other bytes, do not count") {
    TestHttpServer server;
    RepoSim repo(server, kSchemeEd25519);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    const auto before = client.files();
    repo.bump_snapshot();
    Json env = Json::parse(repo.published["snapshot"]);
    const std::string keyid = env["signatures"][0]["keyid"];
    const std::string good = env["signatures"][0]["sig"];
    REQUIRE(good.size() == 128);
    const std::vector<std::string> bad_signatures = {good.substr(0, 126), good + "00", good + good,
                                                     std::string(128, '0'),
                                                     good.substr(2) + good.substr(0, 2)};
    const std::string bad = bad_signatures.at(static_cast<size_t>(GENERATE(range(0, 5))));
    INFO("sig " << bad);
    serve_with_signatures(repo, "snapshot", Json::array({Json{{"keyid", keyid}, {"sig", bad}}}));
    repo.bump_timestamp();
    CHECK(client.refresh() == ErrorKind::BadSignature);
    auto after = client.files();
    CHECK(after.at("snapshot.json") == before.at("snapshot.json"));
    CHECK(after.at("root.json") == before.at("root.json"));
}

TEST_CASE("Ed25519 public keys that are not 32 bytes of hex cannot sign") {
    TestHttpServer server;
    RepoSim repo(server, kSchemeEd25519);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    // The snapshot role gets a second key (threshold 2) whose public part is written as below.
    KeyPtr second = new_key(kSchemeEd25519);
    const std::string hex = second->tuf_public_key();
    std::string upper = hex;
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    struct Form {
        std::string public_key;
        bool can_sign;
    };
    // GENERATE picks an index: the key (and so its forms) is new in every run.
    const std::vector<Form> forms = {{hex, true},
                                     {upper, true},
                                     {hex.substr(0, 62), false},
                                     {hex + "00", false},
                                     {hex.substr(0, 63) + "x", false},
                                     {hex + "\n", false},
                                     {" " + hex, false},
                                     {"", false},
                                     {second->public_pem(), false}};
    const Form& form = forms.at(static_cast<size_t>(GENERATE(range(0, 9))));
    INFO("public " << form.public_key);
    Json obj = publish::key_object(*second);
    obj["keyval"]["public"] = form.public_key;
    repo.root()["keys"]["second"] = obj;
    repo.root()["roles"]["snapshot"]["keyids"].push_back("second");
    repo.root()["roles"]["snapshot"]["threshold"] = 2;
    repo.bump_root();
    repo.bump_snapshot();
    Json env = Json::parse(repo.published["snapshot"]);
    env["signatures"].push_back(
        Json{{"keyid", "second"}, {"sig", to_hex(second->sign(canonical_json(repo.snapshot())))}});
    serve_with_signatures(repo, "snapshot", env["signatures"]);
    repo.bump_timestamp();
    if (form.can_sign) {
        CHECK(client.refresh() == std::nullopt);
        INFO(client.last_error);
        CHECK(client.version("snapshot") == 2);
    } else {
        CHECK(client.refresh() == ErrorKind::BadSignature);
        CHECK(client.version("snapshot") == 1);
    }
    CHECK(client.version("root") == 2); // the root itself is fine: such a key just cannot sign
}

TEST_CASE("a keyid twice in signatures is refused for every role and nothing is stored") {
    const std::string role =
        GENERATE(std::string("root"), std::string("timestamp"), std::string("snapshot"),
                 std::string("targets"), std::string("A"));
    INFO(role);
    TestHttpServer server;
    RepoSim repo(server, kSchemeEd25519);
    repo.add_delegation("targets", "A");
    repo.add_artifact("A", "file", "data");
    repo.bump_targets("A");
    repo.bump_targets();
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    REQUIRE(client.find("file") == std::nullopt); // A is trusted and stored too
    const auto files = client.files();
    const auto history = client.history();
    // The next version of `role`, its one valid signature listed twice.
    if (role == "root") {
        repo.bump_root();
    } else if (role == "timestamp") {
        repo.bump_timestamp();
    } else if (role == "snapshot") {
        repo.bump_snapshot();
    } else {
        repo.md[role]["version"] = repo.version(role) + 1;
        repo.publish_role(role);
    }
    Json sigs = Json::parse(repo.published.at(role))["signatures"];
    sigs.push_back(sigs[0]);
    serve_with_signatures(repo, role, sigs);
    if (role == "targets" || role == "A") repo.bump_snapshot();
    if (role == "snapshot") repo.bump_timestamp();
    auto result = client.refresh();
    if (role == "A") {
        REQUIRE(result == std::nullopt);
        result = client.find("file");
    }
    INFO(client.last_error);
    CHECK(result == ErrorKind::Malformed);
    auto after = client.files();
    const std::string file = tuf::role_filename(role);
    CHECK(after.at(file) == files.at(file)); // the trusted copy is still the old one
    CHECK(client.history() == history);
}

TEST_CASE("ota-publish makes Ed25519 repositories and rotates between key types") {
    TestHttpServer server;
    TempDir tmp;
    const std::string repo = tmp.file("repo");
    auto publish_cmd = [&](const std::string& args) {
        std::string out;
        const int rc = run_command(built_program("ota-publish") + " " + args, &out);
        INFO(out);
        REQUIRE(rc == 0);
    };
    publish_cmd("init --repo '" + repo + "' --key-type ed25519");
    write_all_file(tmp.file("payload.bin"), "payload of an ed25519 release");
    Json root1 = Json::parse(read_all(repo + "/metadata/1.root.json"));
    for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
        INFO(role);
        CHECK(keytype_of(root1["signed"], role) == "ed25519");
        const std::string id = root1["signed"]["roles"][role]["keyids"][0];
        const Json& key = root1["signed"]["keys"][id];
        CHECK(key["scheme"] == "ed25519");
        CHECK(key["keyval"]["public"].get<std::string>().size() == 64);
        // The keyid is the SHA-256 of the canonical key object, as securesystemslib computes it.
        CHECK(id == sha256_hex(canonical_json(key)));
    }
    serve_tree(server, repo);
    tuf::UpdaterConfig config;
    TempDir client_dir;
    config.metadata_dir = client_dir.file("md");
    config.metadata_base_url = server.url("/metadata/");
    config.targets_base_url = server.url("/targets/");
    net::CurlFetcher fetcher;
    tuf::Updater::initialize(config.metadata_dir, read_all(repo + "/metadata/1.root.json"));
    {
        tuf::Updater updater(config, fetcher);
        REQUIRE_NOTHROW(updater.refresh());
    }
    // Rotations to other key types: targets to RSA-PSS, root to ECDSA P-256.
    publish_cmd("rotate --repo '" + repo + "' --role targets --key-type rsa");
    publish_cmd("rotate --repo '" + repo + "' --role root --key-type ecdsa");
    serve_tree(server, repo);
    tuf::Updater updater(config, fetcher);
    REQUIRE_NOTHROW(updater.refresh());
    const auto& root = updater.trusted().root();
    CHECK(root.env.version == 3);
    auto type_of = [&](const char* role) {
        return root.meta.keys.at(root.meta.roles.at(role).keyids.at(0)).keytype;
    };
    CHECK(type_of("root") == "ecdsa");
    CHECK(type_of("targets") == "rsa");
    CHECK(type_of("snapshot") == "ed25519");
    // The private keys are PEM files the publisher reads back (and openssl can read).
    CHECK(SigningKey::from_pem(read_all(repo + "/keys/snapshot-0.pem")).scheme() == kSchemeEd25519);
    // An unknown key type is a usage error.
    std::string out;
    CHECK(run_command(built_program("ota-publish") + " init --repo '" + tmp.file("other") +
                          "' --key-type dsa",
                      &out) != 0);
    CHECK(out.find("ed25519") != std::string::npos);
}
