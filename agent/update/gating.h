// Vehicle-state gating: downloads run whenever, but writing, activating and rebooting wait until
// the configured policy (VehiclePolicy) holds for the current vehicle state, the user's consent
// and any deferral asked for over the control socket.
#pragma once
#include "agent/update/config.h"
#include "hal/vehicle_state.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ota::update {

// Written by the control socket, read by the gate and the daemon loop.
struct ControlFlags {
    std::atomic<bool> approved{false};      // the user approved the pending install
    std::atomic<int64_t> deferred_until{0}; // unix time before which nothing is installed
    std::atomic<bool> check_now{false};     // wake the daemon for a check
    std::atomic<bool> stop{false};          // daemon shutdown (SIGTERM)
};

// Builds the provider named in the policy; nullptr for type "none".
std::unique_ptr<hal::VehicleStateProvider> make_vehicle_state(const VehiclePolicy& policy);

class InstallGate {
public:
    InstallGate(VehiclePolicy policy, std::unique_ptr<hal::VehicleStateProvider> vehicle,
                ControlFlags* flags, std::function<void(const std::string&)> notify = {});
    // "" when `phase` ("install", "reboot") may run now; else why not, in words.
    std::string blocked_reason();
    // Blocks until allowed, re-reading the vehicle state every poll_ms and telling `notify` each
    // time the reason changes. Throws Error(State) after max_wait_s, or when the daemon stops.
    void wait(const std::string& phase);

private:
    VehiclePolicy policy_;
    std::unique_ptr<hal::VehicleStateProvider> vehicle_;
    ControlFlags* flags_;
    std::function<void(const std::string&)> notify_;
};

} // namespace ota::update
