#include "agent/uptane/vehicle_update.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/update/state.h"
#include "agent/uptane/http_manifest_sender.h"
#include "agent/uptane/json_fields.h"

#include <ctime>

namespace ota::uptane {

namespace {

std::string own_report_path(const UptaneConfig& c) {
    return join_path(c.state_dir, "own-report.json");
}

std::string names(const std::vector<std::string>& list) {
    std::string out;
    for (const auto& s : list)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

// The slot image a target decodes to (its custom "image"), as the engine records it.
std::string image_sha256_of(const VerifiedTarget& t) {
    const Json& custom = t.image.custom;
    if (!custom.is_object() || !custom.contains("image") || !custom["image"].is_object()) return "";
    return custom["image"].value("sha256", std::string());
}

InstalledImage installed_image_of(const VerifiedTarget& t) {
    InstalledImage i;
    i.filepath = t.director.path;
    i.length = t.director.length;
    i.hashes = t.director.hashes;
    i.image_sha256 = image_sha256_of(t);
    const Json& custom = t.image.custom;
    if (custom.is_object() && custom.contains("image") && custom["image"].is_object())
        i.image_length = custom["image"].value("length", uint64_t{0});
    return i;
}

bool failed_outcome(const std::string& outcome) {
    return outcome == "failed" || outcome == "rolled-back" || outcome == "health-failed";
}

} // namespace

UptaneConfig load_primary_config(const update::AgentConfig& agent) {
    UptaneConfig c = load_uptane_config(agent.uptane_config);
    if (c.primary_hardware_id != agent.hardware_id)
        throw Error(ErrorKind::Config,
                    agent.uptane_config + ": primary.hardware_id \"" + c.primary_hardware_id +
                        "\" must be the agent's hardware_id \"" + agent.hardware_id + "\"");
    return c;
}

VehicleUpdate::VehicleUpdate(const update::AgentConfig& agent, update::Engine& engine,
                             net::Fetcher& fetcher, update::EventSink events)
    : agent_(agent), engine_(engine), config_(load_primary_config(agent)),
      primary_(config_, fetcher), events_(std::move(events)) {}

VehicleUpdate::~VehicleUpdate() {
    engine_.set_targets_source(nullptr);
    engine_.set_before_activate(nullptr);
}

void VehicleUpdate::emit(const std::string& step, const std::string& message) const {
    if (events_) events_(update::Event{step, message, 0, 0});
}

void VehicleUpdate::prepare() {
    emit("check", "refreshing the director and the image repository (full verification)");
    try {
        primary_.refresh();
    } catch (const Error& e) {
        // The director hears about an attack on the primary too (its own report says it).
        if (e.kind() != ErrorKind::Network && e.kind() != ErrorKind::Io) send_manifest(e.what());
        throw;
    }
    own_ = primary_.target_for(config_.primary_serial);
    emit("check",
         own_ ? "director instructs " + config_.primary_serial +
                    " (this ECU): " + own_->director.path
              : "the director instructs nothing for " + config_.primary_serial + " (this ECU)");
    // The engine installs exactly the image repository's target the director instructed.
    engine_.set_targets_source([this] {
        // No instruction for the primary: nothing to select, and the image repository may not
        // have been consulted at all (the director instructed no ECU).
        if (!own_) return update::SignedTargets::verified(nullptr, {});
        return update::SignedTargets::verified(&primary_.image_repository(), {own_->image});
    });
}

bool VehicleUpdate::update_secondaries() {
    MultiEcuResult result = primary_.update_secondaries(join_path(config_.state_dir, "downloads"));
    std::vector<std::string> failed, switched;
    for (const auto& out : result.outcomes) {
        if (out.activated) switched.push_back(out.ecu_serial);
        if (out.activated)
            emit("secondary", out.ecu_serial + ": written, verified and switched");
        else
            emit("secondary",
                 out.ecu_serial + ": " + (out.error.empty() ? "not switched" : out.error));
        if (!out.error.empty()) failed.push_back(out.ecu_serial + " (" + out.error + ")");
    }
    if (!result.activated)
        throw Error(ErrorKind::State,
                    "multi-ECU update not activated; failed: " + names(failed) +
                        (switched.empty() ? "; no ECU switched"
                                          : "; already switched: " + names(switched)));
    return !result.outcomes.empty();
}

bool VehicleUpdate::run(const update::UpdateOptions& options) {
    prepare();
    std::vector<std::string> unreachable;
    primary_.refresh_reports(&unreachable);
    if (!unreachable.empty()) emit("check", "no version report from " + names(unreachable));

    // The engine stops short of the switch (no reboot yet): the secondaries go first.
    bool secondaries_done = false, changed = false;
    engine_.set_before_activate([&] {
        changed = update_secondaries() || changed;
        secondaries_done = true;
    });
    update::UpdateOptions no_reboot = options;
    no_reboot.reboot = false;
    try {
        changed = engine_.update(no_reboot) || changed;
        engine_.set_before_activate(nullptr);
        if (!secondaries_done) {
            try {
                changed = update_secondaries() || changed;
            } catch (const Error& e) {
                engine_.record_failure(e.what());
                throw;
            }
        }
    } catch (const std::exception&) {
        engine_.set_before_activate(nullptr);
        send_manifest();
        throw;
    }
    send_manifest();
    // The primary's own switch was made (and recorded); the reboot into it is what is left.
    const update::AgentState state = update::load_state(agent_.state_dir);
    if (options.reboot && state.pending && state.pending->stage == update::PendingStage::Switched)
        engine_.update(options);
    return changed;
}

EcuVersionReport VehicleUpdate::own_report(const std::string& attack) {
    const std::string path = own_report_path(config_);
    uint64_t counter = 0;
    std::optional<InstalledImage> installed;
    if (file_exists(path)) {
        try {
            const Json saved = parse_bounded_json(read_file(path, 1 << 20), path);
            counter = require_uint(saved, "counter", path);
            installed = report_from_json(require_member(saved, "last", path)).installed;
        } catch (const std::exception& e) {
            // Only the counter matters for the director: a damaged file starts over from the
            // time, still above any counter used before.
            LOG_WARN(path << " ignored: " << e.what());
            counter = static_cast<uint64_t>(::time(nullptr));
        }
    }
    const update::AgentState state = update::load_state(agent_.state_dir);
    EcuVersionReport r;
    r.ecu_serial = config_.primary_serial;
    r.hardware_id = config_.primary_hardware_id;
    auto inst = state.installed.find(agent_.component);
    r.installed_version =
        inst == state.installed.end() ? agent_.installed_version : inst->second.version;
    // The director's instruction is what runs once the engine committed exactly its image.
    if (own_ && inst != state.installed.end() && inst->second.version == own_->version() &&
        !inst->second.image_sha256.empty() && inst->second.image_sha256 == image_sha256_of(*own_))
        installed = installed_image_of(*own_);
    r.installed = installed;
    if (state.pending) r.pending = state.pending->target_path;
    if (state.last_result) {
        const update::LastResult& l = state.last_result.value();
        UpdateResult u;
        u.success = !failed_outcome(l.outcome);
        u.filepath = state.pending ? state.pending->target_path
                                   : (installed ? installed->filepath : std::string());
        u.message = (l.message.empty() ? l.outcome : l.outcome + ": " + l.message).substr(0, 512);
        r.last_result = u;
    }
    r.attacks_detected = attack.substr(0, 512);
    r.time = static_cast<int64_t>(::time(nullptr));
    r.counter = counter + 1;
    r.nonce = new_nonce();
    make_directories(config_.state_dir);
    // Saved before it leaves: a counter is never used twice.
    write_file_atomic(path,
                      Json{{"counter", r.counter}, {"last", report_to_json(r)}}.dump() + "\n");
    return r;
}

bool VehicleUpdate::send_manifest(const std::string& attack) {
    if (config_.manifest_url.empty()) return false;
    try {
        std::vector<std::string> unreachable;
        const Json manifest = primary_.vehicle_manifest(own_report(attack), &unreachable);
        HttpManifestSender sender(config_.manifest_url, agent_.transport);
        primary_.send_manifest(manifest, sender);
        emit("report", "vehicle version manifest sent to the director (" +
                           std::to_string(1 + config_.secondaries.size() - unreachable.size()) +
                           " ECU reports" +
                           (unreachable.empty() ? "" : "; no report from " + names(unreachable)) +
                           ")");
        return true;
    } catch (const std::exception& e) {
        LOG_WARN("vehicle version manifest not sent: " << e.what());
        emit("report", std::string("vehicle version manifest not sent: ") + e.what());
        return false;
    }
}

} // namespace ota::uptane
