// The TUF client workflow (specification 5.1-5.7) over a Fetcher and a local metadata folder.
// Used by the agent (to find its update) and by ota-tuf-client (conformance front end).
#pragma once
#include "agent/net/fetcher.h"
#include "agent/tuf/trusted_set.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ota::tuf {

struct UpdaterConfig {
    std::string metadata_dir;      // trusted metadata: root.json, timestamp.json, ...
    std::string metadata_base_url; // ends with '/'
    std::string targets_base_url;  // ends with '/'
    uint64_t max_root_length = 512 * 1024;
    uint64_t max_timestamp_length = 16 * 1024;
    uint64_t max_snapshot_length = 2 * 1024 * 1024; // when the timestamp gives no length
    uint64_t max_targets_length = 5 * 1024 * 1024;  // when the snapshot gives no length
    uint32_t max_root_rotations = 32;
    uint32_t max_delegations = 32;        // delegated roles visited in one target search
    bool prefix_targets_with_hash = true; // HASH.FILENAME when consistent_snapshot
};

// Reference time for expiry checks: taken once per refresh from the system clock through libc
// (so faketime applies). Overridable for tests.
using Clock = std::function<int64_t()>;
int64_t system_time_now();

class Updater {
public:
    Updater(UpdaterConfig config, net::Fetcher& fetcher, Clock clock = system_time_now);

    // Stores the initial trusted root (ota-tuf-client init, the agent's first start); it is
    // verified at the next refresh. A root other than the one the root history starts from
    // starts a new history.
    static void initialize(const std::string& metadata_dir, const std::string& root_bytes);

    // Runs root rotation, timestamp, snapshot and top-level targets. Throws ota::Error. The
    // starting root is root.json, or, when root.json is damaged or older, the newest root the
    // root history verifies (logged as a warning).
    void refresh();
    // Delegation search (pre-order depth first) for one target; nullopt when no role lists it.
    std::optional<TargetFile> find_target(const std::string& target_path);
    // Every target trusted by the top-level targets role or a delegation that covers it.
    std::vector<TargetFile> all_targets();
    // Target URL (consistent snapshot HASH. prefix applied).
    std::string target_url(const TargetFile& target) const;
    // Downloads and verifies a target into `dest_path` (atomically; nothing is left there on
    // failure). Skips the download when dest_path already holds the verified target.
    void download_target(const TargetFile& target, const std::string& dest_path);

    const TrustedSet& trusted() const { return *trusted_; }

private:
    std::string load_local(const std::string& filename) const;
    void persist(const std::string& filename, const std::string& bytes) const;
    void remove_local(const std::string& filename) const;
    std::unique_ptr<TrustedSet> load_trusted_root(int64_t now);
    void load_root();
    void update_timestamp();
    void update_snapshot();
    void update_targets();
    const TrustedTargets& load_delegated(const DelegationChain& chain);
    std::string role_url(const std::string& role, uint64_t version) const;

    UpdaterConfig config_;
    net::Fetcher& fetcher_;
    Clock clock_;
    std::unique_ptr<TrustedSet> trusted_;
};

// File name used for a role's trusted copy: "ROLE.json" with the role name percent-encoded.
std::string role_filename(const std::string& role);

} // namespace ota::tuf
