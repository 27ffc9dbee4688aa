// The hash_engine setting end to end: an update with each engine this system has, the choice in
// the log, and an engine the system lacks as a clear configuration error.
#include "slice/slice_fixture.h"

#include "agent/common/fs.h"
#include "hal/hash_engine.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string config_with_engine(const Slice& s, const std::string& engine) {
    Json config = parse_json(read_all(s.config()), "agent.json");
    config["hash_engine"] = engine;
    const std::string path = s.path("agent-" + engine + ".json");
    write_all_file(path, config.dump());
    return path;
}

} // namespace

TEST_CASE("updates verify with every hash engine this system has", "[hash]") {
    for (const char* engine : {"mbedtls", "openssl", "kernel"}) {
        if (!hal::open_hash_engine(engine).engine) continue;
        CAPTURE(engine);
        Slice s;
        s.release(s.image(2), 2, kHardwareId, /*delta_from_v1=*/true);
        Result r = s.agent("update --no-reboot", config_with_engine(s, engine));
        INFO(r.output);
        REQUIRE(r.status == 0);
        // ("kernel, SHA-512 through mbedtls (...)" on a kernel without SHA-512)
        CHECK(contains(r.output, std::string("hash engine: ") + engine));
        CHECK(contains(r.output, "(configured; self-test passed)"));
        CHECK(contains(r.output, "slot B verified end to end"));
    }
}

TEST_CASE("auto names the engine it chose", "[hash]") {
    Slice s;
    Result r = s.agent("-v validate", config_with_engine(s, "auto"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "hash engine: "));
    CHECK(contains(r.output, "(auto: "));
}

TEST_CASE("a configured engine the system lacks is a clear error", "[hash]") {
    Slice s;
    if (hal::open_hash_engine("kernel").engine) {
        WARN("this kernel has AF_ALG hashing: nothing to refuse");
        return;
    }
    const DeviceSnapshot before = s.snapshot();
    for (const char* command : {"validate", "update --no-reboot"}) {
        Result r = s.agent(command, config_with_engine(s, "kernel"));
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(contains(r.output, "hash_engine \"kernel\" is not available"));
        CHECK(contains(r.output, "AF_ALG"));
    }
    CHECK(s.snapshot().slot_b_sha256 == before.slot_b_sha256);
    Result bad = s.agent("validate", config_with_engine(s, "fastest"));
    CHECK(bad.status == 1);
    CHECK(contains(bad.output, "hash_engine"));
}
