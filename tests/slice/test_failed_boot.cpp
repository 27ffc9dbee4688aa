// A new slot that does not come up: its health check fails, or its kernel panics. The boot
// simulator (the same boot-counting algorithm as the U-Boot script) uses up the slot's tries and
// falls back to A; the agent reports the rollback and never retries that version.
#include "slice/slice_fixture.h"

#include "agent/common/crypto.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

void run_failed_boot(const std::string& health) {
    Slice s;
    s.release(s.image(2, health), 2, kHardwareId, /*delta_from_v1=*/true);
    const std::string slot_a = file_sha256_hex(s.ecu_dir() + "/slot-A.img");

    Result update = s.agent("update");
    INFO(update.output);
    REQUIRE(update.status == 0);
    REQUIRE(s.reboot_requested());
    REQUIRE(s.printenv()["BOOT_ORDER"] == "B A");

    // Power-on, boot-check, until the agent sees the fallback. The boot script gives B three
    // tries; a panicking B resets inside one `ota-sim boot`, an unhealthy one comes up each time.
    int boots_into_b = 0;
    std::string rollback_output;
    for (int power_on = 0; power_on < 8 && rollback_output.empty(); ++power_on) {
        Result boot = s.sim("boot --dir " + quote(s.ecu_dir()));
        INFO(boot.output);
        REQUIRE(boot.status == 0);
        Result check = s.agent("boot-check");
        INFO(check.output);
        if (s.booted_slot() == "B") {
            ++boots_into_b;
            // Up, but unhealthy: no commit, exit 1, a reboot is requested for the next try.
            CHECK(check.status == 1);
            CHECK(contains(check.output, "health check failed on slot B; not committing"));
            CHECK(s.reboot_requested());
            CHECK(s.status()["last_result"]["outcome"] == "health-failed");
        } else {
            REQUIRE(s.booted_slot() == "A");
            CHECK(check.status == 0);
            rollback_output = check.output;
        }
    }
    INFO("boot-check output after the fallback:\n" << rollback_output);
    REQUIRE_FALSE(rollback_output.empty());
    CHECK(contains(rollback_output, "ROLLBACK: version 2 in slot B failed to boot"));
    // A panicking kernel never reaches user space; an unhealthy one is up for each of its tries.
    CHECK(boots_into_b == (health == "fail" ? 3 : 0));

    Json st = s.status();
    CHECK(st["last_result"]["outcome"] == "rolled-back");
    CHECK(st["last_result"]["version"] == 2);
    CHECK(st["installed_version"] == 1);
    CHECK(st["booted_slot"] == "A");
    CHECK(st["pending"].is_null());
    CHECK(st["failed_versions"]["rootfs"] == Json::array({2}));
    auto env = s.printenv();
    CHECK(env["BOOT_ORDER"].rfind("A", 0) == 0); // A first
    CHECK(env["BOOT_B_LEFT"] == "0");            // B is marked bad
    CHECK(env["BOOT_A_LEFT"] == "3");            // A confirmed good
    CHECK(file_sha256_hex(s.ecu_dir() + "/slot-A.img") == slot_a);

    // Version 2 is not retried: the next update finds nothing to do and touches nothing.
    const DeviceSnapshot before = s.snapshot();
    Result again = s.agent("update");
    INFO(again.output);
    CHECK(again.status == 0);
    CHECK(contains(again.output, "up to date (installed version 1)"));
    CHECK_FALSE(contains(again.output, "[download]"));
    CHECK_FALSE(s.reboot_requested());
    const DeviceSnapshot after = s.snapshot();
    CHECK(after.slot_a_sha256 == before.slot_a_sha256);
    CHECK(after.slot_b_sha256 == before.slot_b_sha256);
    CHECK(after.env_sha256 == before.env_sha256);

    // Power-ons from here on stay on A.
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    CHECK(s.booted_slot() == "A");
}

} // namespace

TEST_CASE(
    "failed boot: an unhealthy version 2 uses up its tries, A comes back, rollback reported") {
    run_failed_boot("fail");
}

TEST_CASE("failed boot: a panicking version 2 never comes up, A comes back, rollback reported") {
    run_failed_boot("panic");
}
