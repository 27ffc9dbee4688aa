// Model-based: for a full, a delta and a release update (and an update whose new version fails
// its health check), the engine is stopped at every persisted transition (each state save, each
// boot-control write, each reboot request) in each of five ways, then runs on from what it
// persisted. After every agent run and every power-on the invariant holds; in the end the update
// is complete (or, for the unhealthy version, the bootloader's fallback is reported).
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "tests/update/engine_fixture.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <set>

using namespace ota;
using namespace ota::test;

namespace {

enum class Interruption {
    CrashBeforeWrite,      // the transition is lost, the agent restarts in the same boot
    CrashAfterWrite,       // the transition is done, the agent restarts in the same boot
    CleanRestart,          // done, then SIGTERM: the agent stops cleanly and starts again
    RebootAfterWrite,      // done, then the ECU reboots (power cut) and the agent starts
    TwoRebootsWithoutAgent // done, then the ECU reboots twice before the agent runs again
};

const char* name(Interruption i) {
    switch (i) {
    case Interruption::CrashBeforeWrite: return "crash before it";
    case Interruption::CrashAfterWrite: return "crash after it";
    case Interruption::CleanRestart: return "clean restart after it";
    case Interruption::RebootAfterWrite: return "reboot after it";
    case Interruption::TwoRebootsWithoutAgent: return "two reboots after it, agent not run between";
    }
    return "?";
}

fakes::Transitions::Stop stop_of(Interruption i) {
    if (i == Interruption::CrashBeforeWrite) return fakes::Transitions::Stop::CrashBefore;
    if (i == Interruption::CleanRestart) return fakes::Transitions::Stop::CleanStop;
    return fakes::Transitions::Stop::CrashAfter;
}

bool all_zero_prefix(const std::string& file) {
    return read_file(file, kEngineSlotSize).find_first_not_of('\0', 0) >= kEngineImageSize;
}

// What must hold whenever the agent is not running.
void check_invariant(const World& w, const std::string& when) {
    INFO("after " << when);
    const std::string v1 = file_sha256_hex(w.repo.image_v1);
    const std::string v2 = file_sha256_hex(w.repo.image_v2);
    // The booted slot, and every slot the bootloader may try, holds a complete signed image (or,
    // for B, nothing was ever written to it).
    const std::string booted = w.ecu.booted_slot();
    CHECK((w.slot_image_sha256(booted) == v1 || w.slot_image_sha256(booted) == v2));
    const hal::BootState bs = w.ecu.boot_state();
    for (const auto& slot : bs.order) {
        if (bs.tries_left.at(slot) == 0) continue;
        const std::string h = w.slot_image_sha256(slot);
        INFO("bootable slot " << slot);
        CHECK((h == v1 || h == v2 || all_zero_prefix(w.ecu.slot_files().at(slot))));
    }
    const update::AgentState s = w.state.load();
    // A committed firmware version is exactly the signed image, in the slot recorded for it (an
    // unhealthy one is never committed).
    if (w.flow == Flow::Unhealthy) CHECK_FALSE(s.installed.count("rootfs"));
    if (auto it = s.installed.find("rootfs"); it != s.installed.end()) {
        CHECK(it->second.version == 2);
        CHECK(w.slot_image_sha256(it->second.slot) == v2);
    }
    // A committed model is exactly the signed one, and current in the store.
    if (auto it = s.installed.find("perception"); it != s.installed.end()) {
        models::ModelStore store(w.config.models.store);
        CHECK(store.current_version("perception") == it->second.version);
        CHECK(read_all(store.current_path("perception") + "/weights.bin") ==
              read_all(w.repo.model_dir + "/weights.bin"));
    }
    // A firmware rollback is reported only when the bootloader really fell back. (A model whose
    // activation a crash interrupted is rolled back and reinstalled: that is no failed version.)
    auto failed = s.failed_versions.find("rootfs");
    const bool rollback_reported = (failed != s.failed_versions.end() && !failed->second.empty()) ||
                                   (s.last_result && s.last_result->outcome == "rolled-back" &&
                                    s.last_result->component == "rootfs");
    CHECK((!rollback_reported || w.ecu.fell_back()));
    CHECK((!w.has_event("ROLLBACK") || w.ecu.fell_back()));
}

// The unhealthy version was tried, the bootloader fell back, the agent reported it once and will
// not retry it: slot A runs version 1, confirmed; slot B is out of the way.
void check_fell_back(const World& w) {
    const update::AgentState s = w.state.load();
    CHECK_FALSE(s.installed.count("rootfs"));
    CHECK_FALSE(s.pending);
    CHECK(s.failed_versions.count("rootfs"));
    CHECK((s.failed_versions.count("rootfs") &&
           s.failed_versions.at("rootfs") == std::set<uint64_t>{2}));
    CHECK(w.ecu.fell_back());
    CHECK(w.ecu.booted_slot() == "A");
    const hal::BootState bs = w.ecu.boot_state();
    CHECK(bs.order.front() == "A");
    CHECK(bs.tries_left.at("A") == 3);
    CHECK(bs.tries_left.at("B") == 0);
    CHECK(std::find(bs.order.begin(), bs.order.end(), "B") == bs.order.end());
}

// Nothing went wrong, so the update completed (or, for a version that fails its health check, the
// fallback did).
void check_complete(const World& w) {
    if (w.flow == Flow::Unhealthy) return check_fell_back(w);
    const update::AgentState s = w.state.load();
    if (!s.installed.count("rootfs")) {
        FAIL_CHECK("version 2 was not committed");
        return;
    }
    CHECK(s.installed.at("rootfs").version == 2);
    CHECK(s.installed.at("rootfs").slot == w.ecu.booted_slot());
    CHECK_FALSE(s.pending);
    CHECK(s.failed_versions.empty());
    CHECK_FALSE(w.ecu.fell_back());
    const hal::BootState bs = w.ecu.boot_state();
    CHECK(bs.order.front() == w.ecu.booted_slot());
    CHECK(bs.tries_left.at(w.ecu.booted_slot()) == 3);
    if (w.flow == Flow::Release) {
        models::ModelStore store(w.config.models.store);
        CHECK(s.installed.count("perception"));
        CHECK(store.current_version("perception") == std::optional<uint64_t>(1));
        CHECK_FALSE(store.trial_version("perception"));
        CHECK((s.release && s.release->id == "R1"));
    }
}

// Runs the ECU until the agent has nothing more to do: the agent starts (boot-check, one update
// attempt); when it asked for a reboot the ECU powers on; and again. When the armed transition
// stops the agent, the ECU goes on as `how` says. Returns the number of agent starts.
int drive(World& w, Interruption how) {
    for (int start = 1; start <= 16; ++start) {
        RunResult r = w.run_agent();
        check_invariant(w, "agent start " + std::to_string(start));
        int power_ons = w.ecu.reboot_requested() ? 1 : 0;
        if (r.crashed || r.stopped) {
            if (how == Interruption::RebootAfterWrite) power_ons = 1;
            if (how == Interruption::TwoRebootsWithoutAgent) power_ons = 2;
        } else if (power_ons == 0) {
            return start;
        }
        for (int i = 0; i < power_ons; ++i) {
            w.ecu.power_on();
            check_invariant(w, "power-on into " + w.ecu.booted_slot());
        }
    }
    FAIL("the agent did not settle within 16 starts");
    return 0;
}

} // namespace

TEST_CASE("engine: stopped at every persisted transition, in five ways, the update completes") {
    // Each flow's transitions are those of an undisturbed run; each scenario stops at one of them.
    int scenarios = 0;
    for (Flow flow : {Flow::Full, Flow::Delta, Flow::Release, Flow::Unhealthy}) {
        std::vector<std::string> transitions;
        {
            World reference(flow);
            drive(reference, Interruption::CrashAfterWrite);
            check_complete(reference);
            transitions = reference.transitions.names();
        }
        std::string list;
        for (const auto& t : transitions)
            list += (list.empty() ? "" : ", ") + t;
        std::printf("%s: %zu transitions: %s\n", flow_name(flow), transitions.size(), list.c_str());
        for (size_t k = 0; k < transitions.size(); ++k) {
            for (Interruption how : {Interruption::CrashBeforeWrite, Interruption::CrashAfterWrite,
                                     Interruption::CleanRestart, Interruption::RebootAfterWrite,
                                     Interruption::TwoRebootsWithoutAgent}) {
                INFO(flow_name(flow)
                     << ": transition " << k << " (" << transitions[k] << "), " << name(how));
                World w(flow);
                w.transitions.arm(k, stop_of(how));
                drive(w, how);
                check_complete(w);
                ++scenarios;
            }
        }
    }
    std::printf("%d scenarios\n", scenarios);
    CHECK(scenarios > 0);
}
