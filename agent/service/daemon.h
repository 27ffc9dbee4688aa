// `ota-agent daemon`: the agent as a service. At start it validates the configuration against the
// machine (files, keys, devices), rolls back interrupted model activations and runs boot-check;
// then it polls: update when available (install/reboot gated by the vehicle policy), a signed
// status report after each attempt, sleep for poll_interval_s plus a random jitter (or until
// "check" arrives on the control socket, or SIGTERM).
#pragma once
#include "agent/update/config.h"
#include "agent/update/engine.h"

#include <functional>
#include <string>

namespace ota::service {

struct DaemonOptions {
    bool once = false;  // one attempt, then exit (cron-style use, tests)
    bool reboot = true; // false: never reboot by itself (--no-reboot)
    // One update attempt; empty: engine.update(). An Uptane primary runs its vehicle's cycle here
    // (agent/uptane/vehicle_update.h), with the daemon's event sink.
    std::function<void(update::Engine&, const update::UpdateOptions&, const update::EventSink&)>
        update_cycle;
};

// Everything the daemon needs that parse_config cannot see: files that must exist, the device
// key, the bootloader's environment, the store folder. Throws Error(Config) naming the key.
void validate_runtime(const update::AgentConfig& config);

// One step of the daemon (boot-check, an update attempt). Whatever it throws becomes a reported
// failure: logged, sent as an "error" event and recorded as the last result (status, signed
// report); it never ends the daemon. Returns false when the step failed.
bool run_daemon_step(const std::string& name, const std::function<void()>& step,
                     update::Engine& engine, const update::EventSink& sink);

// Returns the process exit status (0 after a clean stop).
int run_daemon(const update::AgentConfig& config, const DaemonOptions& options,
               const update::EventSink& printer);

} // namespace ota::service
