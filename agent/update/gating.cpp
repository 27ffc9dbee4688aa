#include "agent/update/gating.h"

#include "agent/common/error.h"
#include "hal/sim/sim_vehicle_state.h"

#include <chrono>
#include <ctime>
#include <thread>

namespace ota::update {

std::unique_ptr<hal::VehicleStateProvider> make_vehicle_state(const VehiclePolicy& policy) {
    if (policy.type == "sim") return std::make_unique<hal::sim::SimVehicleState>(policy.file);
    return nullptr;
}

InstallGate::InstallGate(VehiclePolicy policy, std::unique_ptr<hal::VehicleStateProvider> vehicle,
                         ControlFlags* flags, std::function<void(const std::string&)> notify)
    : policy_(std::move(policy)), vehicle_(std::move(vehicle)), flags_(flags),
      notify_(std::move(notify)) {}

std::string InstallGate::blocked_reason() {
    if (flags_) {
        const int64_t until = flags_->deferred_until.load();
        if (until > static_cast<int64_t>(::time(nullptr)))
            return "deferred by the user for " + std::to_string(until - ::time(nullptr)) + " s";
    }
    if (!vehicle_) return "";
    hal::VehicleState s;
    try {
        s = vehicle_->read();
    } catch (const Error& e) {
        return std::string("vehicle state unknown (") + e.what() + ")";
    }
    if (policy_.require_parked && !s.parked) return "vehicle is not parked";
    if (policy_.require_ignition_off && s.ignition_on) return "ignition is on";
    if (s.battery_percent < policy_.min_battery_percent)
        return "battery at " + std::to_string(s.battery_percent) + "%, policy needs " +
               std::to_string(policy_.min_battery_percent) + "%";
    const bool approved = flags_ && flags_->approved.load();
    if (policy_.require_consent && !s.user_consent && !approved)
        return "waiting for the user's consent";
    return "";
}

void InstallGate::wait(const std::string& phase) {
    const auto start = std::chrono::steady_clock::now();
    std::string last;
    while (true) {
        std::string reason = blocked_reason();
        if (reason.empty()) {
            if (!last.empty() && notify_) notify_(phase + " allowed now");
            return;
        }
        if (reason != last && notify_) notify_(phase + " waits: " + reason);
        last = reason;
        if (flags_ && flags_->stop.load())
            throw Error(ErrorKind::State,
                        phase + " not allowed (" + reason + ") and the agent is stopping");
        if (policy_.max_wait_s &&
            std::chrono::steady_clock::now() - start >= std::chrono::seconds(policy_.max_wait_s))
            throw Error(ErrorKind::State, phase + " not allowed within " +
                                              std::to_string(policy_.max_wait_s) + " s: " + reason);
        std::this_thread::sleep_for(std::chrono::milliseconds(policy_.poll_ms));
    }
}

} // namespace ota::update
