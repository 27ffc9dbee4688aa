// The vehicle state as a small JSON document, from a file that another process (the integrator's
// CAN/SOME-IP gateway, or `ota-sim vehicle`) keeps up to date, or from a command that prints it:
//   {"time": 1767225600, "parked": true, "ignition_on": false, "battery_percent": 80,
//    "user_consent": false}
// `time` is unix seconds when the signals were sampled. Absent keys (or null) stay unknown; a
// key of the wrong type, an out-of-range battery or anything unparsable is an error.
#pragma once
#include "hal/vehicle_state.h"

#include <string>
#include <vector>

namespace ota::hal {

// Throws Error(Malformed) naming `what` and the key.
VehicleState parse_vehicle_state_json(const std::string& text, const std::string& what);

class FileVehicleState : public VehicleStateProvider {
public:
    explicit FileVehicleState(std::string path) : path_(std::move(path)) {}
    VehicleState read() override;

private:
    std::string path_;
};

// Runs the command at every read; its stdout (exit status 0, within timeout_s) is the document.
class CommandVehicleState : public VehicleStateProvider {
public:
    CommandVehicleState(std::vector<std::string> argv, int timeout_s)
        : argv_(std::move(argv)), timeout_s_(timeout_s) {}
    VehicleState read() override;

private:
    std::vector<std::string> argv_;
    int timeout_s_;
};

} // namespace ota::hal
