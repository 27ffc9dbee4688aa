// The demo's flow end to end with the real programs: publish version 2, the agent updates slot B
// from nginx on 127.0.0.1, the ECU boots B, the agent's health check passes and it commits.
#include "slice/slice_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/fs.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// SHA-256 of the first `length` bytes of a slot file (hashes keep failure messages short).
std::string slot_prefix_sha256(const Slice& s, const std::string& slot, size_t length) {
    return sha256_hex(read_all(s.ecu_dir() + "/slot-" + slot + ".img").substr(0, length));
}

void run_demo_flow(bool delta) {
    Slice s;
    const std::string v1 = s.image(1);
    const std::string v2 = s.image(2);
    s.release(v2, 2, kHardwareId, delta);
    REQUIRE(file_size(v2) == kImageSize);
    const std::string v1_sha256 = file_sha256_hex(v1);
    const std::string v2_sha256 = file_sha256_hex(v2);
    REQUIRE(v1_sha256 != v2_sha256);

    Result check = s.agent("check");
    INFO(check.output);
    REQUIRE(check.status == 0);
    CHECK(contains(check.output, "update available: rootfs 1 -> 2"));
    CHECK(contains(check.output, delta ? ", delta)" : ", full image)"));

    // update: download, verify, write B, switch, reboot request.
    Result update = s.agent("update");
    INFO(update.output);
    REQUIRE(update.status == 0);
    CHECK(contains(update.output, delta ? "rootfs-2.from-1.delta.bundle" : "rootfs-2.full.bundle"));
    for (const char* step : {"[download]", "[verify  ]", "[write   ]", "[switch  ]", "[reboot  ]"})
        CHECK(contains(update.output, step));
    CHECK(contains(update.output, "slot B verified end to end"));
    CHECK(s.reboot_requested());
    {
        auto env = s.printenv();
        CHECK(env["BOOT_ORDER"] == "B A");
        CHECK(env["BOOT_B_LEFT"] == "3");
        Json st = s.status();
        CHECK(st["booted_slot"] == "A");
        CHECK(st["installed_version"] == 1);
        REQUIRE(st["pending"].is_object());
        CHECK(st["pending"]["version"] == 2);
        CHECK(st["pending"]["slot"] == "B");
    }
    // The new image is in B byte for byte before the reboot; A still runs version 1.
    CHECK(slot_prefix_sha256(s, "B", kImageSize) == v2_sha256);
    CHECK(slot_prefix_sha256(s, "A", kImageSize) == v1_sha256);

    // Power-on with the boot-counting script: B is tried.
    Result boot = s.sim("boot --dir " + quote(s.ecu_dir()));
    INFO(boot.output);
    REQUIRE(boot.status == 0);
    CHECK(s.booted_slot() == "B");
    CHECK_FALSE(s.reboot_requested());
    CHECK(s.printenv()["BOOT_B_LEFT"] == "2"); // one try used

    // boot-check: health check passes, commit.
    Result commit = s.agent("boot-check");
    INFO(commit.output);
    REQUIRE(commit.status == 0);
    CHECK(contains(commit.output, "rootfs version 2 committed: slot B marked good"));

    auto env = s.printenv();
    CHECK(env["BOOT_ORDER"] == "B A");
    CHECK(env["BOOT_B_LEFT"] == "3");
    CHECK(slot_prefix_sha256(s, "B", kImageSize) == v2_sha256);
    CHECK(slot_prefix_sha256(s, "A", kImageSize) == v1_sha256);

    Json st = s.status();
    CHECK(st["installed_version"] == 2);
    CHECK(st["booted_slot"] == "B");
    CHECK(st["pending"].is_null());
    CHECK(st["last_result"]["outcome"] == "committed");
    CHECK(st["installed"]["rootfs"]["slot"] == "B");
    CHECK(st["boot_order"] == Json::array({"B", "A"}));

    // The next power-on boots B again, and with version 2 committed there is nothing to do.
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    CHECK(s.booted_slot() == "B");
    Result again = s.agent("update");
    INFO(again.output);
    CHECK(again.status == 0);
    CHECK(contains(again.output, "up to date (installed version 2)"));
    CHECK_FALSE(s.reboot_requested());
}

} // namespace

TEST_CASE("demo flow: a full-image bundle from nginx is installed into B, booted and committed") {
    run_demo_flow(false);
}

TEST_CASE("demo flow: a delta bundle from nginx is installed into B, booted and committed") {
    run_demo_flow(true);
}
