// The real ota-agent behind the fault-injecting proxy: over many seeded runs the update either
// completes (slot verified, committed after the simulated boot and the boot check) or fails with
// a clear error and leaves the ECU as it was, and a later run without faults completes. Also: a
// partial download of an object that changed is discarded and the next attempt succeeds.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "robust/fault_proxy.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <map>
#include <regex>

using namespace ota;
using namespace ota::test;
using namespace ota::test::robust;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.push_back(n);
        }
        ::closedir(d);
    }
    return out;
}

// The published full bundle of `version`: its file on the server and its signed SHA-256.
std::pair<std::string, std::string> served_bundle(const Slice& s, uint64_t version) {
    const std::string suffix = ".rootfs-" + std::to_string(version) + ".full.bundle";
    for (const auto& name : list_dir(s.repo_dir() + "/targets/demo-ecu"))
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
            return {s.repo_dir() + "/targets/demo-ecu/" + name, name.substr(0, name.find('.'))};
    FAIL("no published bundle for version " << version);
    return {};
}

// The agent configuration for the proxy: `retries` and a short low-speed window, so faults cost
// little time.
std::string faulty_config(const Slice& s, const std::string& name, int port, int retries) {
    const std::string path = s.write_config(name, port);
    Json c = parse_json(read_all(path), name);
    c["transport"] =
        Json{{"retries", retries},      {"retry_base_ms", 20},   {"retry_max_ms", 200},
             {"low_speed_bytes", 1024}, {"low_speed_time_s", 1}, {"connect_timeout_s", 5}};
    write_all_file(path, c.dump(1) + "\n");
    return path;
}

// The error kind ota-agent printed ("network" from "update failed [network]: ...").
std::string error_kind_in(const std::string& output) {
    static const std::regex kind(R"(update failed \[([a-z-]+)\]: )");
    std::smatch m;
    return std::regex_search(output, m, kind) ? m[1].str() : "";
}

void boot_and_commit(const Slice& s, const std::string& config) {
    Result boot = s.sim("boot --dir " + quote(s.ecu_dir()));
    INFO(boot.output);
    REQUIRE(boot.status == 0);
    REQUIRE(s.booted_slot() == "B");
    Result commit = s.agent("boot-check", config);
    INFO(commit.output);
    REQUIRE(commit.status == 0);
    REQUIRE(contains(commit.output, "rootfs version 2 committed"));
}

} // namespace

TEST_CASE("a resumed download of an object that changed is discarded, the next update succeeds",
          "[robust][resume]") {
    Slice s;
    s.release(s.image(2), 2);
    Result check = s.agent("check");
    INFO(check.output);
    REQUIRE(check.status == 0);
    const DeviceSnapshot before = s.snapshot();

    // A partial download left by an earlier attempt, whose bytes belong to a different object
    // (the first half of the bundle with one byte changed): resuming appends the real rest.
    const auto [bundle, sha256] = served_bundle(s, 2);
    std::string stale = read_all(bundle);
    stale.resize(stale.size() / 2);
    stale[1000] = static_cast<char>(stale[1000] ^ 0x20);
    const std::string partial = s.state_dir() + "/download/" + sha256 + ".bundle";
    make_directories(s.state_dir() + "/download");
    write_all_file(partial, stale);

    Result first = s.agent("update");
    require_rejected(s, first, "hash-mismatch", "does not match its signed length and SHA-256",
                     before);
    CHECK_FALSE(file_exists(partial)); // discarded, so the next attempt starts from scratch
    CHECK(contains(read_all(s.path("nginx-run/access.log")), "\" 206 "));

    Result second = s.agent("update");
    INFO(second.output);
    REQUIRE(second.status == 0);
    CHECK(contains(second.output, "slot B verified end to end"));
    boot_and_commit(s, s.config());
    CHECK(file_sha256_hex(s.ecu_dir() + "/slot-B.img", static_cast<int64_t>(kImageSize)) ==
          file_sha256_hex(s.image(2)));
}

namespace {

// `runs` seeded runs from `first_seed` (two test cases share the work, so ctest -j2 runs them on
// both cores).
void fault_soak(uint64_t first_seed, int runs) {
    Slice s;
    s.release(s.image(2), 2);
    const std::string v1_sha256 = file_sha256_hex(s.image(1));
    const std::string v2_sha256 = file_sha256_hex(s.image(2));
    // Every run starts from the same ECU: slot A with version 1, no agent state yet.
    REQUIRE(run_command("cp -a " + quote(s.ecu_dir()) + " " + quote(s.path("pristine-ecu"))) == 0);
    const std::string pristine_env = file_sha256_hex(s.ecu_dir() + "/uboot.env");

    FaultProxy proxy(s.port(), [](uint64_t) { return Fault{}; });
    // Two networks: a bad one (a third of the connections faulty, 4 retries) and, every third
    // run, a terrible one (60 % faulty, 1 retry) where runs also give up with network errors.
    const std::string config = faulty_config(s, "faulty.json", proxy.port(), 4);
    const std::string harsh_config = faulty_config(s, "harsh.json", proxy.port(), 1);

    std::map<std::string, int> outcomes;
    int recovered = 0;
    for (int run = 0; run < runs; ++run) {
        const uint64_t seed = first_seed + static_cast<uint64_t>(run);
        INFO("seed " << seed);
        REQUIRE(run_command("rm -rf " + quote(s.ecu_dir()) + " " + quote(s.state_dir()) +
                            " && cp -a " + quote(s.path("pristine-ecu")) + " " +
                            quote(s.ecu_dir())) == 0);

        const bool harsh = run % 3 == 2;
        proxy.set_planner(FaultProxy::random_planner(seed, harsh ? 0.6 : 0.35, 8ull << 20));
        Result r = s.agent("update", harsh ? harsh_config : config);
        proxy.set_planner([](uint64_t) { return Fault{}; });
        INFO("agent output:\n" << r.output);
        if (r.status == 0) {
            ++outcomes["completed"];
            REQUIRE(contains(r.output, "slot B verified end to end"));
            REQUIRE(file_sha256_hex(s.ecu_dir() + "/slot-B.img",
                                    static_cast<int64_t>(kImageSize)) == v2_sha256);
            boot_and_commit(s, config);
            continue;
        }
        // A clear error, and the ECU as it was: running slot, boot configuration, no pending
        // update, no reboot request.
        REQUIRE(r.status == 1);
        const std::string kind = error_kind_in(r.output);
        REQUIRE_FALSE(kind.empty());
        ++outcomes["failed [" + kind + "]"];
        CHECK(file_sha256_hex(s.ecu_dir() + "/slot-A.img", static_cast<int64_t>(kImageSize)) ==
              v1_sha256);
        CHECK(file_sha256_hex(s.ecu_dir() + "/uboot.env") == pristine_env);
        CHECK(s.booted_slot() == "A");
        CHECK_FALSE(s.reboot_requested());
        CHECK(s.status()["pending"].is_null());

        // The next run, on a good network, completes from whatever the failed one left behind.
        Result again = s.agent("update", config);
        INFO("recovery run:\n" << again.output);
        REQUIRE(again.status == 0);
        REQUIRE(file_sha256_hex(s.ecu_dir() + "/slot-B.img", static_cast<int64_t>(kImageSize)) ==
                v2_sha256);
        boot_and_commit(s, config);
        ++recovered;
    }

    std::printf("fault proxy: %d seeded runs (seeds %llu..%llu), %llu connections, %llu faults "
                "injected:",
                runs, static_cast<unsigned long long>(first_seed),
                static_cast<unsigned long long>(first_seed + runs - 1),
                static_cast<unsigned long long>(proxy.connections()),
                static_cast<unsigned long long>(proxy.applied_total()));
    for (const auto& [kind, count] : proxy.applied())
        std::printf(" %s %llu;", fault_kind_name(kind), static_cast<unsigned long long>(count));
    std::printf("\nfault proxy outcomes:");
    for (const auto& [outcome, count] : outcomes)
        std::printf(" %s %d;", outcome.c_str(), count);
    std::printf(" failed runs recovered on a good network: %d\n", recovered);
    size_t resumed = 0;
    const std::string log = read_all(s.path("nginx-run/access.log"));
    for (size_t pos = 0; (pos = log.find("\" 206 ", pos)) != std::string::npos; ++pos)
        ++resumed;
    std::printf("fault proxy: %zu downloads resumed with a Range request (HTTP 206)\n", resumed);
    std::fflush(stdout);
    CHECK(proxy.applied_total() >= static_cast<uint64_t>(runs) / 2);
}

// OTA_FAULT_RUNS: total number of runs (default 50), split between the two halves.
int fault_runs_total() {
    const char* env = std::getenv("OTA_FAULT_RUNS");
    return env ? std::max(2, std::atoi(env)) : 50;
}
} // namespace

TEST_CASE("fault proxy: seeded runs of ota-agent update complete or fail cleanly (first half)",
          "[robust][faults]") {
    fault_soak(1000, fault_runs_total() / 2);
}

TEST_CASE("fault proxy: seeded runs of ota-agent update complete or fail cleanly (second half)",
          "[robust][faults]") {
    const int total = fault_runs_total();
    fault_soak(1000 + static_cast<uint64_t>(total / 2), total - total / 2);
}
