// Step 3: write a verified bundle where it will run from, without activating it.
//   firmware: the inactive slot is marked bad before its first byte is written (a half-written
//             slot must never boot), the pending install is recorded, the bundle is applied
//             (every blob hash-checked, resumable through the install journal) and the whole slot
//             is read back and compared with the signed image hash.
//   model:    written into the model store as a new version (not current yet).
#pragma once
#include "agent/update/step_context.h"
#include "agent/update/targets.h"

#include <string>

namespace ota::update {

// The slot the firmware is written to: the configured slot that is not running.
std::string inactive_slot(const StepContext& ctx, const std::string& booted);

// Stages one bundle (firmware or model) that download_bundle() verified. For firmware, `state`
// gets the pending install (saved before the first write). Throws ota::Error: SourceMismatch or
// NotFound when a delta does not apply to what is installed (the caller may fall back to the full
// bundle), HashMismatch, Io, Config.
void stage_bundle(const StepContext& ctx, const BundleTarget& target,
                  const std::string& bundle_path, AgentState& state);

} // namespace ota::update
