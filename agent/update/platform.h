// Everything the engine touches outside its own files, each behind an interface (Android
// update_engine's BootControlInterface/HardwareInterface model): boot control, reboot, the boot id,
// the clock, the persistent state store and the hook runner, plus the two slot devices.
// make_platform() builds the real ones from the configuration; the engine's tests build fakes
// (tests/update/fakes/). The network (net::Fetcher) and the vehicle state
// (hal::VehicleStateProvider, used by the install gate) are the other two interfaces.
#pragma once
#include "agent/update/clock.h"
#include "agent/update/config.h"
#include "agent/update/hook_runner.h"
#include "agent/update/state_store.h"
#include "hal/boot_control.h"
#include "hal/boot_id.h"

#include <map>
#include <memory>
#include <string>

namespace ota::update {

struct Platform {
    std::unique_ptr<hal::BootControl> boot;
    std::unique_ptr<hal::Rebooter> rebooter;
    std::unique_ptr<hal::BootId> boot_id;
    std::unique_ptr<Clock> clock;
    std::unique_ptr<StateStore> state;
    std::unique_ptr<HookRunner> hooks;
    std::map<std::string, std::string> slots; // name -> device path
};

// U-Boot boot control through fw_env.config with the booted slot from the kernel command line,
// the Linux rebooter (sync, then reboot(2) or reboot_command), the kernel's boot id, the system
// clock, agent-state.json in state_dir and hooks run as processes.
Platform make_platform(const AgentConfig& config);

} // namespace ota::update
