// Targets hashed with sha512 only (valid TUF), or with no hash the agent knows; and the daemon,
// which turns whatever one step throws into a reported failure.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "agent/service/daemon.h"
#include "manifests/publisher/repository.h"
#include "tests/update/engine_fixture.h"

#include <catch2/catch.hpp>
#include <stdexcept>

using namespace ota;
using namespace ota::test;

namespace {

// A copy of the full-update repository whose targets list only `keep` ("sha512", or "" for no
// hash the agent knows: an "md5"), re-signed.
std::string rehashed_repo(const std::string& dir, const std::string& keep) {
    copy_repo(Flow::Full, dir);
    publish::Repository repo = publish::Repository::open(dir);
    Json& targets = repo.role("targets").body["targets"];
    for (auto it = targets.begin(); it != targets.end(); ++it) {
        const std::string path = it.key();
        const std::string base = path.substr(path.rfind('/') + 1);
        const std::string folder = repo.targets_dir() + "/" + path.substr(0, path.rfind('/') + 1);
        const std::string file = folder + (*it)["hashes"]["sha256"].get<std::string>() + "." + base;
        const std::string bytes = read_file(file, 64 << 20);
        if (keep == "sha512") {
            const std::string h = sha512_hex(bytes);
            (*it)["hashes"] = Json{{"sha512", h}};
            write_file_atomic(folder + h + "." + base, bytes); // consistent snapshot name
        } else {
            (*it)["hashes"] = Json{{"md5", std::string(32, '0')}};
        }
    }
    repo.publish();
    return dir;
}

} // namespace

TEST_CASE("engine: a target that lists only sha512 is downloaded, checked and installed") {
    ScratchDir scratch;
    World w(Flow::Full, rehashed_repo(scratch.file("repo"), "sha512"));
    RunResult r = w.run_agent();
    INFO((r.errors.empty() ? "" : r.errors.front()));
    CHECK(r.errors.empty());
    CHECK(w.has_event("checking the bundle against the signed target (length and SHA-512)"));
    REQUIRE(w.ecu.reboot_requested());
    w.ecu.power_on();
    CHECK(w.run_agent().boot_check == "committed");
    CHECK(w.slot_image_sha256("B") == file_sha256_hex(w.repo.image_v2));
}

TEST_CASE("engine: a target with neither sha512 nor sha256 is refused with a clear error") {
    ScratchDir scratch;
    World w(Flow::Full, rehashed_repo(scratch.file("repo"), ""));
    const std::string slot_b = w.slot_image_sha256("B");
    auto agent = w.start_agent();
    CHECK_THROWS_WITH(agent->engine->update(),
                      Catch::Contains("lists neither a sha512 nor a sha256 hash") &&
                          Catch::Contains("refused"));
    // Refused before anything was downloaded or written.
    CHECK(w.slot_image_sha256("B") == slot_b);
    CHECK(w.ecu.boot_state().order == std::vector<std::string>{"A", "B"});
    CHECK_FALSE(w.state.load().pending);
    CHECK_FALSE(w.ecu.reboot_requested());
}

TEST_CASE("daemon: any exception from one step is a reported failure, never the daemon's end") {
    World w(Flow::Full);
    auto agent = w.start_agent();
    std::vector<update::Event> events;
    auto sink = [&](const update::Event& e) { events.push_back(e); };
    // Not an ota::Error: what a library (or std::map::at) may throw.
    CHECK_FALSE(service::run_daemon_step(
        "update attempt", [] { throw std::out_of_range("map::at"); }, *agent->engine, sink));
    REQUIRE(events.size() == 1);
    CHECK(events[0].step == "error");
    CHECK(events[0].message == "update attempt failed: map::at");
    const update::AgentState s = w.state.load();
    REQUIRE(s.last_result);
    CHECK(s.last_result->outcome == "failed");
    CHECK(s.last_result->message == "update attempt failed: map::at");
    // The next step runs as usual.
    CHECK(service::run_daemon_step(
        "update attempt", [&] { agent->engine->update(); }, *agent->engine, sink));
    CHECK(w.ecu.reboot_requested());
}
