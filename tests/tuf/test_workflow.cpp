// The top-level client workflow (spec 5.1-5.6) against a simulated repository over HTTP: request
// sequence, persistence, and each attack the workflow must resist. After every rejected update
// the trusted metadata folder is byte-identical to what it was before.
#include "agent/tuf/metadata.h"
#include "manifests/publisher/repository.h"
#include "tuf/repo_sim.h"
#include "tuf/tuf_test_client.h"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using Requests = std::vector<std::string>;

namespace {

// A client that completed one refresh against the repository as it is now.
struct Fixture {
    TestHttpServer server;
    RepoSim repo{server};
    TestClient client{repo};
    Fixture() {
        REQUIRE(client.refresh() == std::nullopt);
        server.clear_requests();
    }
};

std::string with_signatures(const std::string& bytes, const Json& signatures) {
    Json env = Json::parse(bytes);
    env["signatures"] = signatures;
    return publish::to_bytes(env);
}

// Refresh must fail with `kind`. The trusted files stay exactly as they were, except the roles
// in `updated`: valid metadata the workflow accepted and persisted before the rejected step
// (e.g. the timestamp when the snapshot is rejected); those must equal what the repository
// published.
void expect_rejected(Fixture& f, ErrorKind kind, const std::vector<std::string>& updated = {},
                     int64_t days = 0) {
    auto expected = f.client.files();
    for (const auto& role : updated)
        expected[tuf::role_filename(role)] = f.repo.published[role];
    const auto history = f.client.history();
    auto result = f.client.refresh(days);
    INFO("error: " << f.client.last_error);
    REQUIRE(result.has_value());
    CHECK(error_kind_name(*result) == std::string(error_kind_name(kind)));
    CHECK(f.client.files() == expected);
    // Only an accepted root adds to the root history.
    if (std::find(updated.begin(), updated.end(), "root") == updated.end())
        CHECK(f.client.history() == history);
}

} // namespace

TEST_CASE("fresh client requests root N+1, timestamp, snapshot 1, targets 1 and stores them") {
    TestHttpServer server;
    RepoSim repo(server);
    TestClient c(repo);
    REQUIRE(c.refresh() == std::nullopt);
    CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json",
                                        "/metadata/1.snapshot.json", "/metadata/1.targets.json"});
    auto files = c.files();
    CHECK(files ==
          std::map<std::string, std::string>{{"root.json", repo.published["root"]},
                                             {"timestamp.json", repo.published["timestamp"]},
                                             {"snapshot.json", repo.published["snapshot"]},
                                             {"targets.json", repo.published["targets"]}});
}

TEST_CASE("a second refresh with nothing new only fetches root N+1 and timestamp") {
    Fixture f;
    auto before = f.client.files();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json"});
    CHECK(f.client.files() == before);
}

TEST_CASE("new targets are fetched by the versions the snapshot names") {
    Fixture f;
    f.repo.add_artifact("targets", "a.bin", "hello");
    f.repo.bump_targets();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json",
                                          "/metadata/2.snapshot.json", "/metadata/2.targets.json"});
    CHECK(f.client.version("targets") == 2);
    CHECK(f.client.files().at("targets.json") == f.repo.published["targets"]);
}

TEST_CASE("without consistent snapshots, snapshot and targets are fetched by plain name") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.root()["consistent_snapshot"] = false;
    repo.bump_root();
    repo.publish_role("targets");
    repo.bump_snapshot();
    TestClient c(repo);
    REQUIRE(c.refresh() == std::nullopt);
    CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/3.root.json",
                                        "/metadata/timestamp.json", "/metadata/snapshot.json",
                                        "/metadata/targets.json"});
}

TEST_CASE("an unsigned or invalid initial root fails before any request") {
    TestHttpServer server;
    RepoSim repo(server);
    SECTION("signature replaced") {
        Json env = Json::parse(repo.initial_root);
        env["signatures"][0]["sig"] = std::string(140, 'a');
        TestClient c(repo, publish::to_bytes(env));
        CHECK(c.refresh() == ErrorKind::BadSignature);
    }
    SECTION("version missing") {
        Json env = Json::parse(repo.initial_root);
        env["signed"].erase("version");
        TestClient c(repo, publish::to_bytes(env));
        CHECK(c.refresh() == ErrorKind::Malformed);
    }
    SECTION("not JSON") {
        TestClient c(repo, "{\"signed\": ");
        CHECK(c.refresh() == ErrorKind::Malformed);
    }
    CHECK(server.requests().empty());
}

// --- arbitrary software / wrong signatures -------------------------------------------------

TEST_CASE("arbitrary software: targets signed by an unknown key are rejected") {
    Fixture f;
    f.repo.add_artifact("targets", "evil.bin", "evil");
    f.repo.signers["targets"] = {new_key()};
    f.repo.bump_targets();
    expect_rejected(f, ErrorKind::BadSignature, {"timestamp", "snapshot"});
    CHECK(f.client.version("targets") == 1);
}

TEST_CASE("a signed body changed after signing is rejected (timestamp, snapshot, targets)") {
    Fixture f;
    std::string role =
        GENERATE(std::string("timestamp"), std::string("snapshot"), std::string("targets"));
    if (role == "targets")
        f.repo.bump_targets();
    else if (role == "snapshot")
        f.repo.bump_snapshot();
    else
        f.repo.bump_timestamp();
    // Re-serve the role with a changed body under the old signatures.
    Json env = Json::parse(f.repo.published[role]);
    env["signed"]["expires"] = expires_in_days(3000);
    std::string forged = publish::to_bytes(env);
    f.server.put(f.repo.role_path(role, f.repo.version(role)), forged);
    f.repo.published[role] = forged;
    if (role == "targets") f.repo.bump_snapshot();
    if (role == "snapshot") f.repo.bump_timestamp();
    std::vector<std::string> updated;
    if (role == "snapshot") updated = {"timestamp"};
    if (role == "targets") updated = {"timestamp", "snapshot"};
    expect_rejected(f, ErrorKind::BadSignature, updated);
}

TEST_CASE("metadata of the wrong _type is rejected") {
    Fixture f;
    // The snapshot URL serves a (validly signed) timestamp: hashes off, so only _type catches it.
    f.repo.metafile_hashes = false;
    f.repo.bump_snapshot();
    f.server.put("/metadata/2.snapshot.json", f.repo.published["timestamp"]);
    expect_rejected(f, ErrorKind::Malformed, {"timestamp"});
}

// --- rollback -------------------------------------------------------------------------------

TEST_CASE("rollback: an older timestamp is rejected") {
    Fixture f;
    f.repo.bump_timestamp();
    std::string v2 = f.repo.published["timestamp"];
    REQUIRE(f.client.refresh() == std::nullopt);
    f.repo.timestamp()["version"] = 1;
    f.repo.publish_timestamp();
    expect_rejected(f, ErrorKind::Rollback);
    CHECK(f.client.files().at("timestamp.json") == v2);
}

TEST_CASE("a new timestamp with the same version is not taken: the trusted one stays") {
    Fixture f;
    std::string trusted = f.client.files().at("timestamp.json");
    f.repo.timestamp()["meta"]["snapshot.json"]["version"] = 100;
    f.repo.publish_role("timestamp"); // same version 1, other content
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.files().at("timestamp.json") == trusted);
    CHECK(f.server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json"});
}

TEST_CASE("rollback: a timestamp naming an older snapshot version is rejected") {
    Fixture f;
    f.repo.bump_snapshot(); // snapshot 2, timestamp 2
    REQUIRE(f.client.refresh() == std::nullopt);
    f.repo.timestamp()["version"] = 3;
    f.repo.timestamp()["meta"]["snapshot.json"] = Json{{"version", 1}};
    f.repo.publish_role("timestamp");
    expect_rejected(f, ErrorKind::Rollback);
}

TEST_CASE("rollback: a snapshot listing an older targets version is rejected") {
    Fixture f;
    f.repo.bump_targets(); // targets 2
    REQUIRE(f.client.refresh() == std::nullopt);
    f.repo.targets()["version"] = 1;
    f.repo.publish_role("targets");
    f.repo.bump_snapshot();
    expect_rejected(f, ErrorKind::Rollback, {"timestamp"});
    CHECK(f.client.version("snapshot") == 2);
}

TEST_CASE("rollback: a snapshot that drops a role it listed is rejected") {
    Fixture f;
    f.repo.add_delegation("targets", "role-a");
    f.repo.bump_targets();
    REQUIRE(f.client.refresh() == std::nullopt);
    f.repo.snapshot()["version"] = f.repo.version("snapshot") + 1;
    f.repo.snapshot()["meta"].erase("role-a.json");
    f.repo.publish_role("snapshot");
    f.repo.bump_timestamp();
    expect_rejected(f, ErrorKind::Rollback, {"timestamp"});
}

// --- mix and match ---------------------------------------------------------------------------

TEST_CASE("mix-and-match: a snapshot whose version differs from the timestamp's is rejected") {
    Fixture f;
    f.repo.metafile_hashes = false; // otherwise the hash catches it first
    f.repo.bump_snapshot();         // timestamp names snapshot 2
    f.server.put("/metadata/2.snapshot.json", f.server.get("/metadata/1.snapshot.json"));
    expect_rejected(f, ErrorKind::Rollback, {"timestamp"});
}

TEST_CASE("mix-and-match: targets whose version differs from the snapshot's are rejected") {
    Fixture f;
    f.repo.metafile_hashes = false;
    f.repo.targets()["version"] = 2;
    f.repo.publish_role("targets");
    f.repo.targets()["version"] = 3; // snapshot names 3, the server has 2 at the 3 URL
    f.server.put("/metadata/3.targets.json", f.repo.published["targets"]);
    f.repo.publish_snapshot();
    f.repo.snapshot()["meta"]["targets.json"]["version"] = 3;
    f.repo.snapshot()["version"] = 2;
    f.repo.publish_role("snapshot");
    f.repo.bump_timestamp();
    expect_rejected(f, ErrorKind::Rollback, {"timestamp", "snapshot"});
    CHECK(f.client.version("targets") == 1);
}

// --- freeze -------------------------------------------------------------------------------

TEST_CASE("freeze: expired new timestamp, snapshot or targets are rejected and not stored") {
    Fixture f;
    std::string role =
        GENERATE(std::string("timestamp"), std::string("snapshot"), std::string("targets"));
    f.repo.md.at(role)["expires"] = tuf::format_expiry(::time(nullptr) - 86400);
    if (role == "targets")
        f.repo.bump_targets();
    else if (role == "snapshot")
        f.repo.bump_snapshot();
    else
        f.repo.bump_timestamp();
    std::vector<std::string> updated;
    if (role == "snapshot") updated = {"timestamp"};
    if (role == "targets") updated = {"timestamp", "snapshot"};
    expect_rejected(f, ErrorKind::Expired, updated);
}

TEST_CASE("freeze: metadata that is valid today is rejected when the clock is past its expiry") {
    Fixture f;
    expect_rejected(f, ErrorKind::Expired, {}, 40); // timestamp and snapshot expire in 30 days
    CHECK(f.client.refresh() == std::nullopt);
}

TEST_CASE("expired local timestamp and snapshot are still a basis for the next update") {
    Fixture f; // timestamp v1 expires in 30 days
    f.repo.targets()["version"] = 2;
    f.repo.publish_role("targets");
    f.repo.snapshot()["expires"] = expires_in_days(90);
    f.repo.bump_snapshot();
    f.repo.timestamp()["expires"] = expires_in_days(90);
    f.repo.bump_timestamp();
    REQUIRE(f.client.refresh(45) == std::nullopt);
    CHECK(f.client.version("timestamp") == 3);
    CHECK(f.client.version("snapshot") == 2);
    CHECK(f.client.version("targets") == 2);
}

TEST_CASE("an expired final root stops the update after the root is stored") {
    Fixture f;
    f.repo.root()["expires"] = tuf::format_expiry(::time(nullptr) - 86400);
    f.repo.bump_root();
    f.repo.bump_targets();
    CHECK(f.client.refresh() == ErrorKind::Expired);
    CHECK(f.client.version("root") == 2); // spec 5.3.10: the freeze check comes after persisting
    CHECK(f.client.version("timestamp") == 1);
    CHECK(f.server.requests() == Requests{"/metadata/2.root.json", "/metadata/3.root.json"});
}

// --- endless data / hashes --------------------------------------------------------------------

TEST_CASE("endless data: bodies longer than their bound are cut off and rejected") {
    Fixture f;
    std::vector<std::string> updated;
    SECTION("timestamp (configured cap)") {
        f.server.set_endless("/metadata/timestamp.json");
    }
    SECTION("root N+1 (configured cap)") {
        f.server.set_endless("/metadata/2.root.json");
    }
    SECTION("snapshot (length from the timestamp)") {
        f.repo.bump_snapshot();
        f.server.put("/metadata/2.snapshot.json", f.repo.published["snapshot"] + "    ");
        updated = {"timestamp"};
    }
    SECTION("targets (length from the snapshot)") {
        f.repo.bump_targets();
        f.server.set_endless("/metadata/2.targets.json");
        updated = {"timestamp", "snapshot"};
    }
    SECTION("snapshot without a length: the configured cap") {
        f.repo.metafile_hashes = false;
        f.repo.bump_snapshot();
        f.server.set_endless("/metadata/2.snapshot.json");
        updated = {"timestamp"};
    }
    expect_rejected(f, ErrorKind::TooLarge, updated);
}

TEST_CASE("wrong hashes: content that does not match its listed hash is rejected") {
    Fixture f;
    std::vector<std::string> updated;
    SECTION("snapshot") {
        f.repo.bump_snapshot();
        std::string bytes = f.repo.published["snapshot"];
        bytes[bytes.size() - 1] = ' '; // same length, still valid JSON, other hash
        f.server.put("/metadata/2.snapshot.json", bytes);
        updated = {"timestamp"};
    }
    SECTION("targets") {
        f.repo.bump_targets();
        std::string bytes = f.repo.published["targets"];
        bytes[bytes.size() - 1] = ' ';
        f.server.put("/metadata/2.targets.json", bytes);
        updated = {"timestamp", "snapshot"};
    }
    expect_rejected(f, ErrorKind::HashMismatch, updated);
}

TEST_CASE("sha512 hashes are checked - an unknown hash algorithm is an error") {
    Fixture f;
    f.repo.bump_snapshot();
    const std::string snap = f.repo.published["snapshot"];
    Json& meta = f.repo.timestamp()["meta"]["snapshot.json"];
    f.repo.timestamp()["version"] = 3;
    SECTION("correct sha512 and sha256") {
        meta["hashes"]["sha512"] = sha512_hex(snap);
        f.repo.publish_role("timestamp");
        CHECK(f.client.refresh() == std::nullopt);
        CHECK(f.client.version("snapshot") == 2);
    }
    SECTION("wrong sha512, correct sha256") {
        meta["hashes"]["sha512"] = sha512_hex(snap + "x");
        f.repo.publish_role("timestamp");
        expect_rejected(f, ErrorKind::HashMismatch, {"timestamp"});
    }
    SECTION("unknown algorithm next to a correct sha256") {
        meta["hashes"]["md5"] = "00112233445566778899aabbccddeeff";
        f.repo.publish_role("timestamp");
        expect_rejected(f, ErrorKind::Unsupported, {"timestamp"});
    }
}

// --- keys and thresholds ------------------------------------------------------------------------

TEST_CASE("key compromise below the threshold: one of two required keys is not enough") {
    Fixture f;
    f.repo.add_key("snapshot");
    f.repo.root()["roles"]["snapshot"]["threshold"] = 2;
    f.repo.bump_root();
    f.repo.bump_snapshot();
    REQUIRE(f.client.refresh() == std::nullopt);
    // The attacker holds only the second snapshot key.
    auto stolen = f.repo.signers["snapshot"][1];
    f.repo.signers["snapshot"] = {stolen};
    f.repo.bump_snapshot();
    expect_rejected(f, ErrorKind::BadSignature, {"timestamp"});
    CHECK(f.client.version("snapshot") == 2);
}

TEST_CASE("a keyid signing twice makes the metadata malformed, whatever the threshold") {
    Fixture f;
    const uint64_t threshold = GENERATE(1, 2);
    INFO("threshold " << threshold);
    if (threshold == 2) {
        f.repo.add_key("snapshot");
        f.repo.root()["roles"]["snapshot"]["threshold"] = 2;
        f.repo.bump_root();
    }
    auto first = f.repo.signers["snapshot"][0];
    f.repo.signers["snapshot"] = {first, first};
    f.repo.bump_snapshot();
    if (threshold == 2)
        expect_rejected(f, ErrorKind::Malformed, {"root", "timestamp"});
    else
        expect_rejected(f, ErrorKind::Malformed, {"timestamp"});
    CHECK(f.client.version("snapshot") == 1);
}

TEST_CASE("one key listed under two keyids does not count twice") {
    Fixture f;
    auto key = f.repo.signers["snapshot"][0];
    const std::string id = publish::key_id(*key);
    // Same key material, other keyid (keyids are opaque); PEM line breaks changed as well.
    Json obj = publish::key_object(*key);
    std::string pem = obj["keyval"]["public"];
    pem.insert(pem.find('\n') + 1, "\n");
    obj["keyval"]["public"] = pem;
    f.repo.root()["keys"]["second-id"] = obj;
    f.repo.root()["roles"]["snapshot"]["keyids"].push_back("second-id");
    f.repo.root()["roles"]["snapshot"]["threshold"] = 2;
    f.repo.bump_root();
    f.repo.snapshot()["version"] = 2;
    f.repo.publish_snapshot();
    Json env = Json::parse(f.repo.published["snapshot"]);
    Json sig = env["signatures"][0];
    sig["keyid"] = "second-id";
    env["signatures"].push_back(sig);
    f.server.put("/metadata/2.snapshot.json", publish::to_bytes(env));
    f.repo.published["snapshot"] = publish::to_bytes(env);
    f.repo.bump_timestamp();
    expect_rejected(f, ErrorKind::BadSignature, {"root", "timestamp"});
    CHECK(f.client.version("root") == 2);
    CHECK(f.client.version("snapshot") == 1);
}

TEST_CASE("unknown, empty and garbage signatures are ignored, not fatal") {
    Fixture f;
    // Two more keys in the snapshot role (threshold 1) whose signatures are empty and not hex.
    const std::string empty_id = publish::key_id(*f.repo.add_key("snapshot"));
    const std::string garbage_id = publish::key_id(*f.repo.add_key("snapshot"));
    f.repo.signers["snapshot"].resize(1);
    f.repo.bump_root();
    f.repo.bump_snapshot();
    Json env = Json::parse(f.repo.published["snapshot"]);
    Json sigs =
        Json::array({Json{{"keyid", "no-such-key"}, {"sig", "3045022100ff"}},
                     Json{{"keyid", empty_id}, {"sig", ""}},
                     Json{{"keyid", garbage_id}, {"sig", "zz-not-hex"}}, env["signatures"][0]});
    std::string bytes = with_signatures(f.repo.published["snapshot"], sigs);
    f.server.put("/metadata/2.snapshot.json", bytes);
    f.repo.published["snapshot"] = bytes;
    f.repo.bump_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.files().at("snapshot.json") == bytes);
}

TEST_CASE("a key with an unsupported scheme cannot sign but does not break the role") {
    Fixture f;
    const std::vector<Json> odd_keys = {
        Json{{"keytype", "ecdsa"},
             {"scheme", "ecdsa-sha2-nistp384"},
             {"keyval", Json{{"public", "-----BEGIN PUBLIC KEY-----\nAAAA\n"}}}},
        Json{{"keytype", "ed25519"}, // an Ed25519 key whose public part is not 32 bytes
             {"scheme", "ed25519"},
             {"keyval", Json{{"public", "0123456789abcdef"}}}},
        Json{{"keytype", "rsa"}, {"scheme", "rsa-pkcs1v15-sha256"}, {"keyval", Json::object()}}};
    const Json odd = odd_keys.at(static_cast<size_t>(GENERATE(0, 1, 2)));
    INFO(odd.dump());
    f.repo.root()["keys"]["odd-key"] = odd;
    f.repo.root()["roles"]["snapshot"]["keyids"].push_back("odd-key");
    f.repo.bump_root();
    f.repo.bump_snapshot();
    Json env = Json::parse(f.repo.published["snapshot"]);
    env["signatures"].push_back(Json{{"keyid", "odd-key"}, {"sig", std::string(128, 'a')}});
    std::string bytes = publish::to_bytes(env);
    f.server.put("/metadata/2.snapshot.json", bytes);
    f.repo.published["snapshot"] = bytes;
    f.repo.bump_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt); // threshold 1 met by the real key
    // Threshold 2: the unsupported key cannot supply the second signature.
    f.repo.root()["roles"]["snapshot"]["threshold"] = 2;
    f.repo.bump_root();
    f.repo.bump_snapshot();
    expect_rejected(f, ErrorKind::BadSignature, {"root", "timestamp"});
}

TEST_CASE("RSA-PSS keys sign a whole repository") {
    TestHttpServer server;
    RepoSim repo(server, kSchemeRsaPss);
    repo.add_artifact("targets", "file.txt", "content");
    repo.bump_targets();
    TestClient c(repo);
    REQUIRE(c.refresh() == std::nullopt);
    tuf::TargetFile t;
    CHECK(c.find("file.txt", &t) == std::nullopt);
    CHECK(t.length == 7);
}

// --- root rotation -------------------------------------------------------------------------------

TEST_CASE("root rotation: new root keys, signed by the old and the new keys") {
    Fixture f;
    auto old_keys = f.repo.rotate_keys("root");
    f.repo.bump_root(old_keys);
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.files().at("root.json") == f.repo.published["root"]);
    // And the next rotation is checked against the new keys.
    f.repo.bump_root(old_keys);
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.version("root") == 3);
}

TEST_CASE("root rotation: rejected unless signed by the old and the new threshold at N+1") {
    Fixture f;
    std::string trusted_root = f.client.files().at("root.json");
    SECTION("signed only by the new keys") {
        f.repo.rotate_keys("root");
        f.repo.bump_root();
        expect_rejected(f, ErrorKind::BadSignature);
    }
    SECTION("signed only by the old keys") {
        auto old_keys = f.repo.rotate_keys("root");
        f.repo.signers["root"].clear();
        f.repo.bump_root(old_keys);
        expect_rejected(f, ErrorKind::BadSignature);
    }
    SECTION("file 2.root.json holds version 3") {
        f.repo.root()["version"] = 3;
        f.repo.publish_root();
        f.server.put("/metadata/2.root.json", f.repo.published["root"]);
        expect_rejected(f, ErrorKind::Rollback);
    }
    SECTION("file 2.root.json holds version 1") {
        f.server.put("/metadata/2.root.json", f.repo.initial_root);
        expect_rejected(f, ErrorKind::Rollback);
    }
    CHECK(f.client.files().at("root.json") == trusted_root);
}

TEST_CASE("root rotation stops after the configured number of rotations") {
    Fixture f;
    for (int i = 0; i < 6; ++i)
        f.repo.bump_root();
    f.client.config.max_root_rotations = 3;
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.version("root") == 4);
    auto req = f.server.requests();
    CHECK(std::count(req.begin(), req.end(), "/metadata/5.root.json") == 0);
    CHECK(req.front() == "/metadata/2.root.json");
}

TEST_CASE("a root larger than the configured cap is rejected") {
    Fixture f;
    f.repo.root()["padding"] = std::string(4096, 'p');
    f.repo.bump_root();
    f.client.config.max_root_length = 2048;
    expect_rejected(f, ErrorKind::TooLarge);
}

// --- fast-forward recovery -------------------------------------------------------------------

TEST_CASE("fast-forward recovery: rotating timestamp keys drops the trusted timestamp") {
    Fixture f;
    f.repo.timestamp()["version"] = 1000;
    f.repo.publish_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.version("timestamp") == 1000);
    // Without a key rotation the repository cannot go back.
    f.repo.timestamp()["version"] = 2;
    f.repo.publish_timestamp();
    expect_rejected(f, ErrorKind::Rollback);
    f.repo.rotate_keys("timestamp");
    f.repo.bump_root();
    f.repo.publish_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.version("timestamp") == 2);
}

TEST_CASE("fast-forward recovery: rotating snapshot keys drops the trusted snapshot") {
    Fixture f;
    f.repo.snapshot()["version"] = 1000;
    f.repo.publish_snapshot();
    f.repo.bump_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt);
    f.repo.snapshot()["version"] = 2;
    f.repo.publish_snapshot();
    f.repo.bump_timestamp();
    expect_rejected(f, ErrorKind::Rollback);
    f.repo.rotate_keys("snapshot");
    f.repo.bump_root();
    f.repo.publish_snapshot();
    f.repo.bump_timestamp();
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.client.version("snapshot") == 2);
}

// --- persistence ---------------------------------------------------------------------------

TEST_CASE("unusable local copies are ignored and replaced by verified downloads") {
    Fixture f;
    auto good = f.client.files();
    write_all_file(f.client.md + "/timestamp.json", "{garbage");
    write_all_file(f.client.md + "/snapshot.json", "");
    write_all_file(f.client.md + "/targets.json.tmp", "left over by a crash");
    REQUIRE(f.client.refresh() == std::nullopt);
    auto after = f.client.files();
    CHECK(after.at("timestamp.json") == good.at("timestamp.json"));
    CHECK(after.at("snapshot.json") == good.at("snapshot.json"));
    CHECK(after.at("targets.json") == good.at("targets.json"));
}
