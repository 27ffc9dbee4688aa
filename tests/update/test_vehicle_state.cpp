// The vehicle state and the install gate: the policy fails closed. A state that cannot be read, is
// stale, or lacks a signal the policy needs means "not safe": the gate waits and says why.
#include "agent/common/error.h"
#include "agent/update/gating.h"
#include "hal/json_vehicle_state.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota;
using ota::test::TempDir;

namespace {

constexpr int64_t kNow = 1767225600;

hal::VehicleState parked_now() {
    hal::VehicleState s;
    s.time = kNow;
    s.parked = true;
    s.ignition_on = false;
    s.battery_percent = 80;
    return s;
}

update::VehiclePolicy strict_policy() {
    update::VehiclePolicy p;
    p.type = "file";
    p.require_parked = true;
    p.require_ignition_off = true;
    p.min_battery_percent = 50;
    p.max_age_s = 10;
    return p;
}

struct FixedClock : update::Clock {
    int64_t now() override { return kNow; }
};

struct FixedVehicle : hal::VehicleStateProvider {
    explicit FixedVehicle(hal::VehicleState s) : state(s) {}
    hal::VehicleState read() override { return state; }
    hal::VehicleState state;
};

} // namespace

TEST_CASE("vehicle policy: a missing or stale signal is not safe, and the reason names it") {
    const update::VehiclePolicy p = strict_policy();
    CHECK(update::vehicle_blocked_reason(p, parked_now(), kNow) == "");

    hal::VehicleState s = parked_now();
    s.battery_percent.reset();
    CHECK(update::vehicle_blocked_reason(p, s, kNow) ==
          "vehicle state does not give the battery charge");
    s = parked_now();
    s.ignition_on.reset();
    CHECK(update::vehicle_blocked_reason(p, s, kNow) ==
          "vehicle state does not say whether the ignition is on");
    s = parked_now();
    s.parked.reset();
    CHECK(update::vehicle_blocked_reason(p, s, kNow) ==
          "vehicle state does not say whether the vehicle is parked");
    s = parked_now();
    s.time.reset();
    CHECK(update::vehicle_blocked_reason(p, s, kNow) ==
          "vehicle state has no \"time\": its age is unknown");
    s = parked_now();
    s.time = kNow - 11;
    CHECK(update::vehicle_blocked_reason(p, s, kNow).find("vehicle state is stale") == 0);
    s.time = kNow - 10; // exactly max_age_s old: still fresh
    CHECK(update::vehicle_blocked_reason(p, s, kNow) == "");
    s.time = kNow + 3600;
    CHECK(update::vehicle_blocked_reason(p, s, kNow).find("dated in the future") !=
          std::string::npos);

    // Signals the policy does not ask for may be missing.
    update::VehiclePolicy lenient = p;
    lenient.require_ignition_off = false;
    lenient.min_battery_percent = 0;
    s = parked_now();
    s.battery_percent.reset();
    s.ignition_on.reset();
    CHECK(update::vehicle_blocked_reason(lenient, s, kNow) == "");
    // Present but not safe.
    s = parked_now();
    s.battery_percent = 49;
    CHECK(update::vehicle_blocked_reason(p, s, kNow) == "battery at 49%, policy needs 50%");
    s = parked_now();
    s.ignition_on = true;
    CHECK(update::vehicle_blocked_reason(p, s, kNow) == "ignition is on");
}

TEST_CASE("install gate: consent is never assumed from a missing signal") {
    FixedClock clock;
    update::VehiclePolicy p = strict_policy();
    p.require_consent = true;
    update::InstallGate gate(p, std::make_unique<FixedVehicle>(parked_now()), nullptr, clock);
    CHECK(gate.blocked_reason() == "waiting for the user's consent");
    hal::VehicleState s = parked_now();
    s.user_consent = true;
    update::InstallGate consented(p, std::make_unique<FixedVehicle>(s), nullptr, clock);
    CHECK(consented.blocked_reason() == "");
}

TEST_CASE("vehicle state JSON: absent keys stay unknown, wrong ones are errors") {
    hal::VehicleState s = hal::parse_vehicle_state_json(
        R"({"time": 1767225600, "parked": true, "battery_percent": 80, "ignition_on": null})",
        "test");
    CHECK(s.time == kNow);
    CHECK(s.parked == true);
    CHECK(s.battery_percent == 80);
    CHECK_FALSE(s.ignition_on);
    CHECK_FALSE(s.user_consent);
    CHECK_THROWS_WITH(hal::parse_vehicle_state_json(R"({"parked": "yes"})", "test"),
                      Catch::Contains("\"parked\" must be true or false"));
    CHECK_THROWS_WITH(hal::parse_vehicle_state_json(R"({"battery_percent": 101})", "test"),
                      Catch::Contains("\"battery_percent\" must be an integer from 0 to 100"));
    CHECK_THROWS_WITH(hal::parse_vehicle_state_json(R"({"time": "now"})", "test"),
                      Catch::Contains("\"time\" must be unix seconds"));
    CHECK_THROWS_AS(hal::parse_vehicle_state_json("[1, 2]", "test"), Error);
    CHECK_THROWS_AS(hal::parse_vehicle_state_json("{\"parked\": tru", "test"), Error);
}

TEST_CASE("vehicle state from a file another process writes, or from a command's output") {
    TempDir dir;
    FixedClock clock;
    const update::VehiclePolicy p = strict_policy();
    {
        // The gateway has not written the file yet.
        update::InstallGate gate(p, std::make_unique<hal::FileVehicleState>(dir.file("v.json")),
                                 nullptr, clock);
        CHECK(gate.blocked_reason().find("vehicle state unknown") == 0);
        ota::test::write_all_file(dir.file("v.json"),
                                  R"({"time": 1767225600, "parked": true, "ignition_on": false})");
        // No battery signal: the policy needs 50 %.
        CHECK(gate.blocked_reason() == "vehicle state does not give the battery charge");
        ota::test::write_all_file(dir.file("v.json"), R"({"time": 1767225600, "parked": true,
            "ignition_on": false, "battery_percent": 90})");
        CHECK(gate.blocked_reason() == "");
    }
    {
        // stdout is the document; stderr is the command's own business.
        update::InstallGate gate(
            p,
            std::make_unique<hal::CommandVehicleState>(
                std::vector<std::string>{"/bin/sh", "-c",
                                         "echo reading CAN >&2; cat '" + dir.file("v.json") + "'"},
                10),
            nullptr, clock);
        CHECK(gate.blocked_reason() == "");
        update::InstallGate failing(
            p,
            std::make_unique<hal::CommandVehicleState>(
                std::vector<std::string>{"/bin/sh", "-c", "echo '{}'; exit 2"}, 10),
            nullptr, clock);
        CHECK(failing.blocked_reason().find("failed (status 2)") != std::string::npos);
    }
}
