#include "agent/update/engine.h"

#include "agent/bundle/installer.h"
#include "agent/bundle/journal.h"
#include "agent/bundle/reader.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"
#include "agent/common/log.h"
#include "agent/delta/diff.h"
#include "agent/models/model_check.h"
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/updater.h"
#include "agent/update/storage_space.h"
#include "hal/block_device.h"

#include <algorithm>
#include <ctime>
#include <dirent.h>
#include <set>
#include <unistd.h>

namespace ota::update {

namespace {

const Json& field(const Json& obj, const char* name, const std::string& what) {
    auto it = obj.find(name);
    if (it == obj.end())
        throw Error(ErrorKind::Malformed, what + ": custom field \"" + name + "\" is missing");
    return *it;
}

std::string hex_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_string() || v.get<std::string>().size() != 64 || !is_hex(v.get<std::string>()))
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a SHA-256 in hex");
    return v.get<std::string>();
}

uint64_t uint_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_number_unsigned())
        throw Error(ErrorKind::Malformed,
                    what + ": \"" + name + "\" must be a non-negative integer");
    return v.get<uint64_t>();
}

std::string string_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_string())
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a string");
    return v.get<std::string>();
}

std::string other_slot(const std::map<std::string, std::string>& slots, const std::string& active) {
    for (const auto& [name, dev] : slots)
        if (name != active) return name;
    throw Error(ErrorKind::Config, "no inactive slot");
}

} // namespace

BundleTarget parse_bundle_target(const tuf::TargetFile& target) {
    const std::string what = "target " + target.path;
    if (!target.custom.is_object()) throw Error(ErrorKind::Malformed, what + ": no custom fields");
    const Json& c = target.custom;
    BundleTarget t;
    t.target = target;
    t.hardware_id = string_field(c, "hardware_id", what);
    t.component = c.contains("component") ? string_field(c, "component", what) : "rootfs";
    t.kind = c.contains("kind") ? string_field(c, "kind", what) : "firmware";
    t.version = uint_field(c, "version", what);
    const Json& image = field(c, "image", what);
    t.image_sha256 = hex_field(image, "sha256", what + " image");
    t.image_length = uint_field(image, "length", what + " image");
    const Json& bundle = field(c, "bundle", what);
    t.header_sha256 = hex_field(bundle, "header_sha256", what + " bundle");
    t.header_length = uint_field(bundle, "header_length", what + " bundle");
    if (c.contains("delta_from") && !c["delta_from"].is_null()) {
        t.delta_from_version = uint_field(c["delta_from"], "version", what + " delta_from");
        t.delta_from_sha256 = hex_field(c["delta_from"], "sha256", what + " delta_from");
    }
    return t;
}

bool is_release_target(const tuf::TargetFile& target) {
    return target.custom.is_object() && target.custom.contains("kind") &&
           target.custom["kind"] == "release";
}

ReleaseTarget parse_release_target(const tuf::TargetFile& target) {
    const std::string what = "release target " + target.path;
    if (!is_release_target(target))
        throw Error(ErrorKind::Malformed, what + ": kind is not \"release\"");
    const Json& c = target.custom;
    ReleaseTarget r;
    r.target = target;
    r.hardware_id = string_field(c, "hardware_id", what);
    r.version = uint_field(c, "version", what);
    const Json& rel = field(c, "release", what);
    r.id = string_field(rel, "id", what + " release");
    if (r.id.empty() || r.id.size() > 128)
        throw Error(ErrorKind::Malformed, what + ": bad release id");
    const Json& comps = field(rel, "components", what + " release");
    if (!comps.is_array() || comps.empty() || comps.size() > 64)
        throw Error(ErrorKind::Malformed, what + ": \"components\" must list 1-64 components");
    std::set<std::string> seen;
    for (const auto& e : comps) {
        if (!e.is_object())
            throw Error(ErrorKind::Malformed, what + ": component entries must be objects");
        std::string name = string_field(e, "component", what + " component");
        if (!seen.insert(name).second)
            throw Error(ErrorKind::Malformed, what + ": component " + name + " listed twice");
        r.components.emplace_back(name, uint_field(e, "version", what + " component " + name));
    }
    return r;
}

Engine::Engine(AgentConfig config, Platform& platform, net::Fetcher& fetcher, EventSink events)
    : config_(std::move(config)), platform_(platform), fetcher_(fetcher),
      events_(std::move(events)) {
    if (!config_.models.store.empty())
        store_ = std::make_unique<models::ModelStore>(config_.models.store);
}

uint64_t Engine::component_version(const AgentState& state, const std::string& component) const {
    if (component == config_.component) return installed_version(state);
    if (store_) return store_->current_version(component).value_or(0);
    auto it = state.installed.find(component);
    return it == state.installed.end() ? 0 : it->second.version;
}

void Engine::gate(const std::string& phase) {
    if (gate_) gate_(phase);
}

void Engine::emit(const std::string& step, const std::string& message, uint64_t done,
                  uint64_t total) {
    if (events_) events_(Event{step, message, done, total});
}

void Engine::record(AgentState& state, const std::string& outcome, const std::string& component,
                    uint64_t version, const std::string& message) {
    state.last_result =
        LastResult{outcome, component, version, message, static_cast<int64_t>(::time(nullptr))};
}

uint64_t Engine::installed_version(const AgentState& state) const {
    auto it = state.installed.find(config_.component);
    return it == state.installed.end() ? config_.installed_version : it->second.version;
}

void Engine::ensure_trusted_root() {
    const std::string root = join_path(config_.metadata_dir(), "root.json");
    if (file_exists(root)) return;
    // First start: the root shipped with the image becomes the trusted root.
    tuf::Updater::initialize(config_.metadata_dir(), read_file(config_.trusted_root, 1 << 20));
}

std::vector<tuf::TargetFile> Engine::refresh_targets() {
    ensure_trusted_root();
    emit("check", "refreshing signed metadata from " + net::redact_url(config_.metadata_url));
    tuf::UpdaterConfig uc;
    uc.metadata_dir = config_.metadata_dir();
    uc.metadata_base_url = config_.metadata_url;
    uc.targets_base_url = config_.targets_url;
    uc.max_root_length = config_.max_root_length;
    uc.max_timestamp_length = config_.max_timestamp_length;
    tuf::Updater updater(uc, fetcher_);
    updater.refresh();
    emit("check", "metadata verified: targets version " +
                      std::to_string(updater.trusted().targets()->env.version));
    return updater.all_targets();
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

std::optional<Selection> Engine::check() {
    auto targets = refresh_targets();
    AgentState state = load_state(config_.state_dir);
    const uint64_t installed = installed_version(state);
    std::set<std::string> other_hardware;
    auto sel =
        select_component(targets, config_, config_.component, "firmware", installed,
                         state.failed_versions[config_.component], std::nullopt, &other_hardware);
    if (!sel) {
        if (!other_hardware.empty()) {
            std::string list;
            for (const auto& h : other_hardware)
                list += (list.empty() ? "" : ", ") + h;
            throw Error(ErrorKind::WrongHardware, "newer " + config_.component +
                                                      " versions exist only for other hardware (" +
                                                      list + "), none for " + config_.hardware_id);
        }
        emit("check", "up to date (installed version " + std::to_string(installed) + ")");
        return std::nullopt;
    }
    emit("check", "update available: " + describe(*sel, installed));
    return sel;
}

std::optional<Plan> Engine::check_plan() {
    auto targets = refresh_targets();
    AgentState state = load_state(config_.state_dir);

    // A release for this hardware above the installed one wins over standalone targets.
    std::optional<ReleaseTarget> release;
    const uint64_t installed_release = state.release ? state.release->version : 0;
    const auto& failed_releases = state.failed_versions["release"];
    for (const auto& target : targets) {
        if (!is_release_target(target)) continue;
        ReleaseTarget r;
        try {
            r = parse_release_target(target);
        } catch (const Error& e) {
            LOG_WARN("ignoring " << target.path << ": " << e.what());
            continue;
        }
        if (r.hardware_id != config_.hardware_id || r.version <= installed_release ||
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
            const bool is_firmware = component == config_.component;
            if (!is_firmware && !store_)
                throw Error(ErrorKind::Config, "release " + release->id + " contains model " +
                                                   component +
                                                   " but no models.store is configured");
            const uint64_t installed = component_version(state, component);
            if (version == installed) continue;
            if (version < installed)
                throw Error(ErrorKind::Rollback, "release " + release->id + " lists " + component +
                                                     " version " + std::to_string(version) +
                                                     ", below the installed " +
                                                     std::to_string(installed));
            auto sel =
                select_component(targets, config_, component, is_firmware ? "firmware" : "model",
                                 installed, {}, version, nullptr);
            if (!sel)
                throw Error(ErrorKind::NotFound, "release " + release->id + " lists " + component +
                                                     " version " + std::to_string(version) +
                                                     " but no bundle of it exists for " +
                                                     config_.hardware_id);
            summary += "\n  " + describe(*sel, installed);
            if (is_firmware)
                firmware = sel;
            else
                plan.items.push_back(*sel);
        }
        if (firmware) plan.items.push_back(*firmware);
        emit("check",
             "release " + release->id + " (release version " + std::to_string(release->version) +
                 "): " + std::to_string(plan.items.size()) + " component(s) to update" + summary);
        return plan;
    }

    Plan plan;
    std::set<std::string> names;
    if (store_) {
        for (const auto& [name, settings] : config_.models.models)
            names.insert(name);
        for (const auto& name : store_->models())
            names.insert(name);
    }
    for (const auto& name : names) {
        const uint64_t installed = component_version(state, name);
        auto sel = select_component(targets, config_, name, "model", installed,
                                    state.failed_versions[name], std::nullopt, nullptr);
        if (!sel) continue;
        emit("check", "update available: " + describe(*sel, installed));
        plan.items.push_back(*sel);
    }
    const uint64_t installed = installed_version(state);
    std::set<std::string> other_hardware;
    auto fw =
        select_component(targets, config_, config_.component, "firmware", installed,
                         state.failed_versions[config_.component], std::nullopt, &other_hardware);
    if (fw) {
        emit("check", "update available: " + describe(*fw, installed));
        plan.items.push_back(*fw);
    }
    if (plan.items.empty()) {
        if (!other_hardware.empty()) {
            std::string list;
            for (const auto& h : other_hardware)
                list += (list.empty() ? "" : ", ") + h;
            throw Error(ErrorKind::WrongHardware, "newer " + config_.component +
                                                      " versions exist only for other hardware (" +
                                                      list + "), none for " + config_.hardware_id);
        }
        emit("check", "up to date (installed version " + std::to_string(installed) + ")");
        return std::nullopt;
    }
    return plan;
}

std::string Engine::download(const BundleTarget& t, const std::set<std::string>& keep) {
    const std::string dir = config_.state_dir + "/download";
    make_directories(dir);
    const std::string name = t.target.hashes.at("sha256") + ".bundle";
    const std::string path = join_path(dir, name);
    // Only the bundles of the current attempt are kept: partial files of others are removed.
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != ".." && n != name && !keep.count(n))
                ::unlink(join_path(dir, n).c_str());
        }
        ::closedir(d);
    }
    // The URL of the target follows the trusted root's consistent_snapshot setting.
    tuf::Envelope root = tuf::parse_envelope(
        read_file(join_path(config_.metadata_dir(), "root.json"), 1 << 20), "root");
    std::string url_dir, base = t.target.path;
    if (auto pos = base.rfind('/'); pos != std::string::npos) {
        url_dir = base.substr(0, pos + 1);
        base = base.substr(pos + 1);
    }
    if (tuf::parse_root(root).consistent_snapshot) base = t.target.hashes.at("sha256") + "." + base;
    const std::string url = config_.targets_url + url_dir + base;

    uint64_t last_percent = 101;
    emit("download", "downloading " + t.target.path, 0, t.target.length);
    fetcher_.fetch_to_file(url, path, t.target.length, true, [&](uint64_t done, uint64_t total) {
        uint64_t percent = total ? done * 100 / total : 0;
        if (percent != last_percent && (percent % 10 == 0 || done == total)) {
            last_percent = percent;
            emit("download", std::to_string(percent) + "%", done, total);
        }
    });
    emit("verify", "checking the bundle against the signed target (length and SHA-256)");
    const uint64_t size = file_size(path);
    std::string digest = file_sha256_hex(path);
    if (size != t.target.length || !equal_constant_time(digest, t.target.hashes.at("sha256"))) {
        ::unlink(path.c_str());
        throw Error(ErrorKind::HashMismatch,
                    "downloaded bundle " + t.target.path + " (" + std::to_string(size) +
                        " bytes) does not match its signed length and SHA-256; discarded");
    }
    return path;
}

void Engine::install_firmware(const BundleTarget& t, const std::string& bundle_path,
                              AgentState& state, const std::string& active,
                              const std::string& target_slot) {
    // Nothing is written before the whole bundle matched its signed hash (download()), and the
    // header must match the hash named in the signed target before it is parsed.
    bundle::BundleFile bf = bundle::BundleFile::open(bundle_path, t.header_sha256, t.header_length);
    if (bf.header().target_sha256 != t.image_sha256 || bf.header().target_size != t.image_length)
        throw Error(ErrorKind::HashMismatch,
                    "bundle header describes a different image than the signed target");
    if (bf.header().payload_kind != "firmware")
        throw Error(ErrorKind::Malformed, "bundle " + t.target.path + " is not a firmware bundle");

    // A half-written slot must never be bootable: mark it bad before the first write.
    if (!state.pending || state.pending->slot != target_slot ||
        state.pending->stage != PendingStage::Installing) {
        platform_.boot->mark_bad(target_slot);
        PendingUpdate p;
        p.component = t.component;
        p.version = t.version;
        p.target_path = t.target.path;
        p.slot = target_slot;
        p.from_slot = active;
        p.image_sha256 = t.image_sha256;
        state.pending = p;
        save_state(config_.state_dir, state);
    } else if (state.pending->version != t.version ||
               state.pending->image_sha256 != t.image_sha256) {
        state.pending->component = t.component;
        state.pending->version = t.version;
        state.pending->target_path = t.target.path;
        state.pending->image_sha256 = t.image_sha256;
        save_state(config_.state_dir, state);
    }
    emit("write", "writing slot " + target_slot + " (" + platform_.slots.at(target_slot) + ")", 0,
         t.image_length);
    auto target = hal::open_block_device(platform_.slots.at(target_slot), true);
    std::unique_ptr<hal::BlockDevice> source;
    if (bf.header().source) source = hal::open_block_device(platform_.slots.at(active), false);
    bundle::InstallJournal journal(config_.state_dir + "/install-journal.json");
    bundle::InstallOptions options;
    options.apply_diff = ota::delta::apply_diff;
    uint64_t last_percent = 101;
    options.progress = [&](uint64_t done, uint64_t total) {
        uint64_t percent = total ? done * 100 / total : 100;
        if (percent != last_percent && (percent % 10 == 0 || done == total)) {
            last_percent = percent;
            emit("write", std::to_string(percent) + "%", done, total);
        }
    };
    auto result = bundle::install_bundle(bf, source.get(), *target, journal, options);
    if (result.skipped)
        emit("write", "resumed after " + std::to_string(result.skipped) + " completed operations");
    emit("verify", "slot " + target_slot + " verified end to end (SHA-256 " +
                       t.image_sha256.substr(0, 16) + "...)");
    journal.clear();
}

void Engine::stage(const BundleTarget& t, const std::string& bundle_path, AgentState& state) {
    if (t.kind == "firmware") {
        const std::string active = platform_.boot->booted_slot();
        if (!platform_.slots.count(active))
            throw Error(ErrorKind::Config, "booted slot \"" + active + "\" is not configured");
        install_firmware(t, bundle_path, state, active, other_slot(platform_.slots, active));
        return;
    }
    if (!store_)
        throw Error(ErrorKind::Config, "model " + t.component + ": no models.store configured");
    bundle::BundleFile bf = bundle::BundleFile::open(bundle_path, t.header_sha256, t.header_length);
    if (bf.header().target_sha256 != t.image_sha256 || bf.header().target_size != t.image_length)
        throw Error(ErrorKind::HashMismatch,
                    "bundle header describes a different image than the signed target");
    emit("write",
         "installing model " + t.component + " version " + std::to_string(t.version) + " into " +
             store_->version_dir(t.component, t.version),
         0, t.image_length);
    bundle::InstallJournal journal(config_.state_dir + "/model-journal-" + t.component + ".json");
    bundle::InstallOptions options;
    options.apply_diff = ota::delta::apply_diff;
    options.progress = [&](uint64_t done, uint64_t total) {
        if (done == total) emit("write", "100%", done, total);
    };
    store_->stage(t.component, t.version, bf, journal, options);
    emit("verify", "model " + t.component + " version " + std::to_string(t.version) +
                       " verified end to end (SHA-256 " + t.image_sha256.substr(0, 16) + "...)");
}

bool Engine::model_healthy(const std::string& name, uint64_t version, std::string* output) {
    auto it = config_.models.models.find(name);
    if (it == config_.models.models.end() || it->second.health_check.empty()) return true;
    emit("health", "running the health check of model " + name);
    return run_hook(it->second.health_check, config_.models.health_timeout_s, output,
                    {"OTA_MODEL_NAME=" + name, "OTA_MODEL_VERSION=" + std::to_string(version),
                     "OTA_MODEL_DIR=" + store_->current_path(name)}) == 0;
}

bool Engine::update(const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    if (state.pending && state.pending->stage == PendingStage::Switched)
        throw Error(ErrorKind::State, "version " + std::to_string(state.pending->version) +
                                          " is installed in slot " + state.pending->slot +
                                          " and waits for a reboot; run boot-check after it");
    const std::string active = platform_.boot->booted_slot();
    if (!platform_.slots.count(active))
        throw Error(ErrorKind::Config, "booted slot \"" + active + "\" is not configured");

    std::optional<Plan> plan = check_plan();
    state = load_state(config_.state_dir);
    if (!plan) {
        record(state, "up-to-date", config_.component, installed_version(state), "");
        save_state(config_.state_dir, state);
        return false;
    }
    return run_plan(*plan, state, {}, options);
}

bool Engine::run_plan(Plan& plan, AgentState& state, std::vector<std::string> paths,
                      const UpdateOptions& options) {
    const std::string what = plan.release ? "release " + plan.release->id : "update";
    if (plan.items.empty()) {
        // Every component of the release is already installed.
        if (plan.release) state.release = plan.release;
        record(state, "up-to-date", plan.release ? "release" : config_.component,
               plan.release ? plan.release->version : installed_version(state), what);
        save_state(config_.state_dir, state);
        return false;
    }
    // 1. Download and verify everything (allowed while driving), if it fits.
    require_free_space(
        plan_space_needs(plan, config_.state_dir + "/download", paths.size(), store_.get()),
        config_.storage_reserve_bytes);
    std::set<std::string> keep;
    for (const auto& item : plan.items)
        keep.insert(item.chosen.target.hashes.at("sha256") + ".bundle");
    for (size_t i = paths.size(); i < plan.items.size(); ++i)
        paths.push_back(download(plan.items[i].chosen, keep));

    // 2. Writing and activating wait for the vehicle policy.
    gate("install");

    // 3. Write every component without activating any (a failure here activates nothing).
    std::vector<BundleTarget> staged;
    auto discard_models = [&]() {
        for (const auto& t : staged)
            if (t.kind == "model") store_->discard_staged(t.component, t.version);
    };
    for (size_t i = 0; i < plan.items.size(); ++i) {
        BundleTarget chosen = plan.items[i].chosen;
        try {
            try {
                stage(chosen, paths[i], state);
            } catch (const Error& e) {
                const auto& full = plan.items[i].full;
                if (!chosen.delta_from_version || !full ||
                    (e.kind() != ErrorKind::SourceMismatch && e.kind() != ErrorKind::NotFound))
                    throw;
                // The installed image is not what the delta was made against: use the full bundle.
                emit("check",
                     std::string("delta not applicable (") + e.what() + "); using the full bundle");
                chosen = *full;
                keep.insert(chosen.target.hashes.at("sha256") + ".bundle");
                paths[i] = download(chosen, keep);
                stage(chosen, paths[i], state);
            }
        } catch (const Error& e) {
            discard_models();
            if (plan.items.size() > 1) {
                record(state, "failed", chosen.component, chosen.version,
                       what + " not activated: " + chosen.component + " failed: " + e.what());
                save_state(config_.state_dir, state);
                emit("rollback", what + ": " + chosen.component + " failed (" + e.what() +
                                     "); nothing was activated");
            }
            throw;
        }
        plan.items[i].chosen = chosen;
        staged.push_back(chosen);
        // Our own downloads go; a file the user handed to `install` stays where it is.
        if (paths[i].rfind(config_.state_dir + "/download/", 0) == 0) ::unlink(paths[i].c_str());
    }

    // 4. Activate the models one by one, each with its health check; any failure rolls back all.
    std::vector<PendingModel> activated;
    const BundleTarget* firmware = nullptr;
    for (const auto& t : staged) {
        if (t.kind != "model") {
            firmware = &t;
            continue;
        }
        store_->activate(t.component, t.version);
        activated.push_back(PendingModel{t.component, t.version});
        emit("activate",
             "model " + t.component + " version " + std::to_string(t.version) + " is now current");
        std::string out;
        if (options.skip_health || model_healthy(t.component, t.version, &out)) continue;
        for (auto it = activated.rbegin(); it != activated.rend(); ++it) {
            store_->rollback(it->name);
            emit("rollback", "model " + it->name + " restored to version " +
                                 std::to_string(store_->current_version(it->name).value_or(0)));
        }
        discard_models();
        state.failed_versions[t.component].insert(t.version);
        if (plan.release) state.failed_versions["release"].insert(plan.release->version);
        if (firmware || std::any_of(staged.begin(), staged.end(),
                                    [](const BundleTarget& s) { return s.kind == "firmware"; }))
            state.pending.reset(); // its slot stays marked bad: never switched to
        const std::string msg = "model " + t.component + " version " + std::to_string(t.version) +
                                " failed its health check: " + out;
        record(state, "rolled-back", t.component, t.version, what + " rolled back: " + msg);
        save_state(config_.state_dir, state);
        throw Error(ErrorKind::State, what + " rolled back: " + msg);
    }

    if (!firmware) {
        for (const auto& m : activated) {
            store_->commit(m.name);
            auto mf = store_->manifest(m.name, m.version);
            state.installed[m.name] = InstalledComponent{m.version, "", mf ? mf->image_sha256 : ""};
            emit("commit",
                 "model " + m.name + " version " + std::to_string(m.version) + " committed");
        }
        if (plan.release) state.release = plan.release;
        record(state, "committed", plan.release ? "release" : activated.front().name,
               plan.release ? plan.release->version : activated.front().version,
               what + " committed without a reboot");
        save_state(config_.state_dir, state);
        return true;
    }

    // 5. The firmware goes last: switch, then the models commit or roll back with its boot.
    const std::string target_slot = state.pending->slot;
    platform_.boot->set_primary(target_slot, config_.bootloader.tries);
    state.pending->stage = PendingStage::Switched;
    state.pending->models = activated;
    state.pending->release = plan.release;
    record(state, "installed", firmware->component, firmware->version,
           "slot " + target_slot + " will be tried " + std::to_string(config_.bootloader.tries) +
               " times");
    save_state(config_.state_dir, state);
    emit("switch", "slot " + target_slot + " is now first in BOOT_ORDER with " +
                       std::to_string(config_.bootloader.tries) + " tries");
    if (options.reboot) {
        gate("reboot");
        emit("reboot", "rebooting into slot " + target_slot);
        platform_.rebooter->reboot();
    }
    return true;
}

bool Engine::install(const std::string& file_or_url, const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    if (state.pending && state.pending->stage == PendingStage::Switched)
        throw Error(ErrorKind::State, "version " + std::to_string(state.pending->version) +
                                          " waits for a reboot; run boot-check after it");
    auto targets = refresh_targets();
    std::string path = file_or_url;
    if (file_or_url.find("://") != std::string::npos) {
        const std::string dir = config_.state_dir + "/download";
        make_directories(dir);
        path = dir + "/manual.bundle";
        emit("download", "downloading " + net::redact_url(file_or_url));
        fetcher_.fetch_to_file(file_or_url, path, config_.max_bundle_length, false, {});
    } else if (!file_exists(file_or_url)) {
        throw Error(ErrorKind::NotFound, "no such bundle file: " + file_or_url);
    }
    RemoveUnlessKept downloaded(path != file_or_url ? path : ""); // a refused copy goes
    const uint64_t size = file_size(path);
    const std::string digest = file_sha256_hex(path);
    std::optional<BundleTarget> found;
    for (const auto& target : targets) {
        auto h = target.hashes.find("sha256");
        if (target.length != size || h == target.hashes.end() ||
            !equal_constant_time(h->second, digest))
            continue;
        found = parse_bundle_target(target);
        break;
    }
    if (!found)
        throw Error(
            ErrorKind::BadSignature,
            file_or_url + " (" + std::to_string(size) + " bytes, SHA-256 " + digest.substr(0, 16) +
                "...) is not a target of the signed metadata: refusing to install unsigned code");
    const BundleTarget& t = *found;
    emit("verify", file_or_url + " is the signed target " + t.target.path);
    if (t.hardware_id != config_.hardware_id)
        throw Error(ErrorKind::WrongHardware, t.target.path + " is for hardware " + t.hardware_id +
                                                  ", this ECU is " + config_.hardware_id);
    if (t.kind == "firmware" && t.component != config_.component)
        throw Error(ErrorKind::Config, t.target.path + " is for component " + t.component +
                                           ", this ECU's slots hold " + config_.component);
    const uint64_t installed = component_version(state, t.component);
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
    return run_plan(plan, state, {path}, options);
}

std::string Engine::boot_check(const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    const std::string booted = platform_.boot->booted_slot();
    auto healthy = [&](std::string* out) {
        if (options.skip_health || config_.health_check.empty()) return true;
        emit("health", "running health check");
        return run_hook(config_.health_check, options.health_timeout_s, out) == 0;
    };
    // Models activated without a firmware switch and never committed (power cut during their
    // health check): back to their previous version.
    if (store_ && !(state.pending && state.pending->stage == PendingStage::Switched)) {
        for (const auto& name : store_->recover()) {
            emit("rollback", "model " + name +
                                 " was not committed before the restart: restored to version " +
                                 std::to_string(store_->current_version(name).value_or(0)));
            record(state, "rolled-back", name, store_->current_version(name).value_or(0),
                   "interrupted activation rolled back");
            save_state(config_.state_dir, state);
        }
    }

    if (store_)
        for (const auto& c : models::check_models(*store_, false))
            if (c.problem) emit("error", "CORRUPTED: " + *c.problem);

    if (!state.pending ||
        (state.pending->stage == PendingStage::Installing && booted != state.pending->slot)) {
        // Nothing waits for this boot (or an interrupted install resumes with the next update):
        // a healthy running slot gets its tries back, as RAUC's mark-good service does.
        std::string out;
        if (!healthy(&out)) {
            emit("health", "health check of the running slot failed: " + out);
            return "health-failed";
        }
        platform_.boot->mark_good(booted);
        emit("commit", "slot " + booted + " confirmed good");
        return state.pending ? "confirmed" : "nothing-pending";
    }

    PendingUpdate p = *state.pending;
    if (booted == p.slot) {
        std::string out;
        if (!healthy(&out)) {
            state.pending->health_failures++;
            record(state, "health-failed", p.component, p.version,
                   "health check failed on slot " + p.slot + ": " + out);
            save_state(config_.state_dir, state);
            emit("health", "health check failed on slot " + p.slot + "; not committing");
            if (options.reboot) {
                emit("reboot", "rebooting: the bootloader will retry or fall back");
                platform_.rebooter->reboot();
            }
            return "health-failed";
        }
        platform_.boot->mark_good(p.slot);
        state.installed[p.component] = InstalledComponent{p.version, p.slot, p.image_sha256};
        for (const auto& m : p.models) {
            if (!store_) break;
            store_->commit(m.name);
            auto mf = store_->manifest(m.name, m.version);
            state.installed[m.name] = InstalledComponent{m.version, "", mf ? mf->image_sha256 : ""};
        }
        if (p.release) state.release = p.release;
        state.pending.reset();
        record(state, "committed", p.component, p.version, "running from slot " + p.slot);
        save_state(config_.state_dir, state);
        emit("commit",
             p.component + " version " + std::to_string(p.version) + " committed: slot " + p.slot +
                 " marked good" +
                 (p.models.empty() ? ""
                                   : " (with " + std::to_string(p.models.size()) + " model(s))"));
        return "committed";
    }

    // We run the old slot although the new one was switched to: the bootloader fell back.
    state.failed_versions[p.component].insert(p.version);
    if (p.release) state.failed_versions["release"].insert(p.release->version);
    for (const auto& m : p.models)
        if (store_) store_->rollback(m.name);
    state.pending.reset();
    platform_.boot->mark_bad(p.slot);
    platform_.boot->mark_good(booted);
    record(state, "rolled-back", p.component, p.version,
           "slot " + p.slot + " did not come up; the bootloader fell back to slot " + booted);
    save_state(config_.state_dir, state);
    emit("rollback", "ROLLBACK: version " + std::to_string(p.version) + " in slot " + p.slot +
                         " failed to boot; running slot " + booted +
                         " again; this version will not be retried" +
                         (p.models.empty() ? "" : "; models of the release restored"));
    return "rolled-back";
}

std::string Engine::mark_good() {
    UpdateOptions o;
    o.skip_health = true;
    o.reboot = false;
    return boot_check(o);
}

std::string Engine::rollback(const std::string& component, const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    if (!component.empty() && component != config_.component) {
        if (!store_ || !store_->current_version(component))
            throw Error(ErrorKind::NotFound, "no installed model named " + component);
        if (state.pending && state.pending->stage == PendingStage::Switched)
            for (const auto& m : state.pending->models)
                if (m.name == component)
                    throw Error(ErrorKind::State,
                                "model " + component +
                                    " belongs to the pending release; roll back " +
                                    config_.component + " instead");
        auto from = store_->rollback(component);
        auto now = store_->current_version(component);
        if (from) state.failed_versions[component].insert(*from);
        if (now)
            state.installed[component].version = *now;
        else
            state.installed.erase(component);
        record(state, "rolled-back", component, from.value_or(0),
               "rolled back by request to " +
                   (now ? "version " + std::to_string(*now) : "no model"));
        save_state(config_.state_dir, state);
        emit("rollback", "model " + component + " is now " +
                             (now ? "version " + std::to_string(*now) : "not installed"));
        return "rolled-back";
    }
    if (!state.pending || state.pending->stage != PendingStage::Switched)
        throw Error(ErrorKind::State, "no uncommitted " + config_.component +
                                          " update to roll back (a committed slot is only left "
                                          "through a newer signed version)");
    PendingUpdate p = *state.pending;
    const std::string booted = platform_.boot->booted_slot();
    platform_.boot->mark_bad(p.slot);
    if (booted == p.from_slot)
        platform_.boot->mark_good(booted);
    else
        platform_.boot->set_primary(p.from_slot, config_.bootloader.tries);
    for (const auto& m : p.models)
        if (store_) store_->rollback(m.name);
    state.failed_versions[p.component].insert(p.version);
    if (p.release) state.failed_versions["release"].insert(p.release->version);
    state.pending.reset();
    record(state, "rolled-back", p.component, p.version,
           "rolled back by request to slot " + p.from_slot);
    save_state(config_.state_dir, state);
    emit("rollback", "version " + std::to_string(p.version) + " in slot " + p.slot +
                         " rolled back; slot " + p.from_slot + " is primary");
    if (booted != p.from_slot && options.reboot) {
        emit("reboot", "rebooting into slot " + p.from_slot);
        platform_.rebooter->reboot();
    }
    return "rolled-back";
}

Json Engine::status() {
    AgentState state = load_state(config_.state_dir);
    Json j = state.to_json();
    j["hardware_id"] = config_.hardware_id;
    j["component"] = config_.component;
    j["installed_version"] = installed_version(state);
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
    return j;
}

} // namespace ota::update
