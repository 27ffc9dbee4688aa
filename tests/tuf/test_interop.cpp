// Interoperability: a repository written by another TUF implementation (@tufjs/models, the
// metadata models of tuf-js; tests/tuf/vectors/README.md) is read by the agent's updater and by
// ota-tuf-client. The other direction (tuf-js reading ota-publish repositories) is
// tests/tuf/interop/run-tuf-js-interop.sh, run by hand.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/updater.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using Requests = std::vector<std::string>;

namespace {

const std::string kHello = "hello from a tuf-js repository\n";
const std::string kApp = "application 1.0, delegated\n";

std::string vectors() {
    return source_path("tests/tuf/vectors/tufjs");
}

// The updater over the served vectors, initialised with their root 1.
struct VectorClient {
    TestHttpServer server;
    TempDir tmp;
    tuf::UpdaterConfig config;
    net::CurlFetcher fetcher;
    VectorClient() {
        serve_tree(server, vectors());
        config.metadata_dir = tmp.file("md");
        config.metadata_base_url = server.url("/metadata/");
        config.targets_base_url = server.url("/targets/");
        tuf::Updater::initialize(config.metadata_dir,
                                 read_all(vectors() + "/metadata/1.root.json"));
    }
};

} // namespace

TEST_CASE(
    "interop: the updater reads a repository written by tuf-js (Ed25519, rotation, delegation)") {
    VectorClient c;
    tuf::Updater updater(c.config, c.fetcher);
    REQUIRE_NOTHROW(updater.refresh());
    CHECK(c.server.requests() == Requests{"/metadata/2.root.json", "/metadata/3.root.json",
                                          "/metadata/timestamp.json", "/metadata/1.snapshot.json",
                                          "/metadata/1.targets.json"});
    CHECK(updater.trusted().root().env.version == 2);
    CHECK(read_all(c.config.metadata_dir + "/root.json") ==
          read_all(vectors() + "/metadata/2.root.json"));

    auto hello = updater.find_target("hello.txt");
    REQUIRE(hello);
    CHECK(hello->hashes.size() == 2); // sha256 and sha512, both checked
    updater.download_target(*hello, c.tmp.file("hello.txt"));
    CHECK(read_all(c.tmp.file("hello.txt")) == kHello);

    auto app = updater.find_target("releases/app-1.0.bin");
    REQUIRE(app);
    CHECK(c.server.requests().back() == "/metadata/1.releases.json");
    updater.download_target(*app, c.tmp.file("app"));
    CHECK(read_all(c.tmp.file("app")) == kApp);
    CHECK(updater.all_targets().size() == 2);
    CHECK_FALSE(updater.find_target("elsewhere/app-1.0.bin"));
}

TEST_CASE("interop: ota-tuf-client downloads both targets of the tuf-js repository") {
    VectorClient c;
    TempDir out;
    const std::string md = out.file("md"), td = out.file("targets");
    const std::string cli = built_program("ota-tuf-client");
    std::string output;
    REQUIRE(run_command(cli + " --metadata-dir '" + md + "' init '" + vectors() +
                            "/metadata/1.root.json'",
                        &output) == 0);
    INFO(output);
    REQUIRE(run_command(cli + " --metadata-url '" + c.server.url("/metadata/") +
                            "' --metadata-dir '" + md +
                            "' --target-name hello.txt --target-name releases/app-1.0.bin"
                            " --target-dir '" +
                            td + "' --target-base-url '" + c.server.url("/targets/") + "' download",
                        &output) == 0);
    CHECK(read_all(td + "/hello.txt") == kHello);
    CHECK(read_all(td + "/releases%2Fapp-1.0.bin") == kApp);
    REQUIRE(run_command(cli + " --metadata-dir '" + md + "' --json root-history", &output) == 0);
    const Json chain = Json::parse(output);
    REQUIRE(chain.size() == 2);
    CHECK(chain[1]["roles"]["targets"]["threshold"] == 2);
    CHECK(chain[1]["roles"]["targets"]["keytypes"] == Json::array({"ed25519", "ed25519"}));
}

TEST_CASE("interop: the tuf-js vectors are verified, not trusted blindly") {
    VectorClient c;
    const std::string change =
        GENERATE(std::string("one of two targets signatures"), std::string("target content"),
                 std::string("delegated role signature"));
    INFO(change);
    if (change == "one of two targets signatures") {
        Json env = Json::parse(read_all(vectors() + "/metadata/1.targets.json"));
        env["signatures"].erase(1);
        c.server.put("/metadata/1.targets.json", env.dump(2));
    } else if (change == "delegated role signature") {
        Json env = Json::parse(read_all(vectors() + "/metadata/1.releases.json"));
        std::string sig = env["signatures"][0]["sig"];
        sig[0] = sig[0] == 'a' ? 'b' : 'a';
        env["signatures"][0]["sig"] = sig;
        c.server.put("/metadata/1.releases.json", env.dump(2));
    }
    tuf::Updater updater(c.config, c.fetcher);
    if (change == "one of two targets signatures") {
        CHECK_THROWS_AS(updater.refresh(), Error);
        return;
    }
    REQUIRE_NOTHROW(updater.refresh());
    if (change == "delegated role signature") {
        CHECK_THROWS_AS(updater.find_target("releases/app-1.0.bin"), Error);
        return;
    }
    auto hello = updater.find_target("hello.txt");
    REQUIRE(hello);
    const std::string url = updater.target_url(*hello);
    c.server.put(url.substr(url.find("/targets/")), "hello from somewhere else....\n\n");
    CHECK_THROWS_AS(updater.download_target(*hello, c.tmp.file("hello.txt")), Error);
    CHECK_FALSE(file_exists(c.tmp.file("hello.txt")));
}
