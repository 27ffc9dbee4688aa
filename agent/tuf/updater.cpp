#include "agent/tuf/updater.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
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
    trusted_ = std::make_unique<TrustedSet>(load_local("root.json"), now);
    load_root();
    update_timestamp();
    update_snapshot();
    update_targets();
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

const TrustedTargets& Updater::load_delegated(const std::string& role,
                                              const std::string& delegator) {
    if (const TrustedTargets* t = trusted_->delegated(role)) return *t;
    const std::string filename = role_filename(role);
    try {
        // A cached copy is verified again, against its current delegator.
        trusted_->update_delegated_targets(load_local(filename), role, delegator);
        return *trusted_->delegated(role);
    } catch (const Error& e) {
        LOG_DEBUG("local " << filename << " not used: " << e.what());
    }
    auto it = trusted_->snapshot()->meta.meta.find(role + ".json");
    if (it == trusted_->snapshot()->meta.meta.end())
        throw Error(ErrorKind::Malformed, "delegated role " + role + " is not listed in snapshot");
    uint64_t max = it->second.length.value_or(config_.max_targets_length);
    std::string bytes = fetcher_.fetch(role_url(role, it->second.version), max);
    trusted_->update_delegated_targets(bytes, role, delegator);
    persist(filename, bytes);
    return *trusted_->delegated(role);
}

std::optional<TargetFile> Updater::find_target(const std::string& target_path) {
    if (!trusted_ || !trusted_->targets()) throw Error(ErrorKind::State, "refresh first");
    // Pre-order depth-first search (spec 5.7.x): a stack of (role, delegator), children pushed in
    // reverse so they are visited in the delegator's order; a visited role is never loaded again
    // (cycles), and at most max_delegations delegated roles are visited.
    std::vector<std::pair<std::string, std::string>> to_visit{{"targets", "root"}};
    std::set<std::string> visited;
    while (!to_visit.empty()) {
        auto [role, delegator] = to_visit.back();
        to_visit.pop_back();
        if (visited.count(role)) continue;
        if (visited.size() > config_.max_delegations) {
            LOG_WARN("target search for " << target_path << " stopped after "
                                          << config_.max_delegations << " delegated roles");
            break;
        }
        const TrustedTargets& t =
            role == "targets" ? *trusted_->targets() : load_delegated(role, delegator);
        if (auto it = t.meta.targets.find(target_path); it != t.meta.targets.end())
            return it->second;
        visited.insert(role);
        if (!t.meta.delegations) continue;
        std::vector<std::pair<std::string, std::string>> children;
        for (const auto& step : t.meta.delegations->roles_for_target(target_path)) {
            children.emplace_back(step.name, role);
            if (step.terminating) {
                to_visit.clear(); // nothing outside a terminating delegation is consulted
                break;
            }
        }
        to_visit.insert(to_visit.end(), children.rbegin(), children.rend());
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
    std::vector<std::pair<std::string, std::string>> roles;
    auto add_children = [&](const TrustedTargets& t, const std::string& role) {
        if (!t.meta.delegations) return;
        const Delegations& d = *t.meta.delegations;
        for (const auto& r : d.roles)
            roles.emplace_back(r.name, role);
        if (!d.succinct_roles) return;
        for (const auto& entry : trusted_->snapshot()->meta.meta) {
            const std::string& file = entry.first;
            if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
            std::string name = file.substr(0, file.size() - 5);
            if (d.succinct_roles->is_delegated_role(name)) roles.emplace_back(name, role);
        }
    };
    add_children(*trusted_->targets(), "targets");
    std::set<std::string> visited{"targets"};
    for (size_t i = 0; i < roles.size() && visited.size() <= config_.max_delegations; ++i) {
        auto [role, delegator] = roles[i];
        if (!visited.insert(role).second) continue;
        const TrustedTargets& t = load_delegated(role, delegator);
        for (const auto& [path, target] : t.meta.targets) {
            if (seen.count(path)) continue;
            auto resolved = find_target(path);
            if (resolved && resolved->hashes == target.hashes &&
                resolved->length == target.length) {
                out.push_back(*resolved);
                seen.insert(path);
            }
        }
        add_children(t, role);
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
