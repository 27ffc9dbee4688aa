#include "agent/update/gating.h"

#include "agent/common/error.h"
#include "hal/json_vehicle_state.h"

#include <chrono>
#include <thread>

namespace ota::update {

std::unique_ptr<hal::VehicleStateProvider> make_vehicle_state(const VehiclePolicy& policy) {
    if (policy.type == "file") return std::make_unique<hal::FileVehicleState>(policy.file);
    if (policy.type == "command")
        return std::make_unique<hal::CommandVehicleState>(policy.command, policy.command_timeout_s);
    return nullptr;
}

std::string vehicle_blocked_reason(const VehiclePolicy& policy, const hal::VehicleState& s,
                                   int64_t now) {
    if (!s.time) return "vehicle state has no \"time\": its age is unknown";
    const int64_t age = now - *s.time;
    // The reasons name the sample time, not the age, so that they only change (and are only
    // reported again) when the state does.
    if (age > static_cast<int64_t>(policy.max_age_s))
        return "vehicle state is stale: sampled at unix time " + std::to_string(*s.time) +
               ", more than vehicle.max_age_s (" + std::to_string(policy.max_age_s) + " s) ago";
    // A clock that disagrees by more than the allowed age cannot date the signals either.
    if (-age > static_cast<int64_t>(policy.max_age_s))
        return "vehicle state is dated in the future (unix time " + std::to_string(*s.time) + ")";
    if (policy.require_parked) {
        if (!s.parked) return "vehicle state does not say whether the vehicle is parked";
        if (!*s.parked) return "vehicle is not parked";
    }
    if (policy.require_ignition_off) {
        if (!s.ignition_on) return "vehicle state does not say whether the ignition is on";
        if (*s.ignition_on) return "ignition is on";
    }
    if (policy.min_battery_percent > 0) {
        if (!s.battery_percent) return "vehicle state does not give the battery charge";
        if (*s.battery_percent < policy.min_battery_percent)
            return "battery at " + std::to_string(*s.battery_percent) + "%, policy needs " +
                   std::to_string(policy.min_battery_percent) + "%";
    }
    return "";
}

InstallGate::InstallGate(VehiclePolicy policy, std::unique_ptr<hal::VehicleStateProvider> vehicle,
                         ControlFlags* flags, Clock& clock,
                         std::function<void(const std::string&)> notify)
    : policy_(std::move(policy)), vehicle_(std::move(vehicle)), flags_(flags), clock_(clock),
      notify_(std::move(notify)) {}

std::string InstallGate::blocked_reason() {
    const int64_t now = clock_.now();
    if (flags_) {
        const int64_t until = flags_->deferred_until.load();
        if (until > now) return "deferred by the user for " + std::to_string(until - now) + " s";
    }
    if (!vehicle_) return "";
    hal::VehicleState s;
    try {
        s = vehicle_->read();
    } catch (const Error& e) {
        return std::string("vehicle state unknown (") + e.what() + ")";
    }
    if (std::string reason = vehicle_blocked_reason(policy_, s, now); !reason.empty())
        return reason;
    const bool approved = flags_ && flags_->approved.load();
    if (policy_.require_consent && !s.user_consent.value_or(false) && !approved)
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
