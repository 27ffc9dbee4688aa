// Step 3: write a verified bundle where it will run from, without activating it; either from a
// downloaded file or straight from the network.
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

// The same, reading the bundle from `url` as it is written (download_mode "stream"): no copy of the
// bundle is kept on disk. The header is checked against its signed hash and length before it is
// parsed, every blob against its hash in the header before it is decoded, and the whole file
// against the target's signed hash before its last blob is written (BundleStream); a resumed
// install (journal) asks only for the blobs still missing, with a Range request.
void stage_bundle_streamed(const StepContext& ctx, const BundleTarget& target,
                           const std::string& url, AgentState& state);

} // namespace ota::update
