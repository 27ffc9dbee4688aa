// Step 5: the written and verified slot becomes the bootloader's first choice, then the ECU
// reboots when the vehicle allows it. The switch is recorded first, with the boot id of the
// running boot, and only then written to the bootloader, so that an agent that restarts before the
// reboot (systemctl restart, a crash, the OOM killer, `update --no-reboot`) knows that the ECU has
// not rebooted yet: it keeps waiting for the reboot instead of taking the old slot for a fallback.
#pragma once
#include "agent/update/step_context.h"
#include "agent/update/targets.h"

#include <optional>
#include <vector>

namespace ota::update {

// state.pending must be the installed firmware (stage Installing, its slot verified). `models`
// were activated with it and commit or roll back with its boot.
void switch_slot(const StepContext& ctx, AgentState& state, const BundleTarget& firmware,
                 const std::vector<PendingModel>& models, const std::optional<ReleaseRef>& release,
                 const UpdateOptions& options);

// Where the switched update (state.pending) stands, seen from the running system.
enum class SwitchProgress {
    AwaitingReboot, // same boot as the switch, or the switch never reached the bootloader
    BootedNewSlot,  // the new slot runs: health check, then commit
    FellBack,       // the bootloader used up the new slot's tries and went back to the old one
};
SwitchProgress switch_progress(const StepContext& ctx, const AgentState& state,
                               const std::string& booted);

// AwaitingReboot: makes sure the bootloader will try the new slot (the switch is written again if
// it never got there, as after a power cut between recording it and writing it), then reboots
// once the vehicle allows it (not when options.reboot is false).
void resume_switch(const StepContext& ctx, AgentState& state, const UpdateOptions& options);

// Reboots into `slot` once the vehicle allows it (no reboot when options.reboot is false).
void reboot_into(const StepContext& ctx, const std::string& slot, const UpdateOptions& options);

} // namespace ota::update
