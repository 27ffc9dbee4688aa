// Step 6, after the reboot: commit the update that waited for this boot (health check, then
// mark_good and the models of its release), or see that the bootloader fell back to the old slot
// and report the rollback (that version is never retried). With nothing pending it confirms the
// running slot, as RAUC's mark-good service does. Also the rollbacks a user asks for.
#pragma once
#include "agent/update/step_context.h"

#include <string>

namespace ota::update {

// Returns the outcome: "committed", "rolled-back", "health-failed", "confirmed",
// "nothing-pending", "reboot-pending" (switched, but the ECU has not rebooted into the new slot
// yet: the agent restarted, or the switch never reached the bootloader), "not-committed" (the
// bootloader chose a slot whose install never finished).
std::string boot_check(const StepContext& ctx, const UpdateOptions& options);

// Undoes a firmware update that is switched to but not committed: its slot is marked bad and the
// previous slot is primary again (a reboot follows when we do not run it).
std::string rollback_firmware(const StepContext& ctx, const UpdateOptions& options);

// A model back to its previous version.
std::string rollback_model(const StepContext& ctx, const std::string& component);

} // namespace ota::update
