#include "agent/update/engine.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/models/model_check.h"
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/root_history.h"
#include "agent/update/boot_check.h"
#include "agent/update/release_transaction.h"
#include "agent/update/slot_switch.h"
#include "agent/update/staging.h"
#include "agent/update/storage_space.h"

#include <map>

namespace ota::update {

Engine::Engine(AgentConfig config, Platform& platform, net::Fetcher& fetcher, EventSink events)
    : config_(std::move(config)), platform_(platform), fetcher_(fetcher),
      store_(config_.models.store.empty()
                 ? nullptr
                 : std::make_unique<models::ModelStore>(config_.models.store)),
      ctx_{config_, platform_, fetcher_, store_.get(), std::move(events), {}, {}, {}} {}

SignedTargets Engine::refresh_targets() {
    return targets_source_ ? targets_source_() : SignedTargets::refresh(ctx_);
}

std::optional<Plan> Engine::check_plan() {
    SignedTargets targets = refresh_targets();
    return select_plan(ctx_, targets, ctx_.load());
}

bool Engine::update(const UpdateOptions& options) {
    AgentState state = ctx_.load();
    const std::string booted = platform_.boot->booted_slot();
    inactive_slot(ctx_, booted); // the booted slot must be configured
    if (state.pending && state.pending->stage == PendingStage::Switched) {
        // Installed and switched to: what is left is the reboot (or, after it, boot-check).
        if (switch_progress(ctx_, state, booted) == SwitchProgress::AwaitingReboot) {
            resume_switch(ctx_, state, options);
            return true;
        }
        throw Error(ErrorKind::State, "version " + std::to_string(state.pending->version) +
                                          " is installed in slot " + state.pending->slot +
                                          " and the ECU rebooted; run boot-check first");
    }
    if (state.pending && booted == state.pending->slot)
        throw Error(ErrorKind::State, "slot " + booted +
                                          " runs although its install never finished; "
                                          "boot-check sends the ECU back to slot " +
                                          state.pending->from_slot + " first");

    SignedTargets targets = refresh_targets();
    state = ctx_.load();
    std::optional<Plan> plan = select_plan(ctx_, targets, state);
    if (!plan) {
        ctx_.record(state, "up-to-date", config_.component, ctx_.installed_version(state), "");
        ctx_.save(state);
        return false;
    }
    return run_transaction(ctx_, targets, *plan, state, {}, options);
}

std::string Engine::boot_check(const UpdateOptions& options) {
    return update::boot_check(ctx_, options);
}

std::string Engine::mark_good() {
    UpdateOptions o;
    o.skip_health = true;
    o.reboot = false;
    return update::boot_check(ctx_, o);
}

std::string Engine::rollback(const std::string& component, const UpdateOptions& options) {
    if (!component.empty() && component != config_.component)
        return rollback_model(ctx_, component);
    return rollback_firmware(ctx_, options);
}

void Engine::record_failure(const std::string& message) {
    AgentState state = ctx_.load();
    ctx_.record(state, "failed", config_.component, ctx_.installed_version(state), message);
    ctx_.save(state);
}

bool Engine::install(const std::string& file_or_url, const UpdateOptions& options) {
    AgentState state = ctx_.load();
    if (state.pending && state.pending->stage == PendingStage::Switched)
        throw Error(ErrorKind::State, "version " + std::to_string(state.pending->version) +
                                          " waits for a reboot; run boot-check after it");
    SignedTargets targets = refresh_targets();
    std::string path = file_or_url;
    if (file_or_url.find("://") != std::string::npos) {
        const std::string dir = ctx_.download_dir();
        make_directories(dir);
        path = dir + "/manual.bundle";
        ctx_.emit("download", "downloading " + net::redact_url(file_or_url));
        fetcher_.fetch_to_file(file_or_url, path, config_.max_bundle_length, false, {});
    } else if (!file_exists(file_or_url)) {
        throw Error(ErrorKind::NotFound, "no such bundle file: " + file_or_url);
    }
    RemoveUnlessKept downloaded(path != file_or_url ? path : ""); // a refused copy goes
    const uint64_t size = file_size(path);
    // The file's hash with each algorithm a candidate target uses, computed once.
    std::map<HashAlgorithm, std::string> digests;
    auto digest = [&](HashAlgorithm a) -> const std::string& {
        auto it = digests.find(a);
        if (it == digests.end()) it = digests.emplace(a, file_hash_hex(path, a)).first;
        return it->second;
    };
    std::optional<BundleTarget> found;
    for (const auto& target : targets.all()) {
        if (target.length != size) continue;
        std::optional<TargetHash> h;
        try {
            h = strongest_hash(target);
        } catch (const Error&) {
            continue; // no hash to match it by
        }
        if (!equal_constant_time(h->hex, digest(h->algorithm))) continue;
        found = parse_bundle_target(target);
        break;
    }
    if (!found)
        throw Error(
            ErrorKind::BadSignature,
            file_or_url + " (" + std::to_string(size) + " bytes, SHA-256 " +
                digest(HashAlgorithm::Sha256).substr(0, 16) +
                "...) is not a target of the signed metadata: refusing to install unsigned code");
    const BundleTarget& t = *found;
    ctx_.emit("verify", file_or_url + " is the signed target " + t.target.path);
    if (t.hardware_id != config_.hardware_id)
        throw Error(ErrorKind::WrongHardware, t.target.path + " is for hardware " + t.hardware_id +
                                                  ", this ECU is " + config_.hardware_id);
    if (t.kind == "firmware" && t.component != config_.component)
        throw Error(ErrorKind::Config, t.target.path + " is for component " + t.component +
                                           ", this ECU's slots hold " + config_.component);
    const uint64_t installed = ctx_.component_version(state, t.component);
    if (t.version <= installed)
        throw Error(ErrorKind::Rollback,
                    t.target.path + " has version " + std::to_string(t.version) +
                        ", not above the installed " + std::to_string(installed));
    if (t.delta_from_version && *t.delta_from_version != installed)
        throw Error(ErrorKind::SourceMismatch, t.target.path + " is a delta from version " +
                                                   std::to_string(*t.delta_from_version) +
                                                   ", the installed version is " +
                                                   std::to_string(installed));
    Plan plan;
    plan.items.push_back(Selection{t, std::nullopt});
    downloaded.keep();
    return run_transaction(ctx_, targets, plan, state, {path}, options);
}

Json Engine::status() {
    AgentState state = ctx_.load();
    Json j = state.to_json();
    j["hardware_id"] = config_.hardware_id;
    j["component"] = config_.component;
    j["installed_version"] = ctx_.installed_version(state);
    j["booted_slot"] = platform_.boot->booted_slot();
    hal::BootState bs = platform_.boot->state();
    j["boot_order"] = bs.order;
    j["tries_left"] = bs.tries_left;
    Json models = Json::object();
    if (store_) {
        for (const auto& name : store_->models()) {
            auto opt = [](std::optional<uint64_t> v) { return v ? Json(*v) : Json(nullptr); };
            models[name] = Json{{"current", opt(store_->current_version(name))},
                                {"previous", opt(store_->previous_version(name))},
                                {"trial", opt(store_->trial_version(name))}};
        }
        for (const auto& c : models::check_models(*store_, false)) {
            models[c.name]["intact"] = !c.problem;
            if (c.problem) models[c.name]["problem"] = *c.problem;
        }
    }
    j["models"] = models;
    j["trusted_roots"] = tuf::root_history_json(config_.metadata_dir());
    return j;
}

} // namespace ota::update
