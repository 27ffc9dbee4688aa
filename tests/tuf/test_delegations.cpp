// Delegated targets (spec 5.6.7 / 5.7): pre-order depth-first search over the delegation graph,
// terminating delegations, cycles, the visit limit, path patterns and hash prefixes, succinct hash
// bins, percent-encoded role names and the checks each delegated role must pass.
#include "agent/tuf/metadata.h"
#include "manifests/publisher/repository.h"
#include "tuf/repo_sim.h"
#include "tuf/tuf_test_client.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using Requests = std::vector<std::string>;

namespace {

struct Delegation {
    std::string delegator, name;
    Json paths = Json::array({"*"});
    bool terminating = false;
};

// Publishes every role as it is now (a client that has seen nothing yet).
void publish_all(RepoSim& repo) {
    for (const auto& [role, body] : repo.md)
        if (role != "root" && role != "timestamp" && role != "snapshot") repo.publish_role(role);
    repo.publish_snapshot();
    repo.publish_timestamp();
}

void build(RepoSim& repo, const std::vector<Delegation>& graph) {
    for (const auto& d : graph)
        repo.add_delegation(d.delegator, d.name, d.paths, d.terminating);
    publish_all(repo);
}

// Delegated metadata the search requested, as role names (after the four top-level requests).
std::vector<std::string> delegated_requests(const TestHttpServer& server) {
    std::vector<std::string> out;
    auto req = server.requests();
    for (size_t i = 4; i < req.size(); ++i) {
        std::string r = req[i].substr(std::string("/metadata/1.").size());
        out.push_back(r.substr(0, r.size() - 5));
    }
    return out;
}

} // namespace

TEST_CASE("delegation graphs are searched in pre-order depth-first order") {
    struct Case {
        const char* title;
        std::vector<Delegation> graph;
        std::vector<std::string> visited;
    };
    const std::vector<Case> cases = {
        {"basic", {{"targets", "A"}}, {"A"}},
        {"single level", {{"targets", "A"}, {"targets", "B"}}, {"A", "B"}},
        {"two levels", {{"targets", "A"}, {"targets", "B"}, {"B", "C"}}, {"A", "B", "C"}},
        {"DFS order",
         {{"targets", "A"}, {"targets", "B"}, {"A", "C"}, {"A", "D"}},
         {"A", "C", "D", "B"}},
        {"three levels DFS",
         {{"targets", "A"}, {"targets", "B"}, {"A", "C"}, {"C", "D"}},
         {"A", "C", "D", "B"}},
        {"terminating stops backtracking",
         {{"targets", "A"}, {"targets", "B"}, {"A", "C", Json::array({"*"}), true}, {"A", "D"}},
         {"A", "C"}},
        {"terminating keeps its own descendants",
         {{"targets", "A"}, {"targets", "B"}, {"A", "C", Json::array({"*"}), true}, {"C", "D"}},
         {"A", "C", "D"}},
        {"non-matching branch skipped",
         {{"targets", "A", Json::array({"*.py"})}, {"targets", "B"}, {"A", "C"}},
         {"B"}},
        {"non-matching deeper branch skipped",
         {{"targets", "A"}, {"targets", "B"}, {"A", "C", Json::array({"*.py"})}, {"C", "D"}},
         {"A", "B"}},
        {"cycle",
         {{"targets", "A"}, {"targets", "B"}, {"B", "C"}, {"C", "D"}, {"D", "B"}},
         {"A", "B", "C", "D"}},
        {"two delegators of one role",
         {{"targets", "A"}, {"targets", "B"}, {"B", "C"}, {"A", "C"}},
         {"A", "C", "B"}},
        {"second delegator's matching path",
         {{"targets", "A"}, {"targets", "B"}, {"B", "C"}, {"A", "C", Json::array({"*.py"})}},
         {"A", "B", "C"}},
    };
    auto index = GENERATE(range(0, 12));
    const Case& c = cases.at(static_cast<size_t>(index));
    INFO(c.title);
    TestHttpServer server;
    RepoSim repo(server);
    build(repo, c.graph);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("missingpath") == ErrorKind::NotFound);
    CHECK(delegated_requests(server) == c.visited);
}

TEST_CASE("target search through path patterns finds each target in the right role") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "A", Json::array({"*.doc", "*.md"}));
    repo.add_delegation("targets", "B", Json::array({"releases/*/*"}));
    repo.add_delegation("B", "C", Json::array({"releases/x/*"}));
    repo.add_delegation("B", "D", Json::array({"releases/y/*.zi?"}));
    repo.add_artifact("targets", "targetfile", "top");
    repo.add_artifact("A", "README.md", "readme");
    repo.add_artifact("C", "releases/x/x_v1", "x1");
    repo.add_artifact("D", "releases/y/y_v1.zip", "y1");
    repo.add_artifact("D", "releases/z/z_v1.zip", "z1"); // D is not trusted for releases/z
    publish_all(repo);
    struct Case {
        std::string path;
        bool found;
        std::vector<std::string> visited;
    };
    const std::vector<Case> cases = {{"targetfile", true, {}},
                                     {"README.md", true, {"A"}},
                                     {"releases/x/x_v1", true, {"B", "C"}},
                                     {"releases/y/y_v1.zip", true, {"B", "D"}},
                                     {"releases/z/z_v1.zip", false, {"B"}}};
    auto index = GENERATE(range(0, 5));
    const Case& c = cases.at(static_cast<size_t>(index));
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    tuf::TargetFile t;
    auto result = client.find(c.path, &t);
    CHECK(result.has_value() == !c.found);
    if (c.found) CHECK(t.path == c.path);
    CHECK(delegated_requests(server) == c.visited);
}

TEST_CASE("path_hash_prefixes delegate by the hash of the target path") {
    TestHttpServer server;
    RepoSim repo(server);
    const std::string path = "firmware/ecu.bin";
    const std::string prefix = sha256_hex(path).substr(0, 2);
    const std::string other = prefix == "00" ? "01" : "00";
    repo.add_delegation("targets", "miss", Json::array({other}), false, "path_hash_prefixes");
    repo.add_delegation("targets", "hit", Json::array({prefix}), false, "path_hash_prefixes");
    repo.add_artifact("hit", path, "image");
    repo.add_artifact("miss", path, "evil"); // listed, but not trusted for this path
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    tuf::TargetFile t;
    REQUIRE(client.find(path, &t) == std::nullopt);
    CHECK(t.hashes.at("sha256") == sha256_hex("image"));
    CHECK(delegated_requests(server) == std::vector<std::string>{"hit"});
}

TEST_CASE("the search visits at most max_delegations delegated roles") {
    TestHttpServer server;
    RepoSim repo(server);
    std::string parent = "targets";
    for (int i = 0; i < 12; ++i) {
        std::string name = "r" + std::to_string(i);
        repo.add_delegation(parent, name);
        parent = name;
    }
    repo.add_artifact(parent, "deep", "deep content"); // in the 12th role
    publish_all(repo);
    TestClient client(repo);
    client.config.max_delegations = 5;
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("deep") == ErrorKind::NotFound);
    CHECK(delegated_requests(server).size() == 5);
    client.config.max_delegations = 32;
    server.clear_requests();
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("deep") == std::nullopt);
}

TEST_CASE("role names are percent-encoded in URLs and in file names") {
    const std::string name =
        GENERATE(std::string("?"), std::string("#"), std::string("/delegatedrole"),
                 std::string("../delegatedrole"), std::string("a b%"));
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", name);
    repo.add_artifact(name, "file", "data");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    REQUIRE(client.find("file") == std::nullopt);
    const std::string encoded = tuf::percent_encode(name);
    CHECK(server.requests().back() == "/metadata/1." + encoded + ".json");
    auto files = client.files();
    CHECK(files.size() == 5);
    CHECK(files.at(encoded + ".json") == repo.published[name]);
    CHECK(encoded.find('/') == std::string::npos);
}

TEST_CASE("a delegated role must be listed in snapshot, signed by its delegator's keys and match") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "A");
    repo.add_artifact("A", "file", "data");
    publish_all(repo);
    SECTION("not listed in snapshot") {
        repo.snapshot()["meta"].erase("A.json");
        repo.publish_role("snapshot");
        repo.publish_timestamp();
    }
    SECTION("signed by another key") {
        repo.signers["A"] = {new_key()};
        publish_all(repo);
    }
    SECTION("version other than the snapshot's") {
        repo.metafile_hashes = false;
        publish_all(repo);
        repo.md["A"]["version"] = 2;
        server.put("/metadata/1.A.json", repo.sign("A"));
    }
    SECTION("expired") {
        repo.md["A"]["expires"] = tuf::format_expiry(::time(nullptr) - 10);
        publish_all(repo);
    }
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    auto before = client.files();
    CHECK(client.find("file").has_value());
    CHECK(client.files() == before); // the rejected role is not stored
}

TEST_CASE("a cached delegated role is verified again against its current delegator") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "A");
    repo.add_artifact("A", "file", "data");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    REQUIRE(client.find("file") == std::nullopt);
    REQUIRE(client.files().count("A.json"));
    // The delegator revokes A's key; A itself (cached by the client) is unchanged.
    KeyPtr fresh = new_key();
    const std::string id = publish::key_id(*fresh);
    repo.targets()["delegations"]["keys"] = Json{{id, publish::key_object(*fresh)}};
    repo.targets()["delegations"]["roles"][0]["keyids"] = Json::array({id});
    repo.bump_targets();
    server.clear_requests();
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("file") == ErrorKind::BadSignature);
    // Once A is re-signed with the new key (and a new version), the search succeeds again.
    repo.signers["A"] = {fresh};
    repo.bump_targets("A");
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("file") == std::nullopt);
    CHECK(client.version("A") == 2);
}

TEST_CASE("succinct hash-bin delegations lead to the bin of the target path") {
    TestHttpServer server;
    RepoSim repo(server);
    KeyPtr bins_key = new_key();
    const std::string id = publish::key_id(*bins_key);
    repo.targets()["delegations"] = Json{{"keys", Json{{id, publish::key_object(*bins_key)}}},
                                         {"succinct_roles", Json{{"keyids", Json::array({id})},
                                                                 {"threshold", 1},
                                                                 {"bit_length", 2},
                                                                 {"name_prefix", "bin"}}}};
    const std::string path = "some/file.bin";
    tuf::SuccinctRoles s;
    s.bit_length = 2;
    s.name_prefix = "bin";
    const std::string bin = s.role_for_target(path);
    for (const char* b : {"bin-0", "bin-1", "bin-2", "bin-3"}) {
        repo.md[b] = Json{{"_type", "targets"},
                          {"spec_version", "1.0.31"},
                          {"version", 1},
                          {"expires", expires_in_days(30)},
                          {"targets", Json::object()}};
        repo.signers[b] = {bins_key};
    }
    repo.add_artifact(bin, path, "binned");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    tuf::TargetFile t;
    REQUIRE(client.find(path, &t) == std::nullopt);
    CHECK(t.length == 6);
    CHECK(delegated_requests(server) == std::vector<std::string>{bin});
    // Targets of delegated roles are part of all_targets() too (the agent's view).
    auto all = client.updater->all_targets();
    REQUIRE(all.size() == 1);
    CHECK(all[0].path == path);
}

TEST_CASE("a role trusted through one delegator is not trusted through another of the same name") {
    // targets -> A (a/*) -> release (key K1, a/* and b/*)
    // targets -> B (b/*) -> release (key K2, b/*)
    // release is signed by K1 only: A's path may use it, B's path must not.
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "A", Json::array({"a/*"}));
    repo.add_delegation("targets", "B", Json::array({"b/*"}));
    repo.add_delegation("A", "release", Json::array({"a/*", "b/*"}));
    const KeyPtr k1 = repo.signers["release"].at(0);
    repo.add_delegation("B", "release", Json::array({"b/*"}));
    repo.signers["release"] = {k1};
    repo.add_artifact("release", "a/good", "good");
    repo.add_artifact("release", "b/evil", "evil");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    SECTION("after the role was loaded through the first delegator") {
        tuf::TargetFile t;
        REQUIRE(client.find("a/good", &t) == std::nullopt);
        CHECK(t.hashes.at("sha256") == sha256_hex("good"));
        INFO(client.last_error);
        CHECK(client.find("b/evil") == ErrorKind::BadSignature);
    }
    SECTION("in a fresh search (the role read from the metadata folder)") {
        REQUIRE(client.find("a/good") == std::nullopt);
        REQUIRE(client.refresh() == std::nullopt);
        CHECK(client.find("b/evil") == ErrorKind::BadSignature);
    }
    SECTION("all_targets lists the target only where the search resolves to it") {
        CHECK_THROWS_AS(client.updater->all_targets(), Error); // b/evil's search fails: refused
    }
    CHECK(client.files().at("release.json") == repo.published["release"]);
}

TEST_CASE("the same role name delegated twice is searched through both delegators' keys") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "A", Json::array({"a/*"}));
    repo.add_delegation("targets", "B", Json::array({"b/*"}));
    repo.add_delegation("A", "release", Json::array({"a/*", "b/*"}));
    repo.add_delegation("B", "release", Json::array({"b/*"})); // release signed by K1 and K2
    repo.add_artifact("release", "a/good", "good");
    repo.add_artifact("release", "b/also-good", "fine");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    REQUIRE(client.find("a/good") == std::nullopt);
    REQUIRE(client.find("b/also-good") == std::nullopt);
    auto all = client.updater->all_targets();
    CHECK(all.size() == 2);
}

TEST_CASE("delegation paths with bracket expressions route targets to the right role") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "ecu-ab", Json::array({"ecu-[ab]/*"}));
    repo.add_delegation("targets", "not-c", Json::array({"ecu-[!abc]/*.bin"}));
    repo.add_artifact("ecu-ab", "ecu-a/fw.bin", "a");
    repo.add_artifact("ecu-ab", "ecu-c/fw.bin", "listed where it is not trusted");
    repo.add_artifact("not-c", "ecu-d/fw.bin", "d");
    publish_all(repo);
    TestClient client(repo);
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.find("ecu-a/fw.bin") == std::nullopt);
    CHECK(client.find("ecu-d/fw.bin") == std::nullopt);
    CHECK(client.find("ecu-c/fw.bin") == ErrorKind::NotFound);
    CHECK(client.find("ecu-d/fw.img") == ErrorKind::NotFound);
}
