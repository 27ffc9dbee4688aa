// Step 1: what to install. Refreshes the signed metadata (TUF, agent/tuf) and chooses, for this
// hardware, the newest release above the installed one, else the newest firmware and model
// targets above the installed versions (a delta from the installed version when there is one).
#pragma once
#include "agent/tuf/updater.h"
#include "agent/update/step_context.h"
#include "agent/update/targets.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ota::update {

// The targets of freshly verified metadata, with the TUF client that verified them (it knows
// where each target is downloaded from).
class SignedTargets {
public:
    // First start: the root shipped with the image becomes the trusted root. Then a full TUF
    // refresh (root rotation, timestamp, snapshot, targets). Throws ota::Error.
    static SignedTargets refresh(const StepContext& ctx);
    // Targets another client already verified (an Uptane primary: the image repository's
    // targets the director instructs this ECU to install); `updater` must outlive the result.
    // No targets: nothing to download, and no updater is needed (null).
    static SignedTargets verified(tuf::Updater* updater, std::vector<tuf::TargetFile> targets);

    const std::vector<tuf::TargetFile>& all() const { return targets_; }
    std::string url(const tuf::TargetFile& target) const;

private:
    std::unique_ptr<tuf::Updater> owned_;
    tuf::Updater* updater_ = nullptr;
    std::vector<tuf::TargetFile> targets_;
};

struct Selection {
    BundleTarget chosen;
    std::optional<BundleTarget> full; // the full bundle of the same version (delta fallback)
};

// What one update attempt installs: one or more components, all-or-nothing. Models come first,
// the firmware (which needs a reboot) last.
struct Plan {
    std::optional<ReleaseRef> release;
    std::vector<Selection> items;
};

// Everything this ECU should install now (nullopt: up to date). Throws Error(WrongHardware) when
// newer firmware exists only for other hardware, Error(Rollback/NotFound/Config) for a release
// this ECU cannot install.
std::optional<Plan> select_plan(const StepContext& ctx, const SignedTargets& targets,
                                const AgentState& state);

} // namespace ota::update
