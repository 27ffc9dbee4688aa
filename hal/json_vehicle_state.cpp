#include "hal/json_vehicle_state.h"

#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/process.h"

namespace ota::hal {

namespace {

// The document is tiny; anything larger is not a vehicle state.
constexpr size_t kMaxDocument = 64 * 1024;

[[noreturn]] void bad(const std::string& what, const std::string& why) {
    throw Error(ErrorKind::Malformed, "vehicle state " + what + ": " + why);
}

std::optional<bool> flag(const Json& j, const char* key, const std::string& what) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) bad(what, std::string("\"") + key + "\" must be true or false");
    return it->get<bool>();
}

} // namespace

VehicleState parse_vehicle_state_json(const std::string& text, const std::string& what) {
    if (text.size() > kMaxDocument) bad(what, "larger than 64 KiB");
    const Json j = parse_json(text, "vehicle state " + what);
    if (!j.is_object()) bad(what, "not a JSON object");
    VehicleState s;
    s.parked = flag(j, "parked", what);
    s.ignition_on = flag(j, "ignition_on", what);
    s.user_consent = flag(j, "user_consent", what);
    if (auto it = j.find("battery_percent"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100)
            bad(what, "\"battery_percent\" must be an integer from 0 to 100");
        s.battery_percent = it->get<int>();
    }
    if (auto it = j.find("time"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) bad(what, "\"time\" must be unix seconds (an integer)");
        s.time = it->get<int64_t>();
    }
    return s;
}

VehicleState FileVehicleState::read() {
    return parse_vehicle_state_json(read_file(path_, kMaxDocument), path_);
}

VehicleState CommandVehicleState::read() {
    ProcessOptions options;
    options.timeout_s = timeout_s_;
    options.max_output = kMaxDocument + 1;
    options.capture_stderr = false; // its diagnostics go to the agent's log, not into the JSON
    ProcessResult r = run_process(argv_, options);
    const std::string what = "command " + argv_.front();
    if (!r.started) throw Error(ErrorKind::Io, "vehicle state " + what + ": " + r.output);
    if (r.timed_out)
        throw Error(ErrorKind::Io, "vehicle state " + what + " gave no answer within " +
                                       std::to_string(timeout_s_) + " s");
    if (!r.ok())
        throw Error(ErrorKind::Io, "vehicle state " + what + " failed (status " +
                                       std::to_string(r.exit_status) + ")");
    return parse_vehicle_state_json(r.output, what);
}

} // namespace ota::hal
