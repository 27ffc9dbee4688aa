#include "agent/uptane/primary.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/vehicle_manifest.h"

namespace ota::uptane {

namespace {
std::string reports_path(const UptaneConfig& c) {
    return join_path(c.state_dir, "secondaries.json");
}
std::string activation_path(const UptaneConfig& c) {
    return join_path(c.state_dir, "activation.json");
}
} // namespace

Primary::Primary(UptaneConfig config, net::Fetcher& fetcher, tuf::Clock clock)
    : config_(std::move(config)), fetcher_(fetcher),
      repositories_(config_.trust_dir(), config_.director, config_.image, std::move(clock)),
      key_(SigningKey::from_pem(read_file(config_.primary_key, 64 * 1024))) {
    const std::string path = reports_path(config_);
    if (!file_exists(path)) return;
    // Reports verified when they were received; a damaged file only costs that knowledge.
    try {
        const Json j = parse_bounded_json(read_file(path, 4 << 20), path);
        for (auto it = j.begin(); it != j.end(); ++it) {
            counters_[it.key()] = require_uint(*it, "counter", path);
            reports_[it.key()] = report_from_json(require_member(*it, "report", path));
        }
    } catch (const std::exception& e) {
        LOG_WARN(path << " ignored: " << e.what());
    }
}

void Primary::save_reports() const {
    Json j = Json::object();
    for (const auto& [serial, counter] : counters_) {
        j[serial]["counter"] = counter;
        auto r = reports_.find(serial);
        j[serial]["report"] = r == reports_.end() ? Json(nullptr) : report_to_json(r->second);
    }
    make_directories(config_.state_dir);
    write_file_atomic(reports_path(config_),
                      j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n");
}

const VerificationResult& Primary::refresh() {
    verified_.reset();
    verified_ = repositories_.refresh_and_verify(fetcher_, fetcher_, config_.vehicle_id,
                                                 config_.vehicle_ecus(), true);
    return *verified_;
}

std::optional<VerifiedTarget> Primary::target_for(const std::string& ecu_serial) const {
    if (!verified_) throw Error(ErrorKind::State, "refresh first");
    auto it = verified_->targets.find(ecu_serial);
    if (it == verified_->targets.end()) return std::nullopt;
    return it->second;
}

tuf::Updater& Primary::image_repository() {
    return repositories_.image_updater();
}

std::map<std::string, std::string> Primary::load_activation() const {
    std::map<std::string, std::string> activating;
    const std::string path = activation_path(config_);
    if (!file_exists(path)) return activating;
    const Json j = parse_bounded_json(read_file(path, 1 << 20), path);
    if (!j.is_object()) throw Error(ErrorKind::Malformed, path + " must be an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it->is_string()) throw Error(ErrorKind::Malformed, path + ": " + it.key());
        activating[it.key()] = it->get<std::string>();
    }
    return activating;
}

void Primary::save_activation(const std::map<std::string, std::string>& activating) const {
    const std::string path = activation_path(config_);
    if (activating.empty()) {
        if (file_exists(path)) remove_file_durable(path);
        return;
    }
    make_directories(config_.state_dir);
    write_file_atomic(path, Json(activating).dump() + "\n");
}

MultiEcuResult Primary::update_secondaries(const std::string& download_dir) {
    if (!verified_) throw Error(ErrorKind::State, "refresh first");
    // An activation that began before a restart: secondaries still pending that instruction are
    // switched (or about to be); the others are done or moved on, and are forgotten.
    std::map<std::string, std::string> activating = load_activation();
    for (auto it = activating.begin(); it != activating.end();) {
        auto report = reports_.find(it->first);
        auto target = verified_->targets.find(it->first);
        const bool still = report != reports_.end() && report->second.pending == it->second &&
                           target != verified_->targets.end() &&
                           target->second.director.path == it->second;
        it = still ? std::next(it) : activating.erase(it);
    }
    save_activation(activating);

    MultiEcuResult resumed;
    std::vector<SecondaryStep> steps;
    for (const auto& ecu : config_.secondaries) {
        auto it = verified_->targets.find(ecu.ecu_serial);
        if (it == verified_->targets.end()) continue;
        auto report = reports_.find(ecu.ecu_serial);
        if (report != reports_.end() && report_shows_installed(report->second, it->second, nullptr))
            continue; // it already runs the instructed image
        if (activating.count(ecu.ecu_serial)) {
            SecondaryOutcome out;
            out.ecu_serial = ecu.ecu_serial;
            out.staged = true;
            try {
                SecondaryClient client(ecu.host, ecu.port, config_.secondary_timeout_s);
                check_secondary_identity(client, ecu);
                client.activate();
                out.activated = true;
                LOG_INFO("secondary " << ecu.ecu_serial << " switched (resumed activation)");
            } catch (const std::exception& e) {
                out.error = e.what();
            }
            resumed.outcomes.push_back(out);
            continue;
        }
        make_directories(download_dir);
        const std::string file = join_path(download_dir, it->second.image.hashes.begin()->second);
        image_repository().download_target(it->second.image, file);
        steps.push_back(SecondaryStep{ecu, it->second, file});
    }
    MultiEcuResult result = uptane::update_secondaries(
        steps, repositories_, fetcher_, fetcher_, config_.secondary_timeout_s, [&] {
            std::map<std::string, std::string> now = activating;
            for (const auto& step : steps)
                now[step.ecu.ecu_serial] = step.target.director.path;
            save_activation(now);
        });
    bool all = steps.empty() || result.activated;
    for (auto& out : resumed.outcomes) {
        all = all && out.activated;
        result.outcomes.push_back(out);
    }
    result.activated = all;
    return result;
}

Json Primary::fetch_report(const SecondaryConfig& ecu) {
    SecondaryClient client(ecu.host, ecu.port, config_.secondary_timeout_s);
    auto last = counters_.find(ecu.ecu_serial);
    CheckedReport r = fetch_version_report(client, ecu, last == counters_.end() ? 0 : last->second);
    counters_[ecu.ecu_serial] = r.report.counter;
    reports_[ecu.ecu_serial] = r.report;
    return r.document;
}

void Primary::refresh_reports(std::vector<std::string>* unreachable) {
    for (const auto& ecu : config_.secondaries) {
        try {
            fetch_report(ecu);
        } catch (const Error& e) {
            LOG_WARN("no version report from " << ecu.ecu_serial << ": " << e.what());
            if (unreachable) unreachable->push_back(ecu.ecu_serial);
            if (e.kind() != ErrorKind::Network) throw;
        }
    }
    save_reports();
}

Json Primary::vehicle_manifest(const EcuVersionReport& own, std::vector<std::string>* unreachable) {
    std::map<std::string, Json> reports;
    EcuVersionReport mine = own;
    mine.ecu_serial = config_.primary_serial;
    mine.hardware_id = config_.primary_hardware_id;
    reports[config_.primary_serial] = sign_report(mine, key_);
    for (const auto& ecu : config_.secondaries) {
        try {
            reports[ecu.ecu_serial] = fetch_report(ecu);
        } catch (const Error& e) {
            LOG_WARN("no version report from " << ecu.ecu_serial << ": " << e.what());
            if (unreachable) unreachable->push_back(ecu.ecu_serial);
            // A refused report (bad signature, replay) is an attack the caller must see.
            if (e.kind() != ErrorKind::Network) throw;
        }
    }
    save_reports();
    return sign_vehicle_manifest(config_.vehicle_id, config_.primary_serial, reports, key_);
}

} // namespace ota::uptane
