// The agent as the vehicle's Uptane primary ECU (docs/uptane.md, "The agent as the primary"): one
// update cycle of the whole vehicle around the agent's own update engine:
//   1. Primary::refresh(): full verification of the director and the image repository;
//   2. the secondaries' version reports, so that only what they do not run yet is sent;
//   3. the engine installs the primary's own instruction (the image repository's verified target,
//      downloaded from there) up to, not including, the switch; just before it activates
//   4. every instructed secondary is updated in two phases (stage all, then switch all). If one
//      fails, no ECU switches and the error names it; the primary's written slot stays unbootable;
//   5. the vehicle version manifest (with the primary's own signed report) is POSTed to the
//      director, whatever the outcome; then the primary switches and reboots, if it installed.
// Every step is the engine's or the secondaries' own restartable step: the engine saves its state
// before each irreversible step, the secondaries keep theirs, and the primary records which
// secondaries it began to switch (Primary::update_secondaries), so a restart anywhere repeats the
// cycle to the same outcome.
#pragma once
#include "agent/net/fetcher.h"
#include "agent/update/config.h"
#include "agent/update/engine.h"
#include "agent/uptane/config.h"
#include "agent/uptane/primary.h"

#include <optional>
#include <string>

namespace ota::uptane {

// The Uptane configuration the agent's configuration names, checked against it: the primary's
// hardware id must be the agent's (it is what the engine installs for). Throws Error(Config).
UptaneConfig load_primary_config(const update::AgentConfig& agent);

class VehicleUpdate {
public:
    VehicleUpdate(const update::AgentConfig& agent, update::Engine& engine, net::Fetcher& fetcher,
                  update::EventSink events = {});
    // The engine forgets the hooks into this object.
    ~VehicleUpdate();
    VehicleUpdate(const VehicleUpdate&) = delete;
    VehicleUpdate& operator=(const VehicleUpdate&) = delete;

    // Steps 1 and the engine's targets: after it, Engine::check_plan() and Engine::install() see
    // exactly the primary's verified instruction. Throws ota::Error (the attack's kind).
    void prepare();

    // One cycle of the vehicle. Returns true when any ECU installed or switched something.
    // Throws ota::Error naming what failed (the ECU and why); the manifest was sent before.
    bool run(const update::UpdateOptions& options);

    // Sends the vehicle version manifest now (a failure is logged, not thrown: the director gets
    // the next one). `attack`: what the primary itself refused, for its own report.
    bool send_manifest(const std::string& attack = "");

private:
    bool update_secondaries(); // true when any secondary was sent something; throws on failure
    EcuVersionReport own_report(const std::string& attack);
    void emit(const std::string& step, const std::string& message) const;

    const update::AgentConfig& agent_;
    update::Engine& engine_;
    UptaneConfig config_;
    Primary primary_;
    update::EventSink events_;
    std::optional<VerifiedTarget> own_; // the director's instruction for the primary
};

} // namespace ota::uptane
