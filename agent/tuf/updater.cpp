#include "agent/tuf/updater.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/tuf/root_history.h"
#include "agent/tuf/target_url.h"

#include <ctime>
#include <set>
#include <unistd.h>

namespace ota::tuf {

namespace {
constexpr uint64_t kMaxLocalMetadata = 64ull << 20;
}

int64_t system_time_now() {
    return static_cast<int64_t>(::time(nullptr));
}

std::string role_filename(const std::string& role) {
    return percent_encode(role) + ".json";
}

Updater::Updater(UpdaterConfig config, net::Fetcher& fetcher, Clock clock)
    : config_(std::move(config)), fetcher_(fetcher), clock_(std::move(clock)) {}

void Updater::initialize(const std::string& metadata_dir, const std::string& root_bytes) {
    make_directories(metadata_dir);
    const int64_t now = system_time_now();
    std::optional<uint64_t> version;
    try {
        version = TrustedSet(root_bytes, now).root().env.version;
    } catch (const Error& e) {
        LOG_DEBUG("initial root not verifiable yet: " << e.what()); // refresh() will refuse it
    }
    if (version) {
        // The same root again (the factory root re-installed) keeps the roots verified since;
        // another root is a new trust anchor, and the history of the old one must not outrank it.
        const RootHistory history(metadata_dir);
        const std::optional<RootRecord> same = history.load(*version);
        if (!same || same->bytes != root_bytes) {
            history.clear();
            history.record(RootRecord{*version, now, root_bytes});
        }
    }
    write_file_atomic(join_path(metadata_dir, "root.json"), root_bytes);
}

std::string Updater::load_local(const std::string& filename) const {
    return read_file(join_path(config_.metadata_dir, filename), kMaxLocalMetadata);
}

void Updater::persist(const std::string& filename, const std::string& bytes) const {
    write_file_atomic(join_path(config_.metadata_dir, filename), bytes);
}

void Updater::remove_local(const std::string& filename) const {
    remove_file_durable(join_path(config_.metadata_dir, filename));
}

std::string Updater::role_url(const std::string& role, uint64_t version) const {
    const std::string name = role_filename(role);
    if (trusted_->root().meta.consistent_snapshot)
        return config_.metadata_base_url + std::to_string(version) + "." + name;
    return config_.metadata_base_url + name;
}

void Updater::refresh() {
    // One reference time for the whole refresh (spec 5.1), taken before anything else.
    const int64_t now = clock_();
    trusted_ = load_trusted_root(now);
    load_root();
    update_timestamp();
    update_snapshot();
    update_targets();
}

std::unique_ptr<TrustedSet> Updater::load_trusted_root(int64_t now) {
    const RootHistory history(config_.metadata_dir);
    std::unique_ptr<TrustedSet> current;
    std::optional<Error> failure;
    try {
        current = std::make_unique<TrustedSet>(load_local("root.json"), now);
    } catch (const Error& e) {
        failure = e;
    }
    // The chain is only walked when it could matter: root.json unusable, or an older version
    // than the newest record.
    const std::vector<uint64_t> versions = history.versions();
    const bool history_is_newer =
        !versions.empty() && (!current || versions.back() > current->root().env.version);
    const std::optional<RootRecord> verified =
        history_is_newer ? history.newest_verified(now) : std::nullopt;
    if (current && (!verified || verified->version <= current->root().env.version)) {
        // Roots trusted before the history existed join it here. Best effort: the trust decision
        // does not depend on it, and a full disk must not stop the update.
        const uint64_t version = current->root().env.version;
        const std::optional<RootRecord> kept = history.load(version);
        if (!kept || kept->bytes != current->root().env.raw) {
            try {
                history.record(RootRecord{version, now, current->root().env.raw});
            } catch (const Error& e) {
                LOG_WARN("root version " << version
                                         << " not added to the root history: " << e.what());
            }
        }
        return current;
    }
    if (!verified) throw *failure;
    if (current)
        LOG_WARN("trusted root.json holds root version "
                 << current->root().env.version << " but version " << verified->version
                 << " was verified before: continuing from version " << verified->version);
    else
        LOG_WARN("trusted root.json is unusable ("
                 << failure->what() << "); falling back to root version " << verified->version
                 << ", the last one verified, and refreshing");
    persist("root.json", verified->bytes);
    return std::make_unique<TrustedSet>(verified->bytes, now);
}

void Updater::load_root() {
    bool keys_rotated = false;
    for (uint32_t i = 0; i < config_.max_root_rotations; ++i) {
        const uint64_t next = trusted_->root().env.version + 1;
        std::string bytes;
        try {
            bytes = fetcher_.fetch(config_.metadata_base_url + std::to_string(next) + ".root.json",
                                   config_.max_root_length);
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NotFound) break;
            throw;
        }
        keys_rotated = trusted_->update_root(bytes) || keys_rotated;
        RootHistory(config_.metadata_dir)
            .record(RootRecord{next, trusted_->reference_time(), bytes});
        persist("root.json", bytes);
        LOG_INFO("trusted root rotated to version " << next);
    }
    trusted_->check_root_not_expired();
    if (keys_rotated) {
        // Fast-forward recovery: metadata signed by the old keys must not block new metadata.
        remove_local("timestamp.json");
        remove_local("snapshot.json");
    }
}

void Updater::update_timestamp() {
    try {
        trusted_->update_timestamp(load_local("timestamp.json"), /*from_local=*/true);
    } catch (const Error& e) {
        LOG_DEBUG("local timestamp not used: " << e.what());
    }
    std::string bytes =
        fetcher_.fetch(config_.metadata_base_url + "timestamp.json", config_.max_timestamp_length);
    if (trusted_->update_timestamp(bytes)) persist("timestamp.json", bytes);
}

void Updater::update_snapshot() {
    try {
        trusted_->update_snapshot(load_local("snapshot.json"), /*from_local=*/true);
        return; // the local snapshot is the one the timestamp names
    } catch (const Error& e) {
        LOG_DEBUG("local snapshot not used: " << e.what());
    }
    const MetaFile& meta = trusted_->timestamp()->meta.snapshot;
    uint64_t max = meta.length.value_or(config_.max_snapshot_length);
    std::string bytes = fetcher_.fetch(role_url("snapshot", meta.version), max);
    trusted_->update_snapshot(bytes);
    persist("snapshot.json", bytes);
}

void Updater::update_targets() {
    try {
        trusted_->update_targets(load_local("targets.json"));
        return;
    } catch (const Error& e) {
        LOG_DEBUG("local targets not used: " << e.what());
    }
    auto it = trusted_->snapshot()->meta.meta.find("targets.json");
    if (it == trusted_->snapshot()->meta.meta.end())
        throw Error(ErrorKind::Malformed, "snapshot does not list targets.json");
    uint64_t max = it->second.length.value_or(config_.max_targets_length);
    std::string bytes = fetcher_.fetch(role_url("targets", it->second.version), max);
    trusted_->update_targets(bytes);
    persist("targets.json", bytes);
}

const TrustedTargets& Updater::load_delegated(const DelegationChain& chain) {
    if (const TrustedTargets* t = trusted_->delegated(chain)) return *t;
    const std::string& role = chain.back();
    const std::string filename = role_filename(role);
    try {
        // A cached copy is verified again, against the delegator of this chain.
        trusted_->update_delegated_targets(load_local(filename), chain);
        return *trusted_->delegated(chain);
    } catch (const Error& e) {
        LOG_DEBUG("local " << filename << " not used: " << e.what());
    }
    auto it = trusted_->snapshot()->meta.meta.find(role + ".json");
    if (it == trusted_->snapshot()->meta.meta.end())
        throw Error(ErrorKind::Malformed, "delegated role " + role + " is not listed in snapshot");
    uint64_t max = it->second.length.value_or(config_.max_targets_length);
    std::string bytes = fetcher_.fetch(role_url(role, it->second.version), max);
    trusted_->update_delegated_targets(bytes, chain);
    persist(filename, bytes);
    return *trusted_->delegated(chain);
}

std::optional<TargetFile> Updater::find_target(const std::string& target_path) {
    if (!trusted_ || !trusted_->targets()) throw Error(ErrorKind::State, "refresh first");
    // Pre-order depth-first search (spec 5.7.x): a stack of delegation chains, children pushed in
    // reverse so they are visited in the delegator's order; a visited role name is never loaded
    // again (cycles), and at most max_delegations delegated roles are visited.
    std::vector<DelegationChain> to_visit{{"targets"}};
    std::set<std::string> visited;
    while (!to_visit.empty()) {
        DelegationChain chain = std::move(to_visit.back());
        to_visit.pop_back();
        const std::string role = chain.back();
        if (visited.count(role)) continue;
        if (visited.size() > config_.max_delegations) {
            LOG_WARN("target search for " << target_path << " stopped after "
                                          << config_.max_delegations << " delegated roles");
            break;
        }
        const TrustedTargets& t = chain.size() == 1 ? *trusted_->targets() : load_delegated(chain);
        if (auto it = t.meta.targets.find(target_path); it != t.meta.targets.end())
            return it->second;
        visited.insert(role);
        if (!t.meta.delegations) continue;
        std::vector<DelegationChain> children;
        for (const auto& step : t.meta.delegations->roles_for_target(target_path)) {
            DelegationChain child = chain;
            child.push_back(step.name);
            children.push_back(std::move(child));
            if (step.terminating) {
                to_visit.clear(); // nothing outside a terminating delegation is consulted
                break;
            }
        }
        to_visit.insert(to_visit.end(), std::make_move_iterator(children.rbegin()),
                        std::make_move_iterator(children.rend()));
    }
    return std::nullopt;
}

std::vector<TargetFile> Updater::all_targets() {
    if (!trusted_ || !trusted_->targets()) throw Error(ErrorKind::State, "refresh first");
    std::vector<TargetFile> out;
    std::set<std::string> seen;
    for (const auto& [path, target] : trusted_->targets()->meta.targets) {
        out.push_back(target);
        seen.insert(path);
    }
    // Every delegated role reachable from targets (bounded), but a delegated target counts only
    // where the delegation search for its path resolves to the same file.
    std::vector<DelegationChain> roles;
    auto add_children = [&](const TrustedTargets& t, const DelegationChain& chain) {
        if (!t.meta.delegations) return;
        const Delegations& d = *t.meta.delegations;
        auto add = [&](const std::string& name) {
            DelegationChain child = chain;
            child.push_back(name);
            roles.push_back(std::move(child));
        };
        for (const auto& r : d.roles)
            add(r.name);
        if (!d.succinct_roles) return;
        for (const auto& entry : trusted_->snapshot()->meta.meta) {
            const std::string& file = entry.first;
            if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
            std::string name = file.substr(0, file.size() - 5);
            if (d.succinct_roles->is_delegated_role(name)) add(name);
        }
    };
    add_children(*trusted_->targets(), {"targets"});
    std::set<std::string> visited{"targets"};
    for (size_t i = 0; i < roles.size() && visited.size() <= config_.max_delegations; ++i) {
        const DelegationChain chain = roles[i];
        if (!visited.insert(chain.back()).second) continue;
        const TrustedTargets& t = load_delegated(chain);
        for (const auto& [path, target] : t.meta.targets) {
            if (seen.count(path)) continue;
            auto resolved = find_target(path);
            if (resolved && resolved->hashes == target.hashes &&
                resolved->length == target.length) {
                out.push_back(*resolved);
                seen.insert(path);
            }
        }
        add_children(t, chain);
    }
    return out;
}

std::string Updater::target_url(const TargetFile& target) const {
    std::string prefix;
    if (trusted_->root().meta.consistent_snapshot && config_.prefix_targets_with_hash) {
        auto h = target.hashes.find("sha256");
        if (h == target.hashes.end()) h = target.hashes.begin();
        prefix = h->second;
    }
    return tuf::target_url(config_.targets_base_url, target.path, prefix);
}

static bool file_matches_target(const std::string& path, const TargetFile& target) {
    if (!file_exists(path) || file_size(path) != target.length) return false;
    try {
        std::string data = read_file(path, target.length);
        verify_length_and_hashes(data, target.length, target.hashes, target.path);
        return true;
    } catch (const Error&) {
        return false;
    }
}

void Updater::download_target(const TargetFile& target, const std::string& dest_path) {
    if (file_matches_target(dest_path, target)) return;
    // Downloaded next to the metadata, verified, then moved into place: the destination folder
    // only ever holds verified, complete artifacts.
    const std::string tmp = join_path(config_.metadata_dir, ".target-download.partial");
    remove_file_durable(tmp);
    try {
        fetcher_.fetch_to_file(target_url(target), tmp, target.length, false, nullptr);
        std::string data = read_file(tmp, target.length);
        verify_length_and_hashes(data, target.length, target.hashes, "target " + target.path);
        fsync_path(tmp);
        if (::rename(tmp.c_str(), dest_path.c_str()) != 0) {
            write_file_atomic(dest_path, data); // different filesystem
            remove_file_durable(tmp);
        } else {
            fsync_directory(parent_directory(dest_path));
        }
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

} // namespace ota::tuf
