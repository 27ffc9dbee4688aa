// The two repositories of Uptane on one ECU: the director's and the image repository's trusted
// metadata in one TrustStore (sub-folders director/ and image/), each refreshed by its own
// tuf::Updater, then cross-checked (full verification). The primary reads both over the network;
// a full-verification secondary reads what its primary pushed (PushedFetcher). Nothing of a
// refresh is kept unless every check passed.
#pragma once
#include "agent/net/fetcher.h"
#include "agent/tuf/updater.h"
#include "agent/uptane/director_targets.h"
#include "agent/uptane/pushed_metadata.h"
#include "agent/uptane/trust_store.h"
#include "agent/uptane/verification.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ota::uptane {

struct RepositoryEndpoint {
    std::string metadata_url; // ends with '/'
    std::string targets_url;  // ends with '/' (the image repository's images)
    std::string trusted_root; // the root shipped with the ECU, used when none is trusted yet
    MetadataLimits limits;
};

struct VerificationResult {
    DirectorInstructions director;
    // Verified targets by ECU serial: every instruction for the primary, this ECU's for a
    // secondary. Empty when the director instructs nothing (in scope).
    std::map<std::string, VerifiedTarget> targets;
};

class UptaneRepositories {
public:
    UptaneRepositories(std::string trust_dir, RepositoryEndpoint director, RepositoryEndpoint image,
                       tuf::Clock clock = tuf::system_time_now);

    // Full verification (Uptane Standard, "Full verification"): the director's root, timestamp,
    // snapshot and targets; then, if the director instructs any ECU in scope, the image
    // repository's; then every instruction in scope against the image repository.
    //  - whole vehicle (the primary): every instruction, each for one of `ecus`;
    //  - otherwise (a secondary, `ecus` = itself): only the instruction for itself.
    // vehicle_id: when set, the director's targets must be for this vehicle.
    // accept: the caller's own checks of the result, run before anything is kept.
    // Throws ota::Error; the trusted metadata is then unchanged.
    VerificationResult
    refresh_and_verify(net::Fetcher& director_fetcher, net::Fetcher& image_fetcher,
                       const std::optional<std::string>& vehicle_id,
                       const std::vector<EcuIdentity>& ecus, bool whole_vehicle,
                       const std::function<void(const VerificationResult&)>& accept = nullptr);

    // After a successful refresh_and_verify: the image repository's client (target downloads,
    // delegation searches). Throws Error(State) before.
    tuf::Updater& image_updater();

    // The trusted folders (what a primary pushes to its secondaries).
    std::string director_dir() const;
    std::string image_dir() const;
    const RepositoryEndpoint& director() const { return director_; }
    const RepositoryEndpoint& image() const { return image_; }

private:
    tuf::UpdaterConfig updater_config(const RepositoryEndpoint& e, const std::string& dir) const;

    TrustStore store_;
    RepositoryEndpoint director_, image_;
    tuf::Clock clock_;
    std::unique_ptr<tuf::Updater> image_updater_;
};

// Instructions in the director's targets currently trusted in `director_dir` (none if absent).
std::optional<DirectorInstructions> trusted_director_instructions(const std::string& director_dir);

} // namespace ota::uptane
