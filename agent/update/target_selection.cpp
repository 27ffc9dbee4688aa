#include "agent/update/target_selection.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/net/curl_fetcher.h"

#include <algorithm>

namespace ota::update {

SignedTargets SignedTargets::refresh(const StepContext& ctx) {
    const AgentConfig& config = ctx.config;
    if (!file_exists(join_path(config.metadata_dir(), "root.json")))
        tuf::Updater::initialize(config.metadata_dir(), read_file(config.trusted_root, 1 << 20));
    ctx.emit("check", "refreshing signed metadata from " + net::redact_url(config.metadata_url));
    tuf::UpdaterConfig uc;
    uc.metadata_dir = config.metadata_dir();
    uc.metadata_base_url = config.metadata_url;
    uc.targets_base_url = config.targets_url;
    uc.max_root_length = config.max_root_length;
    uc.max_timestamp_length = config.max_timestamp_length;
    Clock* clock = ctx.platform.clock.get();
    SignedTargets t;
    t.owned_ = std::make_unique<tuf::Updater>(uc, ctx.fetcher, [clock] { return clock->now(); });
    t.updater_ = t.owned_.get();
    t.updater_->refresh();
    ctx.emit("check", "metadata verified: targets version " +
                          std::to_string(t.updater_->trusted().targets()->env.version));
    t.targets_ = t.updater_->all_targets();
    return t;
}

SignedTargets SignedTargets::verified(tuf::Updater* updater, std::vector<tuf::TargetFile> targets) {
    if (!updater && !targets.empty())
        throw Error(ErrorKind::State, "verified targets need the client that verified them");
    SignedTargets t;
    t.updater_ = updater;
    t.targets_ = std::move(targets);
    return t;
}

std::string SignedTargets::url(const tuf::TargetFile& target) const {
    if (!updater_) throw Error(ErrorKind::State, target.path + " has no repository to come from");
    return updater_->target_url(target);
}

namespace {

// The newest (or exactly `want`) version of one component for this hardware: a delta from the
// installed version when there is one, else the full bundle.
std::optional<Selection> select_component(const std::vector<tuf::TargetFile>& targets,
                                          const AgentConfig& config, const std::string& component,
                                          const std::string& kind, uint64_t installed,
                                          const std::set<uint64_t>& failed,
                                          std::optional<uint64_t> want,
                                          std::set<std::string>* other_hardware) {
    std::vector<BundleTarget> candidates;
    for (const auto& target : targets) {
        if (is_release_target(target)) continue;
        BundleTarget t;
        try {
            t = parse_bundle_target(target);
        } catch (const Error& e) {
            LOG_WARN("ignoring " << target.path << ": " << e.what());
            continue;
        }
        if (t.kind != kind || t.component != component) continue;
        if (want ? t.version != *want : (t.version <= installed || failed.count(t.version)))
            continue;
        if (t.hardware_id != config.hardware_id) {
            if (other_hardware) other_hardware->insert(t.hardware_id);
            continue;
        }
        if (t.target.length > config.max_bundle_length) {
            LOG_WARN("ignoring " << t.target.path << ": larger than limits.max_bundle_length");
            continue;
        }
        candidates.push_back(std::move(t));
    }
    if (candidates.empty()) return std::nullopt;
    uint64_t best = 0;
    for (const auto& c : candidates)
        best = std::max(best, c.version);
    Selection sel;
    std::optional<BundleTarget> delta;
    for (const auto& c : candidates) {
        if (c.version != best) continue;
        if (!c.delta_from_version)
            sel.full = c;
        else if (*c.delta_from_version == installed)
            delta = c;
    }
    if (delta)
        sel.chosen = *delta;
    else if (sel.full)
        sel.chosen = *sel.full;
    else
        throw Error(ErrorKind::NotFound, component + " version " + std::to_string(best) +
                                             " has no full bundle and no delta from version " +
                                             std::to_string(installed));
    return sel;
}

std::string describe(const Selection& sel, uint64_t installed) {
    return sel.chosen.component + " " + std::to_string(installed) + " -> " +
           std::to_string(sel.chosen.version) + " (" + sel.chosen.target.path + ", " +
           std::to_string(sel.chosen.target.length) + " bytes" +
           (sel.chosen.delta_from_version ? ", delta" : ", full image") + ")";
}

} // namespace

std::optional<Plan> select_plan(const StepContext& ctx, const SignedTargets& signed_targets,
                                const AgentState& state) {
    const AgentConfig& config = ctx.config;
    const std::vector<tuf::TargetFile>& targets = signed_targets.all();
    auto failed_of = [&](const std::string& component) -> const std::set<uint64_t>& {
        static const std::set<uint64_t> none;
        auto it = state.failed_versions.find(component);
        return it == state.failed_versions.end() ? none : it->second;
    };

    // A release for this hardware above the installed one wins over standalone targets.
    std::optional<ReleaseTarget> release;
    const uint64_t installed_release = state.release ? state.release->version : 0;
    const auto& failed_releases = failed_of("release");
    for (const auto& target : targets) {
        if (!is_release_target(target)) continue;
        ReleaseTarget r;
        try {
            r = parse_release_target(target);
        } catch (const Error& e) {
            LOG_WARN("ignoring " << target.path << ": " << e.what());
            continue;
        }
        if (r.hardware_id != config.hardware_id || r.version <= installed_release ||
            failed_releases.count(r.version))
            continue;
        if (!release || r.version > release->version) release = r;
    }
    if (release) {
        Plan plan;
        plan.release = ReleaseRef{release->id, release->version};
        std::optional<Selection> firmware;
        std::string summary;
        for (const auto& [component, version] : release->components) {
            const bool is_firmware = component == config.component;
            if (!is_firmware && !ctx.store)
                throw Error(ErrorKind::Config, "release " + release->id + " contains model " +
                                                   component +
                                                   " but no models.store is configured");
            const uint64_t installed = ctx.component_version(state, component);
            if (version == installed) continue;
            if (version < installed)
                throw Error(ErrorKind::Rollback, "release " + release->id + " lists " + component +
                                                     " version " + std::to_string(version) +
                                                     ", below the installed " +
                                                     std::to_string(installed));
            auto sel =
                select_component(targets, config, component, is_firmware ? "firmware" : "model",
                                 installed, {}, version, nullptr);
            if (!sel)
                throw Error(ErrorKind::NotFound, "release " + release->id + " lists " + component +
                                                     " version " + std::to_string(version) +
                                                     " but no bundle of it exists for " +
                                                     config.hardware_id);
            summary += "\n  " + describe(*sel, installed);
            if (is_firmware)
                firmware = sel;
            else
                plan.items.push_back(*sel);
        }
        if (firmware) plan.items.push_back(*firmware);
        ctx.emit("check", "release " + release->id + " (release version " +
                              std::to_string(release->version) +
                              "): " + std::to_string(plan.items.size()) +
                              " component(s) to update" + summary);
        return plan;
    }

    Plan plan;
    std::set<std::string> names;
    if (ctx.store) {
        for (const auto& [name, settings] : config.models.models)
            names.insert(name);
        for (const auto& name : ctx.store->models())
            names.insert(name);
    }
    for (const auto& name : names) {
        const uint64_t installed = ctx.component_version(state, name);
        auto sel = select_component(targets, config, name, "model", installed, failed_of(name),
                                    std::nullopt, nullptr);
        if (!sel) continue;
        ctx.emit("check", "update available: " + describe(*sel, installed));
        plan.items.push_back(*sel);
    }
    const uint64_t installed = ctx.installed_version(state);
    std::set<std::string> other_hardware;
    auto fw = select_component(targets, config, config.component, "firmware", installed,
                               failed_of(config.component), std::nullopt, &other_hardware);
    if (fw) {
        ctx.emit("check", "update available: " + describe(*fw, installed));
        plan.items.push_back(*fw);
    }
    if (plan.items.empty()) {
        if (!other_hardware.empty()) {
            std::string list;
            for (const auto& h : other_hardware)
                list += (list.empty() ? "" : ", ") + h;
            throw Error(ErrorKind::WrongHardware, "newer " + config.component +
                                                      " versions exist only for other hardware (" +
                                                      list + "), none for " + config.hardware_id);
        }
        ctx.emit("check", "up to date (installed version " + std::to_string(installed) + ")");
        return std::nullopt;
    }
    return plan;
}

} // namespace ota::update
