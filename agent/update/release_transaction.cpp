#include "agent/update/release_transaction.h"

#include "agent/common/error.h"
#include "agent/update/download.h"
#include "agent/update/slot_switch.h"
#include "agent/update/staging.h"
#include "agent/update/storage_space.h"

#include <algorithm>
#include <set>
#include <unistd.h>

namespace ota::update {

namespace {

bool model_healthy(const StepContext& ctx, const std::string& name, uint64_t version,
                   std::string* output) {
    const auto& models = ctx.config.models;
    auto it = models.models.find(name);
    if (it == models.models.end() || it->second.health_check.empty()) return true;
    ctx.emit("health", "running the health check of model " + name);
    return ctx.platform.hooks->run(it->second.health_check, models.health_timeout_s, output,
                                   {"OTA_MODEL_NAME=" + name,
                                    "OTA_MODEL_VERSION=" + std::to_string(version),
                                    "OTA_MODEL_DIR=" + ctx.store->current_path(name)});
}

} // namespace

bool run_transaction(const StepContext& ctx, const SignedTargets& targets, Plan& plan,
                     AgentState& state, std::vector<std::string> paths,
                     const UpdateOptions& options) {
    const AgentConfig& config = ctx.config;
    models::ModelStore* store = ctx.store;
    const std::string what = plan.release ? "release " + plan.release->id : "update";
    if (plan.items.empty()) {
        // Every component of the release is already installed.
        if (plan.release) state.release = plan.release;
        ctx.record(state, "up-to-date", plan.release ? "release" : config.component,
                   plan.release ? plan.release->version : ctx.installed_version(state), what);
        ctx.save(state);
        return false;
    }
    // 1. Download and verify everything (allowed while driving), if it fits; or, streaming, keep
    // no copy: each bundle is read from the network as it is written, in step 3.
    const size_t local_files = paths.size();
    const bool stream = config.download_mode == DownloadMode::Stream && ctx.fetcher.can_stream();
    require_free_space(
        plan_space_needs(plan, ctx.download_dir(), stream ? plan.items.size() : local_files, store),
        config.storage_reserve_bytes);
    std::set<std::string> keep;
    if (stream) {
        remove_other_downloads(ctx, keep);
    } else {
        for (const auto& item : plan.items)
            keep.insert(bundle_file_name(item.chosen));
        for (size_t i = local_files; i < plan.items.size(); ++i)
            paths.push_back(download_bundle(ctx, targets, plan.items[i].chosen, keep));
    }
    auto stage_item = [&](size_t i, const BundleTarget& chosen) {
        if (i < paths.size())
            stage_bundle(ctx, chosen, paths[i], state);
        else
            stage_bundle_streamed(ctx, chosen, targets.url(chosen.target), state);
    };

    // 2. Writing and activating wait for the vehicle policy.
    ctx.wait_for("install");

    // 3. Write every component without activating any (a failure here activates nothing).
    std::vector<BundleTarget> staged;
    auto discard_models = [&]() {
        for (const auto& t : staged)
            if (t.kind == "model") store->discard_staged(t.component, t.version);
    };
    for (size_t i = 0; i < plan.items.size(); ++i) {
        BundleTarget chosen = plan.items[i].chosen;
        try {
            try {
                stage_item(i, chosen);
            } catch (const Error& e) {
                const auto& full = plan.items[i].full;
                if (!chosen.delta_from_version || !full ||
                    (e.kind() != ErrorKind::SourceMismatch && e.kind() != ErrorKind::NotFound))
                    throw;
                // The installed image is not what the delta was made against: use the full bundle.
                ctx.emit("check", std::string("delta not applicable (") + e.what() +
                                      "); using the full bundle");
                chosen = *full;
                if (i < paths.size()) {
                    keep.insert(bundle_file_name(chosen));
                    paths[i] = download_bundle(ctx, targets, chosen, keep);
                }
                stage_item(i, chosen);
            }
        } catch (const Error& e) {
            discard_models();
            if (plan.items.size() > 1) {
                ctx.record(state, "failed", chosen.component, chosen.version,
                           what + " not activated: " + chosen.component + " failed: " + e.what());
                ctx.save(state);
                ctx.emit("rollback", what + ": " + chosen.component + " failed (" + e.what() +
                                         "); nothing was activated");
            }
            throw;
        }
        plan.items[i].chosen = chosen;
        staged.push_back(chosen);
        // Our own downloads go; a file the user handed to `install` stays where it is.
        if (i < paths.size() && paths[i].rfind(ctx.download_dir() + "/", 0) == 0)
            ::unlink(paths[i].c_str());
    }

    // 3b. The other ECUs of a multi-ECU update reach the same point (or the update stops here).
    if (ctx.before_activate) {
        try {
            ctx.before_activate();
        } catch (const std::exception& e) {
            discard_models();
            ctx.record(state, "failed", staged.back().component, staged.back().version,
                       what + " not activated: " + e.what());
            ctx.save(state);
            ctx.emit("rollback", what + " not activated: " + e.what());
            throw;
        }
    }

    // 4. Activate the models one by one, each with its health check; any failure rolls back all.
    std::vector<PendingModel> activated;
    const BundleTarget* firmware = nullptr;
    for (const auto& t : staged) {
        if (t.kind != "model") {
            firmware = &t;
            continue;
        }
        store->activate(t.component, t.version);
        activated.push_back(PendingModel{t.component, t.version});
        ctx.emit("activate", "model " + t.component + " version " + std::to_string(t.version) +
                                 " is now current");
        std::string out;
        if (options.skip_health || model_healthy(ctx, t.component, t.version, &out)) continue;
        for (auto it = activated.rbegin(); it != activated.rend(); ++it) {
            store->rollback(it->name);
            ctx.emit("rollback", "model " + it->name + " restored to version " +
                                     std::to_string(store->current_version(it->name).value_or(0)));
        }
        discard_models();
        state.failed_versions[t.component].insert(t.version);
        if (plan.release) state.failed_versions["release"].insert(plan.release->version);
        if (firmware || std::any_of(staged.begin(), staged.end(),
                                    [](const BundleTarget& s) { return s.kind == "firmware"; }))
            state.pending.reset(); // its slot stays marked bad: never switched to
        const std::string msg = "model " + t.component + " version " + std::to_string(t.version) +
                                " failed its health check: " + out;
        ctx.record(state, "rolled-back", t.component, t.version, what + " rolled back: " + msg);
        ctx.save(state);
        throw Error(ErrorKind::State, what + " rolled back: " + msg);
    }

    if (!firmware) {
        for (const auto& m : activated) {
            store->commit(m.name);
            auto mf = store->manifest(m.name, m.version);
            state.installed[m.name] = InstalledComponent{m.version, "", mf ? mf->image_sha256 : ""};
            ctx.emit("commit",
                     "model " + m.name + " version " + std::to_string(m.version) + " committed");
        }
        if (plan.release) state.release = plan.release;
        ctx.record(state, "committed", plan.release ? "release" : activated.front().name,
                   plan.release ? plan.release->version : activated.front().version,
                   what + " committed without a reboot");
        ctx.save(state);
        return true;
    }

    // 5. The firmware goes last: switch, then the models commit or roll back with its boot.
    switch_slot(ctx, state, *firmware, activated, plan.release, options);
    return true;
}

} // namespace ota::update
