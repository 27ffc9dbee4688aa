// What the vehicle is doing, for the install/reboot policy: downloads may run while driving, but
// writing, activating and rebooting wait until the configured conditions hold. An integrator
// implements this over the vehicle bus (CAN/SOME-IP signals); the simulated ECU reads a file.
#pragma once
#include <string>

namespace ota::hal {

struct VehicleState {
    bool parked = false; // gear in P / vehicle speed 0 with parking brake
    bool ignition_on = false;
    int battery_percent = 100; // state of charge of the low-voltage battery (0-100)
    bool user_consent = false; // the driver accepted the update on the HMI
};

class VehicleStateProvider {
public:
    virtual ~VehicleStateProvider() = default;
    // Current state. Throws ota::Error when the state cannot be read (the policy then waits).
    virtual VehicleState read() = 0;
};

} // namespace ota::hal
