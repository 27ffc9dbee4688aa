// The update state machine of one ECU, as a pipeline of steps (step_context.h lists them):
//   select -> download -> stage (write the inactive slot, verified, resumable) -> release
//   transaction (models + firmware, all-or-nothing) -> switch (set primary with bounded tries) ->
//   reboot -> boot-check: health check -> commit (mark good), or see the bootloader's fallback.
// Every step that changes the ECU is persisted before the next one starts, so a power cut at any
// point resumes or leaves the running slot untouched.
#pragma once
#include "agent/models/model_store.h"
#include "agent/net/fetcher.h"
#include "agent/update/config.h"
#include "agent/update/platform.h"
#include "agent/update/state.h"
#include "agent/update/step_context.h"
#include "agent/update/target_selection.h"
#include "agent/update/targets.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ota::update {

class Engine {
public:
    Engine(AgentConfig config, Platform& platform, net::Fetcher& fetcher, EventSink events = {});
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Refreshes the metadata and returns everything this ECU should install now: the newest
    // release for this hardware above the installed release, else the newest standalone firmware
    // and model targets (nullopt: up to date).
    std::optional<Plan> check_plan();
    // Everything up to the reboot request. Returns false when there was nothing to do.
    bool update(const UpdateOptions& options = {});
    // After boot: commit, report a fallback, or (no update pending) confirm the running slot.
    // Returns the outcome written to the state ("committed", "rolled-back", "health-failed",
    // "confirmed", "nothing-pending").
    std::string boot_check(const UpdateOptions& options = {});
    Json status();

    // Installs one bundle given as a local file or a URL. It must be a target of the verified
    // metadata (same length and SHA-256) for this hardware with a newer version: never unsigned.
    bool install(const std::string& file_or_url, const UpdateOptions& options = {});
    // Commits a pending update without running the health check (the integrator vouches).
    std::string mark_good();
    // Rolls back a model to its previous version, or an uncommitted firmware update.
    std::string rollback(const std::string& component, const UpdateOptions& options = {});
    // Records a step that failed as the last result ("failed"), for status and the report.
    void record_failure(const std::string& message);

    // Install and reboot wait for this (vehicle-state gating); default: always allowed.
    void set_gate(std::function<void(const std::string& phase)> gate) {
        ctx_.gate = std::move(gate);
    }
    // Long steps (the slot write) stop at their next safe point once this returns true.
    void set_stop_request(std::function<bool()> stop) { ctx_.stop_requested = std::move(stop); }
    // An Uptane primary: the targets come from its verified repositories instead of the engine's
    // own TUF refresh, and its other ECUs are updated before this one activates (step_context.h).
    void set_targets_source(std::function<SignedTargets()> source) {
        targets_source_ = std::move(source);
    }
    void set_before_activate(std::function<void()> hook) { ctx_.before_activate = std::move(hook); }
    models::ModelStore* model_store() { return store_.get(); }
    const AgentConfig& config() const { return config_; }

private:
    SignedTargets refresh_targets();

    AgentConfig config_;
    Platform& platform_;
    net::Fetcher& fetcher_;
    std::unique_ptr<models::ModelStore> store_;
    StepContext ctx_;
    std::function<SignedTargets()> targets_source_;
};

} // namespace ota::update
