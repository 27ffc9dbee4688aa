// The agent's platform settings for a simulated ECU (hal/sim): the agent's real backends over the
// simulator's files, as scripts/demo.sh writes them. `ota-sim boot` rewrites cmdline and boot_id
// at each power-on; `ota-sim reboot` records the reboot request.
#pragma once
#include "agent/common/canonical_json.h"
#include "support/test_support.h"

#include <sstream>
#include <string>

namespace ota::test {

// argv of an ota-sim command (built_program may be "EMULATOR PROGRAM" in cross builds).
inline Json sim_command(const std::vector<std::string>& args) {
    Json argv = Json::array();
    std::istringstream words(built_program("ota-sim"));
    for (std::string w; words >> w;)
        argv.push_back(w);
    for (const auto& a : args)
        argv.push_back(a);
    return argv;
}

// slots, bootloader and reboot_command of an agent configuration (`ota-sim health --dir DIR` is
// the health check, where a test wants one).
inline void add_sim_platform(Json& config, const std::string& ecu_dir) {
    config["slots"] = Json{{"A", ecu_dir + "/slot-A.img"}, {"B", ecu_dir + "/slot-B.img"}};
    config["bootloader"] = Json{{"type", "uboot"},
                                {"fw_env_config", ecu_dir + "/fw_env.config"},
                                {"cmdline", ecu_dir + "/cmdline"},
                                {"boot_id", ecu_dir + "/boot_id"}};
    config["reboot_command"] = sim_command({"reboot", "--dir", ecu_dir});
}

} // namespace ota::test
