// The hardware the agent drives, built from the configuration: boot control, reboot and the two
// slots. Real ECUs use the U-Boot backend; tests and the demo the simulated ECU.
#pragma once
#include "agent/update/config.h"
#include "hal/boot_control.h"

#include <map>
#include <memory>
#include <string>

namespace ota::update {

struct Platform {
    std::unique_ptr<hal::BootControl> boot;
    std::unique_ptr<hal::Rebooter> rebooter;
    std::map<std::string, std::string> slots; // name -> device path
};

Platform make_platform(const AgentConfig& config);

// Runs argv, waits up to timeout_s; returns the exit status (or -1 when it could not run or
// timed out, after killing it). *output receives combined stdout/stderr, capped.
int run_hook(const std::vector<std::string>& argv, int timeout_s, std::string* output,
             const std::vector<std::string>& extra_env = {});

} // namespace ota::update
