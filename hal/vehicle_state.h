// What the vehicle is doing, for the install/reboot policy: downloads may run while driving, but
// writing, activating and rebooting wait until the configured conditions hold. Every signal is
// optional: a signal the source did not give is unknown, and the policy treats unknown as "not
// safe" (it waits and says which signal is missing). `time` is when the signals were sampled, so
// the policy can refuse stale data.
#pragma once
#include <cstdint>
#include <optional>

namespace ota::hal {

struct VehicleState {
    std::optional<bool> parked; // gear in P / vehicle speed 0 with parking brake
    std::optional<bool> ignition_on;
    std::optional<int> battery_percent; // state of charge of the low-voltage battery (0-100)
    std::optional<bool> user_consent;   // the driver accepted the update on the HMI
    std::optional<int64_t> time;        // unix seconds when these signals were sampled
};

class VehicleStateProvider {
public:
    virtual ~VehicleStateProvider() = default;
    // Current state. Throws ota::Error when the state cannot be read (the policy then waits).
    virtual VehicleState read() = 0;
};

} // namespace ota::hal
