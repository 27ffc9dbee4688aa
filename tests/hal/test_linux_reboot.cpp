// The Linux rebooter's command mode (reboot(2) itself is not something a test may call).
#include "agent/common/error.h"
#include "hal/linux_reboot.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota;
using ota::test::TempDir;

TEST_CASE("a configured reboot command runs; its failure is an error") {
    TempDir dir;
    hal::LinuxRebooter ok({"sh", "-c", "echo rebooting > '" + dir.file("marker") + "'"});
    ok.reboot();
    CHECK(ota::test::read_all(dir.file("marker")) == "rebooting\n");

    hal::LinuxRebooter failing({"sh", "-c", "exit 3"});
    CHECK_THROWS_AS(failing.reboot(), Error);
    hal::LinuxRebooter missing({dir.file("no-such-program")});
    CHECK_THROWS_WITH(missing.reboot(), Catch::Contains("failed"));
}
