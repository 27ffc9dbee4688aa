// Step 5: the written and verified slot becomes the bootloader's first choice (set_primary with a
// bounded number of tries), the pending update is recorded as switched, then the ECU reboots when
// the vehicle allows it.
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

// Reboots into `slot` once the vehicle allows it (no reboot when options.reboot is false).
void reboot_into(const StepContext& ctx, const std::string& slot, const UpdateOptions& options);

} // namespace ota::update
