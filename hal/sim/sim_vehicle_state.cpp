#include "hal/sim/sim_vehicle_state.h"

#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <nlohmann/json.hpp>

namespace ota::hal::sim {

VehicleState SimVehicleState::read() {
    const std::string text = read_file(path_, 64 * 1024);
    const nlohmann::json j = parse_json(text, "vehicle state " + path_);
    if (!j.is_object())
        throw Error(ErrorKind::Malformed, "vehicle state " + path_ + " is not an object");
    VehicleState s;
    try {
        s.parked = j.value("parked", s.parked);
        s.ignition_on = j.value("ignition_on", s.ignition_on);
        s.battery_percent = j.value("battery_percent", s.battery_percent);
        s.user_consent = j.value("user_consent", s.user_consent);
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Malformed, "vehicle state " + path_ + ": " + e.what());
    }
    return s;
}

} // namespace ota::hal::sim
