// The simulated vehicle: a JSON file that tests (or a person) edit while the agent runs,
//   {"parked": true, "ignition_on": false, "battery_percent": 80, "user_consent": false}
// Missing keys keep VehicleState's defaults; a missing or malformed file is an Error (the agent's
// policy treats it as "not allowed yet").
#pragma once
#include "hal/vehicle_state.h"

#include <string>

namespace ota::hal::sim {

class SimVehicleState : public VehicleStateProvider {
public:
    explicit SimVehicleState(std::string path) : path_(std::move(path)) {}
    VehicleState read() override;

private:
    std::string path_;
};

} // namespace ota::hal::sim
