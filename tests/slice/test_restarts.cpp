// The agent restarted at awkward moments, through the real programs: the ECU's boot id (rewritten
// by the simulator at each power-on, as the kernel's) tells an agent restart from a reboot.
#include "slice/slice_fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("restart between the slot switch and the reboot: no rollback, the reboot follows") {
    Slice s;
    s.release(s.image(2), 2);
    Result update = s.agent("update --no-reboot");
    INFO(update.output);
    REQUIRE(update.status == 0);
    REQUIRE(s.printenv()["BOOT_ORDER"] == "B A");
    REQUIRE_FALSE(s.reboot_requested());

    // The agent restarts (systemctl restart, a crash) while the ECU keeps running slot A; the
    // daemon may not reboot yet.
    Result daemon = s.agent("daemon --once --no-reboot");
    INFO(daemon.output);
    CHECK(daemon.status == 0);
    CHECK_FALSE(contains(daemon.output, "ROLLBACK"));
    CHECK(contains(daemon.output, "version 2 in slot B waits for the reboot"));
    auto env = s.printenv();
    CHECK(env["BOOT_ORDER"] == "B A");
    CHECK(env["BOOT_B_LEFT"] == "3");
    Json st = s.status();
    CHECK(st["pending"]["stage"] == "switched");
    CHECK(st["failed_versions"].empty());
    CHECK_FALSE(s.reboot_requested());

    // Allowed to reboot, the daemon asks for it again; the new slot boots and is committed.
    daemon = s.agent("daemon --once");
    INFO(daemon.output);
    CHECK(daemon.status == 0);
    REQUIRE(s.reboot_requested());
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    CHECK(s.booted_slot() == "B");
    Result check = s.agent("boot-check");
    INFO(check.output);
    CHECK(check.status == 0);
    CHECK(contains(check.output, "version 2 committed: slot B marked good"));
    CHECK(s.status()["installed_version"] == 2);
}
