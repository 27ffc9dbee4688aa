// Restarting a real Linux ECU: sync(2) then reboot(2) with RB_AUTOBOOT, or, when configured, an
// integrator's command (e.g. {"systemctl", "reboot"}) so services shut down cleanly.
#pragma once
#include "hal/boot_control.h"

#include <string>
#include <vector>

namespace ota::hal {

class LinuxRebooter : public Rebooter {
public:
    // command empty = reboot(2) directly (needs CAP_SYS_BOOT).
    explicit LinuxRebooter(std::vector<std::string> command = {});
    // Throws Error(Io) if the reboot could not be started (reboot(2) failed, the command could
    // not run or exited non-zero). On success with reboot(2) it does not return.
    void reboot() override;

private:
    std::vector<std::string> command_;
};

} // namespace ota::hal
