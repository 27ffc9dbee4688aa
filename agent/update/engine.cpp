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
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/updater.h"
#include "hal/block_device.h"

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
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a non-negative integer");
    return v.get<uint64_t>();
}

std::string string_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_string()) throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a string");
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
    if (!target.custom.is_object())
        throw Error(ErrorKind::Malformed, what + ": no custom fields");
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

Engine::Engine(AgentConfig config, Platform& platform, net::Fetcher& fetcher, EventSink events)
    : config_(std::move(config)), platform_(platform), fetcher_(fetcher),
      events_(std::move(events)) {}

void Engine::emit(const std::string& step, const std::string& message, uint64_t done,
                  uint64_t total) {
    if (events_) events_(Event{step, message, done, total});
}

void Engine::record(AgentState& state, const std::string& outcome, const std::string& component,
                    uint64_t version, const std::string& message) {
    state.last_result = LastResult{outcome, component, version, message,
                                   static_cast<int64_t>(::time(nullptr))};
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

std::optional<Selection> Engine::check() {
    ensure_trusted_root();
    AgentState state = load_state(config_.state_dir);
    const uint64_t installed = installed_version(state);
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

    std::vector<BundleTarget> candidates;
    std::set<std::string> other_hardware;
    const auto& failed = state.failed_versions[config_.component];
    for (const auto& target : updater.all_targets()) {
        BundleTarget t;
        try {
            t = parse_bundle_target(target);
        } catch (const Error& e) {
            LOG_WARN("ignoring " << target.path << ": " << e.what());
            continue;
        }
        if (t.kind != "firmware" || t.component != config_.component) continue;
        if (t.version <= installed || failed.count(t.version)) continue;
        if (t.hardware_id != config_.hardware_id) {
            other_hardware.insert(t.hardware_id);
            continue;
        }
        if (t.target.length > config_.max_bundle_length) {
            LOG_WARN("ignoring " << t.target.path << ": larger than limits.max_bundle_length");
            continue;
        }
        candidates.push_back(std::move(t));
    }
    if (candidates.empty()) {
        if (!other_hardware.empty()) {
            std::string list;
            for (const auto& h : other_hardware) list += (list.empty() ? "" : ", ") + h;
            throw Error(ErrorKind::WrongHardware,
                        "newer " + config_.component + " versions exist only for other hardware (" +
                            list + "), none for " + config_.hardware_id);
        }
        emit("check", "up to date (installed version " + std::to_string(installed) + ")");
        return std::nullopt;
    }
    uint64_t best = 0;
    for (const auto& c : candidates) best = std::max(best, c.version);
    Selection sel;
    std::optional<BundleTarget> delta;
    for (const auto& c : candidates) {
        if (c.version != best) continue;
        if (!c.delta_from_version) sel.full = c;
        else if (*c.delta_from_version == installed) delta = c;
    }
    if (delta) {
        sel.chosen = *delta;
    } else if (sel.full) {
        sel.chosen = *sel.full;
    } else {
        throw Error(ErrorKind::NotFound, "version " + std::to_string(best) +
                                             " has no full bundle and no delta from version " +
                                             std::to_string(installed));
    }
    emit("check", "update available: " + config_.component + " " + std::to_string(installed) +
                      " -> " + std::to_string(best) + " (" + sel.chosen.target.path + ", " +
                      std::to_string(sel.chosen.target.length) + " bytes" +
                      (delta ? ", delta" : ", full image") + ")");
    return sel;
}

std::string Engine::download(const BundleTarget& t) {
    const std::string dir = config_.state_dir + "/download";
    make_directories(dir);
    const std::string name = t.target.hashes.at("sha256") + ".bundle";
    const std::string path = join_path(dir, name);
    // Only one download is kept: partial files of other bundles are removed.
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != ".." && n != name) ::unlink(join_path(dir, n).c_str());
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

void Engine::install(const BundleTarget& t, const std::string& bundle_path, AgentState& state,
                     const std::string& active, const std::string& target_slot) {
    // Nothing is written before the whole bundle matched its signed hash (download()), and the
    // header must match the hash named in the signed target before it is parsed.
    bundle::BundleFile bf = bundle::BundleFile::open(bundle_path, t.header_sha256, t.header_length);
    if (bf.header().target_sha256 != t.image_sha256 || bf.header().target_size != t.image_length)
        throw Error(ErrorKind::HashMismatch,
                    "bundle header describes a different image than the signed target");

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

bool Engine::update(const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    if (state.pending && state.pending->stage == PendingStage::Switched)
        throw Error(ErrorKind::State, "version " + std::to_string(state.pending->version) +
                                          " is installed in slot " + state.pending->slot +
                                          " and waits for a reboot; run boot-check after it");
    const std::string active = platform_.boot->booted_slot();
    if (!platform_.slots.count(active))
        throw Error(ErrorKind::Config, "booted slot \"" + active + "\" is not configured");
    const std::string target_slot = other_slot(platform_.slots, active);

    std::optional<Selection> sel = check();
    if (!sel) {
        record(state, "up-to-date", config_.component, installed_version(state), "");
        save_state(config_.state_dir, state);
        return false;
    }
    BundleTarget chosen = sel->chosen;
    try {
        std::string path = download(chosen);
        install(chosen, path, state, active, target_slot);
    } catch (const Error& e) {
        bool is_delta = chosen.delta_from_version.has_value();
        if (!is_delta || !sel->full ||
            (e.kind() != ErrorKind::SourceMismatch && e.kind() != ErrorKind::NotFound))
            throw;
        // The running slot is not the image the delta was made against: use the full bundle.
        emit("check", std::string("delta not applicable (") + e.what() + "); using the full bundle");
        chosen = *sel->full;
        std::string path = download(chosen);
        install(chosen, path, state, active, target_slot);
    }
    ::unlink((config_.state_dir + "/download/" + chosen.target.hashes.at("sha256") + ".bundle").c_str());

    platform_.boot->set_primary(target_slot, config_.bootloader.tries);
    state.pending->stage = PendingStage::Switched;
    record(state, "installed", chosen.component, chosen.version,
           "slot " + target_slot + " will be tried " + std::to_string(config_.bootloader.tries) +
               " times");
    save_state(config_.state_dir, state);
    emit("switch", "slot " + target_slot + " is now first in BOOT_ORDER with " +
                       std::to_string(config_.bootloader.tries) + " tries");
    if (options.reboot) {
        emit("reboot", "rebooting into slot " + target_slot);
        platform_.rebooter->reboot();
    }
    return true;
}

std::string Engine::boot_check(const UpdateOptions& options) {
    AgentState state = load_state(config_.state_dir);
    const std::string booted = platform_.boot->booted_slot();
    auto healthy = [&](std::string* out) {
        if (config_.health_check.empty()) return true;
        emit("health", "running health check");
        return run_hook(config_.health_check, options.health_timeout_s, out) == 0;
    };

    if (!state.pending || (state.pending->stage == PendingStage::Installing &&
                           booted != state.pending->slot)) {
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
        state.pending.reset();
        record(state, "committed", p.component, p.version, "running from slot " + p.slot);
        save_state(config_.state_dir, state);
        emit("commit", p.component + " version " + std::to_string(p.version) +
                           " committed: slot " + p.slot + " marked good");
        return "committed";
    }

    // We run the old slot although the new one was switched to: the bootloader fell back.
    state.failed_versions[p.component].insert(p.version);
    state.pending.reset();
    platform_.boot->mark_bad(p.slot);
    platform_.boot->mark_good(booted);
    record(state, "rolled-back", p.component, p.version,
           "slot " + p.slot + " did not come up; the bootloader fell back to slot " + booted);
    save_state(config_.state_dir, state);
    emit("rollback", "ROLLBACK: version " + std::to_string(p.version) + " in slot " + p.slot +
                         " failed to boot; running slot " + booted +
                         " again; this version will not be retried");
    return "rolled-back";
}

Json Engine::status() {
    AgentState state = load_state(config_.state_dir);
    Json j = state.to_json();
    j["hardware_id"] = config_.hardware_id;
    j["installed_version"] = installed_version(state);
    j["booted_slot"] = platform_.boot->booted_slot();
    hal::BootState bs = platform_.boot->state();
    j["boot_order"] = bs.order;
    j["tries_left"] = bs.tries_left;
    return j;
}

} // namespace ota::update
