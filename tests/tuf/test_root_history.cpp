// The root history (METADATA_DIR/root_history/): every verified root kept with the time it was
// accepted, shown by ota-tuf-client root-history, and the fallback when the trusted root.json is
// damaged: the newest root the history chain verifies, never an unverified one, never an older one.
#include "agent/common/fs.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/root_history.h"
#include "manifests/publisher/repository.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"
#include "tuf/tuf_test_client.h"

#include <catch2/catch.hpp>
#include <ctime>

using namespace ota;
using namespace ota::test;
using Requests = std::vector<std::string>;

namespace {

// A client that trusts root version 3 (rotated from 1 through 2), with each version's bytes.
struct RotatedClient {
    TestHttpServer server;
    RepoSim repo{server};
    std::map<uint64_t, std::string> roots{{1, repo.initial_root}};
    TestClient client{repo};
    RotatedClient() {
        for (uint64_t v : {2, 3}) {
            repo.bump_root();
            roots[v] = repo.published["root"];
        }
        REQUIRE(client.refresh() == std::nullopt);
        REQUIRE(client.version("root") == 3);
        server.clear_requests();
    }
    std::string root_file() const { return client.md + "/root.json"; }
    std::string record_file(uint64_t v) const {
        return client.md + "/root_history/" + std::to_string(v) + ".json";
    }
    // Publishes root 4 (same keys), the next one the client should fetch.
    void publish_next_root() {
        repo.bump_root();
        roots[4] = repo.published["root"];
    }
};

std::string quote(const std::string& s) {
    return "'" + s + "'";
}

} // namespace

TEST_CASE("every root the client accepts is kept with the time it was accepted") {
    TestHttpServer server;
    RepoSim repo(server);
    std::map<uint64_t, std::string> roots{{1, repo.initial_root}};
    for (uint64_t v : {2, 3}) {
        repo.bump_root();
        roots[v] = repo.published["root"];
    }
    TestClient client(repo);
    const int64_t days = 3; // the refresh's reference time is three days ahead
    const int64_t before = static_cast<int64_t>(::time(nullptr)) + days * 86400;
    REQUIRE(client.refresh(days) == std::nullopt);
    const int64_t after = static_cast<int64_t>(::time(nullptr)) + days * 86400;
    const auto history = client.history();
    REQUIRE(history.size() == 3);
    for (uint64_t v : {1, 2, 3}) {
        INFO("version " << v);
        const Json record = Json::parse(history.at(std::to_string(v) + ".json"));
        CHECK(record.at("root") == roots.at(v)); // the exact bytes received
        if (v > 1) {                             // root 1 was accepted at init, without a shift
            const int64_t accepted = tuf::parse_expiry(record.at("accepted"));
            CHECK(accepted >= before);
            CHECK(accepted <= after);
        }
    }
    const Json chain = tuf::root_history_json(client.md);
    REQUIRE(chain.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        INFO("entry " << i);
        CHECK(chain[i]["version"] == i + 1);
        CHECK(chain[i]["intact"] == true);
        for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
            CHECK(chain[i]["roles"][role]["threshold"] == 1);
            CHECK(chain[i]["roles"][role]["keyids"] == repo.root()["roles"][role]["keyids"]);
            CHECK(chain[i]["roles"][role]["keytypes"] == Json::array({"ecdsa"}));
        }
        CHECK(chain[i]["expires"] == Json::parse(roots.at(i + 1))["signed"]["expires"]);
    }
    // A second refresh with nothing new changes nothing.
    REQUIRE(client.refresh() == std::nullopt);
    CHECK(client.history() == history);
}

TEST_CASE("a damaged root.json falls back to the newest verified root and refreshes from there") {
    RotatedClient f;
    const std::string damage =
        GENERATE(std::string("garbage"), std::string("empty"), std::string("truncated"),
                 std::string("signed part changed"), std::string("signature changed"),
                 std::string("missing"));
    INFO(damage);
    const std::string good = f.roots.at(3);
    if (damage == "garbage") {
        write_all_file(f.root_file(), "\x01\x02 not json");
    } else if (damage == "empty") {
        write_all_file(f.root_file(), "");
    } else if (damage == "truncated") {
        write_all_file(f.root_file(), good.substr(0, good.size() / 2));
    } else if (damage == "signed part changed") {
        Json env = Json::parse(good);
        env["signed"]["expires"] = "2099-01-01T00:00:00Z";
        write_all_file(f.root_file(), publish::to_bytes(env));
    } else if (damage == "signature changed") {
        Json env = Json::parse(good);
        std::string sig = env["signatures"][0]["sig"];
        sig[10] = sig[10] == '0' ? '1' : '0';
        env["signatures"][0]["sig"] = sig;
        write_all_file(f.root_file(), publish::to_bytes(env));
    } else {
        remove_file_durable(f.root_file());
    }
    f.publish_next_root();
    REQUIRE(f.client.refresh() == std::nullopt);
    // Version 3 was the start: the first request is for root 4, not for root 2.
    REQUIRE_FALSE(f.server.requests().empty());
    CHECK(f.server.requests().front() == "/metadata/4.root.json");
    CHECK(f.client.version("root") == 4);
    CHECK(read_all(f.root_file()) == f.roots.at(4));
    CHECK(Json::parse(f.client.history().at("4.json"))["root"] == f.roots.at(4));
}

TEST_CASE("a damaged root.json with nothing new in the repository is restored from the history") {
    RotatedClient f;
    write_all_file(f.root_file(), "{}");
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.server.requests() == Requests{"/metadata/4.root.json", "/metadata/timestamp.json"});
    CHECK(read_all(f.root_file()) == f.roots.at(3));
}

TEST_CASE("the factory root re-installed never outranks the roots verified since") {
    RotatedClient f;
    // What the agent does when root.json is gone: it installs the root shipped with the image.
    remove_file_durable(f.root_file());
    tuf::Updater::initialize(f.client.md, f.repo.initial_root);
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(f.server.requests().front() == "/metadata/4.root.json");
    CHECK(f.client.version("root") == 3);
    CHECK(read_all(f.root_file()) == f.roots.at(3));
    CHECK(f.client.history().size() == 3);
}

TEST_CASE("a different initial root starts a new history") {
    RotatedClient f;
    TestHttpServer other_server;
    RepoSim other(other_server);
    f.client.config.metadata_base_url = other.metadata_url();
    tuf::Updater::initialize(f.client.md, other.initial_root);
    REQUIRE(f.client.refresh() == std::nullopt);
    CHECK(other_server.requests().front() == "/metadata/2.root.json");
    CHECK(f.client.version("root") == 1);
    const auto history = f.client.history();
    REQUIRE(history.size() == 1);
    CHECK(Json::parse(history.at("1.json"))["root"] == other.initial_root);
}

TEST_CASE("only verified roots are fallbacks: a forged or damaged record is passed over") {
    RotatedClient f;
    write_all_file(f.root_file(), "damaged");
    SECTION("a self-signed root 4 that root 3's keys never signed") {
        KeyPtr forger = new_key();
        Json forged = f.repo.root();
        forged["version"] = 4;
        const std::string id = publish::key_id(*forger);
        forged["keys"][id] = publish::key_object(*forger);
        forged["roles"]["root"]["keyids"] = Json::array({id});
        const std::string bytes = sign_bytes(forged, {forger});
        REQUIRE_NOTHROW(tuf::TrustedSet(bytes, 0)); // valid on its own
        write_all_file(f.record_file(4),
                       Json{{"accepted", "2030-01-01T00:00:00Z"}, {"root", bytes}}.dump());
        f.publish_next_root();
        REQUIRE(f.client.refresh() == std::nullopt);
        CHECK(f.server.requests().front() == "/metadata/4.root.json");
        CHECK(read_all(f.root_file()) == f.roots.at(4));
        // The forged record is replaced by the root 4 the client verified.
        CHECK(Json::parse(read_all(f.record_file(4)))["root"] == f.roots.at(4));
    }
    SECTION("the newest record is damaged: the one before it is used") {
        Json record = Json::parse(read_all(f.record_file(3)));
        std::string bytes = record["root"];
        bytes[bytes.find("\"version\"") + 12] ^= 0x01; // 3 -> 2 in the signed part
        record["root"] = bytes;
        write_all_file(f.record_file(3), record.dump());
        REQUIRE(f.client.refresh() == std::nullopt);
        CHECK(f.server.requests().front() == "/metadata/3.root.json");
        CHECK(f.client.version("root") == 3);
        CHECK(Json::parse(read_all(f.record_file(3)))["root"] == f.roots.at(3));
        const Json chain = tuf::root_history_json(f.client.md);
        CHECK(chain.size() == 3);
        for (const auto& entry : chain)
            CHECK(entry["intact"] == true);
    }
    SECTION("a gap in the chain: nothing above it is used") {
        remove_file_durable(f.record_file(2));
        REQUIRE(f.client.refresh() == std::nullopt);
        CHECK(f.server.requests().front() == "/metadata/2.root.json");
        CHECK(f.client.version("root") == 3);
    }
}

TEST_CASE("with no verified root to fall back to, the damaged root.json's error stands") {
    TestHttpServer server;
    RepoSim repo(server);
    TestClient client(repo);
    write_all_file(client.md + "/root.json", "{\"signed\": ");
    write_all_file(client.md + "/root_history/1.json", "{\"accepted\": 1}");
    const auto files = client.files();
    const auto history = client.history();
    CHECK(client.refresh() == ErrorKind::Malformed);
    CHECK(server.requests().empty());
    CHECK(client.files() == files);
    CHECK(client.history() == history);
    const Json chain = tuf::root_history_json(client.md);
    REQUIRE(chain.size() == 1);
    CHECK(chain[0]["intact"] == false);
}

TEST_CASE("a metadata folder from before the history existed starts it at its trusted root") {
    RotatedClient f;
    for (uint64_t v : {1, 2, 3})
        remove_file_durable(f.record_file(v));
    REQUIRE(f.client.history().empty());
    REQUIRE(f.client.refresh() == std::nullopt);
    const auto history = f.client.history();
    REQUIRE(history.size() == 1);
    CHECK(Json::parse(history.at("3.json"))["root"] == f.roots.at(3));
}

TEST_CASE("cli: root-history lists the chain, and a damaged root.json is reported on refresh") {
    RotatedClient f;
    std::string out;
    const std::string cli = built_program("ota-tuf-client");
    REQUIRE(run_command(cli + " --metadata-dir " + quote(f.client.md) + " root-history", &out) ==
            0);
    INFO(out);
    for (const char* line :
         {"root version 1  accepted ", "root version 2  accepted ", "root version 3  accepted ",
          "    root      1 of ecdsa:", "    timestamp 1 of ecdsa:"})
        CHECK(out.find(line) != std::string::npos);
    REQUIRE(run_command(cli + " --metadata-dir " + quote(f.client.md) + " --json root-history",
                        &out) == 0);
    const Json chain = Json::parse(out);
    CHECK(chain == tuf::root_history_json(f.client.md));
    CHECK(chain.size() == 3);
    // Refresh with root.json damaged: success, and the warning says what happened.
    write_all_file(f.root_file(), "damaged");
    REQUIRE(run_command(cli + " --metadata-url " + quote(f.repo.metadata_url()) +
                            " --metadata-dir " + quote(f.client.md) + " refresh",
                        &out) == 0);
    CHECK(out.find("falling back to root version 3") != std::string::npos);
    CHECK(read_all(f.root_file()) == f.roots.at(3));
}
