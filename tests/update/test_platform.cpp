// The real platform the agent builds from its configuration, driven over the simulated ECU's files.
#include "agent/update/config.h"
#include "agent/update/platform.h"
#include "hal/linux_reboot.h"
#include "hal/sim/sim_image.h"
#include "hal/sim/simulated_ecu.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota;
using ota::test::TempDir;

namespace {

Json platform_config(const TempDir& dir, const hal::sim::SimulatedEcu& ecu) {
    return Json{{"hardware_id", "demo-ecu"},
                {"state_dir", dir.file("state")},
                {"trusted_root", dir.file("root.json")},
                {"metadata_url", "file:///nonexistent/metadata/"},
                {"targets_url", "file:///nonexistent/targets/"},
                {"slots", Json{{"A", ecu.slot_device("A")}, {"B", ecu.slot_device("B")}}},
                {"bootloader", Json{{"type", "uboot"},
                                    {"fw_env_config", ecu.env_config_path()},
                                    {"cmdline", ecu.dir() + "/cmdline"}}},
                {"reboot_command",
                 Json::array({"/bin/sh", "-c", "echo requested > '" + dir.file("marker") + "'"})}};
}

hal::sim::SimulatedEcu make_ecu(const TempDir& dir) {
    ota::test::write_all_file(dir.file("v1.img"),
                              hal::sim::make_sim_image(1, hal::sim::SimHealth::Ok, 65536, 1));
    return hal::sim::SimulatedEcu::create(dir.file("ecu"), 131072, dir.file("v1.img"));
}

} // namespace

TEST_CASE("the configured reboot command goes through the one reboot path, the Linux rebooter") {
    TempDir dir;
    auto ecu = make_ecu(dir);
    update::AgentConfig config = update::parse_config(platform_config(dir, ecu), dir.path());
    update::Platform platform = update::make_platform(config);
    // The Linux rebooter is the path that syncs before it reboots (below); no other rebooter may
    // run the configured command.
    REQUIRE(dynamic_cast<hal::LinuxRebooter*>(platform.rebooter.get()) != nullptr);
    platform.rebooter->reboot();
    CHECK(ota::test::read_all(dir.file("marker")) == "requested\n");
}
