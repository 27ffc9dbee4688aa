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

TEST_CASE("the Linux rebooter flushes the page cache before the reboot command runs") {
    TempDir dir;
    const std::string flushed = dir.file("flushed");
    // The command succeeds only if the flush ran before it.
    hal::LinuxRebooter rebooter({"sh", "-c", "test -f '" + flushed + "'"},
                                [&] { ota::test::write_all_file(flushed, "synced"); });
    CHECK_NOTHROW(rebooter.reboot());
    hal::LinuxRebooter without_flush({"sh", "-c", "test -f '" + dir.file("never") + "'"}, [] {});
    CHECK_THROWS_WITH(without_flush.reboot(), Catch::Contains("status 1"));
}
