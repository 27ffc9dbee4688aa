// The engine over fakes: one update of each kind, and the defects found by restarting it at the
// wrong moment.
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "tests/update/engine_fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;

namespace {

// Power-ons and agent starts until the agent has nothing more to do.
void settle(World& w, int max_rounds = 8) {
    for (int round = 0; round < max_rounds; ++round) {
        RunResult r = w.run_agent();
        INFO("round " << round << " errors: " << (r.errors.empty() ? "" : r.errors.front()));
        REQUIRE(r.errors.empty());
        if (!w.ecu.reboot_requested()) return;
        w.ecu.power_on();
    }
    FAIL("the agent did not settle");
}

} // namespace

TEST_CASE("engine: each kind of update completes over the fakes") {
    for (Flow flow : {Flow::Full, Flow::Delta, Flow::Release}) {
        INFO(flow_name(flow));
        World w(flow);
        settle(w);
        update::AgentState s = w.state.load();
        CHECK(s.installed.at("rootfs").version == 2);
        CHECK(s.installed.at("rootfs").slot == "B");
        CHECK_FALSE(s.pending);
        CHECK(w.ecu.booted_slot() == "B");
        CHECK(w.slot_image_sha256("B") == file_sha256_hex(w.repo.image_v2));
        CHECK(w.ecu.boot_state().order.front() == "B");
        CHECK(w.ecu.boot_state().tries_left.at("B") == 3);
        CHECK(w.has_event(flow == Flow::Delta ? ", delta)" : ", full image)"));
        if (flow == Flow::Release) {
            CHECK(s.installed.at("perception").version == 1);
            REQUIRE(s.release);
            CHECK(s.release->id == "R1");
        }
    }
}

TEST_CASE("engine: an agent restart between the slot switch and the reboot is not a rollback") {
    World w(Flow::Full);
    update::UpdateOptions no_reboot;
    no_reboot.reboot = false;
    {
        // `ota-agent update --no-reboot`, or a daemon whose reboot waits for the vehicle.
        auto agent = w.start_agent();
        agent->engine->boot_check(no_reboot);
        REQUIRE(agent->engine->update(no_reboot));
    }
    REQUIRE(w.state.load().pending->stage == update::PendingStage::Switched);
    REQUIRE(w.ecu.boot_state().order.front() == "B");
    // The agent restarts (systemctl restart, a crash, the OOM killer); the ECU did not reboot.
    {
        auto agent = w.start_agent();
        CHECK(agent->engine->boot_check(no_reboot) == "reboot-pending");
    }
    update::AgentState s = w.state.load();
    REQUIRE(s.pending);
    CHECK(s.pending->stage == update::PendingStage::Switched);
    CHECK(s.failed_versions.empty());
    CHECK(s.last_result->outcome != "rolled-back");
    CHECK_FALSE(w.has_event("ROLLBACK"));
    CHECK(w.ecu.boot_state().order.front() == "B");
    CHECK(w.ecu.boot_state().tries_left.at("B") == 3);

    // The daemon asks for the reboot again, through the vehicle gate.
    w.vehicle.parked = false;
    {
        auto agent = w.start_agent();
        w.flags.stop = true; // the gate gives up when the agent stops, naming why it waited
        CHECK_THROWS_WITH(agent->engine->update(),
                          Catch::Contains("reboot not allowed") && Catch::Contains("not parked"));
        CHECK_FALSE(w.ecu.reboot_requested());
    }
    w.vehicle.parked = true;
    {
        auto agent = w.start_agent();
        CHECK(agent->engine->update());
        CHECK(w.ecu.reboot_requested());
    }
    CHECK(w.ecu.power_on() == "B");
    auto agent = w.start_agent();
    CHECK(agent->engine->boot_check() == "committed");
    CHECK(w.state.load().installed.at("rootfs").version == 2);
}

TEST_CASE("engine: an install that never finished is never committed, whatever slot booted") {
    World w(Flow::Full);
    // The agent dies before the switch: slot B is written but its install is not finished.
    w.transitions.arm_at("save installed (switched)", fakes::Transitions::Stop::CrashBefore);
    CHECK(w.run_agent().crashed);
    w.transitions.disarm();
    REQUIRE(w.state.load().pending->stage == update::PendingStage::Installing);
    // Something else (fw_setenv by hand, another tool) makes B the bootloader's first choice.
    w.ecu.env().update([](hal::EnvVars& vars) {
        vars["BOOT_ORDER"] = "B A";
        vars["BOOT_B_LEFT"] = "3";
    });
    REQUIRE(w.ecu.power_on() == "B");
    {
        auto agent = w.start_agent();
        CHECK(agent->engine->boot_check() != "committed");
    }
    update::AgentState s = w.state.load();
    CHECK_FALSE(s.installed.count("rootfs"));
    // B is not confirmed: it is out of BOOT_ORDER and the ECU goes back to A.
    const hal::BootState bs = w.ecu.boot_state();
    CHECK(bs.order.front() == "A");
    CHECK(bs.tries_left.at("B") == 0);
    CHECK(w.ecu.reboot_requested());
    CHECK(w.ecu.power_on() == "A");
    // From A, the install resumes and completes.
    settle(w);
    CHECK(w.state.load().installed.at("rootfs").version == 2);
    CHECK(w.ecu.booted_slot() == "B");
}

TEST_CASE("engine: a stop request during the slot write stops at the next operation, resumable") {
    World w(Flow::Full);
    // SIGTERM arrives while slot B is being written (after half of its four operations).
    w.on_event = [&](const update::Event& e) {
        if (e.step == "write" && e.total && e.done > 0 && e.done < e.total) w.flags.stop = true;
    };
    {
        auto agent = w.start_agent();
        agent->engine->boot_check();
        CHECK_THROWS_WITH(agent->engine->update(),
                          Catch::Contains("stopped on request after 2 of 4 operations"));
    }
    w.on_event = nullptr;
    // Stopped there: the journal records the two operations written, nothing was switched.
    const Json journal =
        parse_json(read_all(w.config.state_dir + "/install-journal.json"), "journal");
    CHECK(journal["next_op"] == 2);
    CHECK_FALSE(journal["complete"].get<bool>());
    update::AgentState s = w.state.load();
    REQUIRE(s.pending);
    CHECK(s.pending->stage == update::PendingStage::Installing);
    CHECK(w.ecu.boot_state().order == std::vector<std::string>{"A"});
    CHECK_FALSE(w.ecu.reboot_requested());
    // The next start resumes after them and completes.
    w.events.clear();
    settle(w);
    CHECK(w.has_event("resumed after 2 completed operations"));
    CHECK(w.state.load().installed.at("rootfs").version == 2);
    CHECK(w.ecu.booted_slot() == "B");
}
