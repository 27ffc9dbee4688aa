// Step 2 (download_mode "staged"): fetch a bundle into state_dir/download/ (resuming a partial file
// after a lost connection or a power cut) and check it against the length and hash its signed
// target lists. Nothing is written to a slot or the model store before this check passed. (In
// "stream" mode staging reads the bundle from the network itself: staging.h.)
#pragma once
#include "agent/update/step_context.h"
#include "agent/update/target_selection.h"
#include "agent/update/targets.h"

#include <set>
#include <string>

namespace ota::update {

// The file name of a target's bundle in the download folder (its strongest hash). Throws
// Error(Unsupported) for a target without a hash the agent knows.
std::string bundle_file_name(const BundleTarget& target);

// Downloads `target` and verifies it; returns the file's path. Other files in the download folder
// are removed, except those named in `keep` (the other bundles of the same attempt). Throws
// Error(HashMismatch) (and deletes the file) when the download is not the signed bundle.
std::string download_bundle(const StepContext& ctx, const SignedTargets& targets,
                            const BundleTarget& target, std::set<std::string> keep = {});

// Removes the files of the download folder not named in `keep` (partial downloads of earlier
// attempts: a streamed install needs none of them).
void remove_other_downloads(const StepContext& ctx, const std::set<std::string>& keep);

} // namespace ota::update
