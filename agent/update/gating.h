// Vehicle-state gating: downloads run whenever, but writing, activating and rebooting wait until
// the configured policy (VehiclePolicy) holds for the current vehicle state, the user's consent
// and any deferral asked for over the control socket. The policy fails closed: a state that cannot
// be read, is older than vehicle.max_age_s, or lacks a signal the policy needs means "not safe".
#pragma once
#include "agent/update/clock.h"
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

// Builds the provider named in the policy (hal/json_vehicle_state.h); nullptr for type "none".
std::unique_ptr<hal::VehicleStateProvider> make_vehicle_state(const VehiclePolicy& policy);

// Why `state` does not allow writing or rebooting under `policy` at time `now` ("" = allowed;
// consent is checked separately, since the control socket can give it too).
std::string vehicle_blocked_reason(const VehiclePolicy& policy, const hal::VehicleState& state,
                                   int64_t now);

class InstallGate {
public:
    InstallGate(VehiclePolicy policy, std::unique_ptr<hal::VehicleStateProvider> vehicle,
                ControlFlags* flags, Clock& clock,
                std::function<void(const std::string&)> notify = {});
    // "" when `phase` ("install", "reboot") may run now; else why not, in words.
    std::string blocked_reason();
    // Blocks until allowed, re-reading the vehicle state every poll_ms and telling `notify` each
    // time the reason changes. Throws Error(State) after max_wait_s, or when the daemon stops.
    void wait(const std::string& phase);

private:
    VehiclePolicy policy_;
    std::unique_ptr<hal::VehicleStateProvider> vehicle_;
    ControlFlags* flags_;
    Clock& clock_;
    std::function<void(const std::string&)> notify_;
};

} // namespace ota::update
