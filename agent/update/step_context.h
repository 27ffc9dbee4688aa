// What every step of an update works with. The engine (engine.h) builds one StepContext and runs
// the steps over it, in the spirit of Android update_engine's action pipeline; each step is a file
// of this folder:
//   target_selection     refresh the signed metadata, choose what to install (Plan)
//   download             fetch each bundle, check it against its signed length and hash
//   staging              write the inactive slot / stage a model (verified, resumable)
//   release_transaction  all components of a plan, all-or-nothing (models first, firmware last)
//   slot_switch          make the written slot the bootloader's first choice, reboot
//   boot_check           after the boot: commit, see the bootloader's fallback, or keep waiting
// Everything outside the agent's own files goes through the platform's interfaces (platform.h),
// so the engine's tests run the whole pipeline over fakes.
#pragma once
#include "agent/models/model_store.h"
#include "agent/net/fetcher.h"
#include "agent/update/config.h"
#include "agent/update/platform.h"
#include "agent/update/state.h"

#include <cstdint>
#include <functional>
#include <string>

namespace ota::update {

// A step of the update as it happens, for the terminal, logs and the control socket.
struct Event {
    std::string step; // "check", "download", "verify", "write", "switch", "reboot", "commit", ...
    std::string message;
    uint64_t done = 0; // progress of download/write, when known
    uint64_t total = 0;
};
using EventSink = std::function<void(const Event&)>;

struct UpdateOptions {
    bool reboot = true;
    int health_timeout_s = 300;
    bool skip_health = false; // mark-good: the integrator vouches for the running system
};

struct StepContext {
    const AgentConfig& config;
    Platform& platform;
    net::Fetcher& fetcher;
    models::ModelStore* store = nullptr; // null without models.store
    EventSink events;
    // Blocks until the vehicle policy allows `phase` ("install", "reboot"); throws when it gives
    // up. Empty: always allowed.
    std::function<void(const std::string& phase)> gate;
    // True once the agent was asked to stop (SIGTERM): long steps stop at their next safe point.
    std::function<bool()> stop_requested;
    // Runs once every component of a plan is staged, before anything is activated: a multi-ECU
    // update (Uptane) brings its other ECUs to the same point here. A throw activates nothing on
    // this ECU (its written slot stays unbootable). Empty: a single-ECU update.
    std::function<void()> before_activate;

    void emit(const std::string& step, const std::string& message, uint64_t done = 0,
              uint64_t total = 0) const {
        if (events) events(Event{step, message, done, total});
    }
    void wait_for(const std::string& phase) const {
        if (gate) gate(phase);
    }
    bool stopping() const { return stop_requested && stop_requested(); }

    AgentState load() const { return platform.state->load(); }
    void save(const AgentState& state) const { platform.state->save(state); }
    // Sets the state's last result (saved with the next save()).
    void record(AgentState& state, const std::string& outcome, const std::string& component,
                uint64_t version, const std::string& message) const {
        state.last_result = LastResult{outcome, component, version, message, platform.clock->now()};
    }

    // The firmware version in the slots (the factory version until the agent commits one).
    uint64_t installed_version(const AgentState& state) const {
        auto it = state.installed.find(config.component);
        return it == state.installed.end() ? config.installed_version : it->second.version;
    }
    uint64_t component_version(const AgentState& state, const std::string& component) const {
        if (component == config.component) return installed_version(state);
        if (store) return store->current_version(component).value_or(0);
        auto it = state.installed.find(component);
        return it == state.installed.end() ? 0 : it->second.version;
    }
    std::string download_dir() const { return config.state_dir + "/download"; }
};

} // namespace ota::update
