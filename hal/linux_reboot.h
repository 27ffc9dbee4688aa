// Restarting a real Linux ECU: sync(2) first (reboot(2) does not flush the page cache, and an
// integrator's command may not either), then reboot(2) with RB_AUTOBOOT or, when configured, the
// integrator's command (e.g. {"systemctl", "reboot"}, so services shut down cleanly). This is the
// agent's only reboot path.
#pragma once
#include "hal/boot_control.h"

#include <functional>
#include <string>
#include <vector>

namespace ota::hal {

class LinuxRebooter : public Rebooter {
public:
    // command empty = reboot(2) directly (needs CAP_SYS_BOOT). `flush` runs before either; it is
    // sync(2) unless a test observes it.
    explicit LinuxRebooter(std::vector<std::string> command = {}, std::function<void()> flush = {});
    // Throws Error(Io) if the reboot could not be started (reboot(2) failed, the command could
    // not run, exited non-zero or did not finish within a minute). On success with reboot(2) it
    // does not return.
    void reboot() override;
    const std::vector<std::string>& command() const { return command_; }

private:
    std::vector<std::string> command_;
    std::function<void()> flush_;
};

} // namespace ota::hal
