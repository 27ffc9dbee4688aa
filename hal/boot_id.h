// Which boot of the ECU is running: a value that changes at every boot and only then. The agent
// records it when it switches slots, so that after a restart it can tell "the agent restarted"
// (same boot: keep waiting for the reboot) from "the ECU rebooted" (boot-check: commit, or see
// the bootloader's fallback).
#pragma once
#include <string>

namespace ota::hal {

class BootId {
public:
    virtual ~BootId() = default;
    // Throws ota::Error when it cannot be read: a switch must not happen without it.
    virtual std::string current() = 0;
};

constexpr const char* kLinuxBootIdPath = "/proc/sys/kernel/random/boot_id";

// The boot id in a file: the kernel's, or one a simulator rewrites at each power-on.
class FileBootId : public BootId {
public:
    explicit FileBootId(std::string path = kLinuxBootIdPath) : path_(std::move(path)) {}
    std::string current() override;

private:
    std::string path_;
};

} // namespace ota::hal
