// The agent end to end (ota-publish, nginx, ota-agent over the simulated ECU): `status --json`
// shows the chain of trusted roots, and a damaged trusted root.json does not stop the agent.
#include "agent/common/fs.h"
#include "slice/slice_fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

TEST_CASE("agent: status shows the trusted roots; a damaged root.json falls back to the last") {
    Slice s;
    Result r = s.agent("check");
    INFO(r.output);
    REQUIRE(r.status == 0);
    Json roots = s.status()["trusted_roots"];
    REQUIRE(roots.size() == 1);
    CHECK(roots[0]["version"] == 1);
    CHECK(roots[0]["intact"] == true);
    CHECK(roots[0]["roles"]["root"]["keytypes"] == Json::array({"ecdsa"}));

    // The backend moves its root key to Ed25519: root 2, signed by the old and the new key.
    r = s.publish("rotate --repo " + quote(s.repo_dir()) + " --role root --key-type ed25519");
    INFO(r.output);
    REQUIRE(r.status == 0);
    r = s.agent("check");
    INFO(r.output);
    REQUIRE(r.status == 0);
    roots = s.status()["trusted_roots"];
    REQUIRE(roots.size() == 2);
    CHECK(roots[1]["version"] == 2);
    CHECK(roots[1]["roles"]["root"]["keytypes"] == Json::array({"ed25519"}));
    CHECK(roots[1]["roles"]["targets"]["keytypes"] == Json::array({"ecdsa"}));

    // The trusted root.json is damaged (a bad flash page): the agent carries on from root 2.
    const std::string root_file = s.state_dir() + "/metadata/root.json";
    write_all_file(root_file, "\xff\xff\xff\xff");
    r = s.agent("check");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output.find("falling back to root version 2") != std::string::npos);
    CHECK(read_all(root_file) == read_all(s.repo_dir() + "/metadata/2.root.json"));
    CHECK(s.status()["trusted_roots"].size() == 2);

    // root.json lost: the agent installs its factory root (version 1) again, which must not
    // outrank root 2, verified since.
    remove_file_durable(root_file);
    r = s.agent("check");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(read_all(root_file) == read_all(s.repo_dir() + "/metadata/2.root.json"));
    CHECK(s.status()["trusted_roots"].size() == 2);
}
