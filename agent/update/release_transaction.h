// Step 4: one update attempt as a transaction over all components of a plan (a release, or the
// standalone updates found), all-or-nothing:
//   1. download and verify every bundle (allowed while driving); download_mode "stream" keeps no
//      copy and reads each bundle from the network in step 3 instead
//   2. wait for the vehicle policy
//   3. stage every component without activating any (a failure here activates nothing; a delta
//      that does not apply falls back to the full bundle of the same version)
//   4. activate the models one by one, each with its health check; any failure rolls back all
//   5. no firmware: commit the models; firmware: switch to its slot (slot_switch), and the models
//      commit or roll back with its boot (boot_check)
#pragma once
#include "agent/update/step_context.h"
#include "agent/update/target_selection.h"

#include <string>
#include <vector>

namespace ota::update {

// `bundle_paths` holds bundles already on disk for the first items (a file given to `install`);
// the others are downloaded (or streamed). Returns false when the plan had nothing to install.
bool run_transaction(const StepContext& ctx, const SignedTargets& targets, Plan& plan,
                     AgentState& state, std::vector<std::string> bundle_paths,
                     const UpdateOptions& options);

} // namespace ota::update
