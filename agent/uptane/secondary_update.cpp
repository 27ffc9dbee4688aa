#include "agent/uptane/secondary_update.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "agent/common/log.h"

namespace ota::uptane {

SecondaryInfo check_secondary_identity(SecondaryClient& client, const SecondaryConfig& ecu) {
    SecondaryInfo info = client.get_info();
    const std::string at = ecu.host + ":" + std::to_string(ecu.port);
    if (info.ecu_serial != ecu.ecu_serial)
        throw Error(ErrorKind::WrongHardware, "ECU " + info.ecu_serial + " answers at " + at +
                                                  ", where " + ecu.ecu_serial + " is configured");
    if (info.hardware_id != ecu.hardware_id)
        throw Error(ErrorKind::WrongHardware, "ECU " + ecu.ecu_serial + " says hardware id " +
                                                  info.hardware_id + ", configured " +
                                                  ecu.hardware_id);
    if (info.key.scheme != ecu.key.scheme || key_id(info.key) != key_id(ecu.key))
        throw Error(ErrorKind::BadSignature,
                    "ECU " + ecu.ecu_serial + " presents another key than the one configured");
    if (info.verification != ecu.verification)
        throw Error(ErrorKind::Config, "ECU " + ecu.ecu_serial + " verifies " +
                                           verification_mode_name(info.verification) +
                                           ", configured " +
                                           verification_mode_name(ecu.verification));
    return info;
}

SecondaryMetadata metadata_for_secondary(const UptaneRepositories& repos, const SecondaryInfo& info,
                                         net::Fetcher& director_fetcher,
                                         net::Fetcher& image_fetcher) {
    const bool full = info.verification == VerificationMode::Full;
    SecondaryMetadata m;
    m.director = collect_repository_metadata(repos.director_dir(), info.director_root_version, full,
                                             director_fetcher, repos.director().metadata_url,
                                             repos.director().limits);
    if (full)
        m.image = collect_repository_metadata(repos.image_dir(), info.image_root_version, true,
                                              image_fetcher, repos.image().metadata_url,
                                              repos.image().limits);
    return m;
}

namespace {

// Phase 1 for one secondary; throws on any failure.
void stage_one(const SecondaryStep& step, SecondaryOutcome& out, const UptaneRepositories& repos,
               net::Fetcher& director_fetcher, net::Fetcher& image_fetcher, int timeout_s) {
    SecondaryClient client(step.ecu.host, step.ecu.port, timeout_s);
    SecondaryInfo info = check_secondary_identity(client, step.ecu);
    std::optional<ImageOffer> instruction =
        client.put_metadata(metadata_for_secondary(repos, info, director_fetcher, image_fetcher));
    const ImageOffer expected = offer_of(step.target.director);
    if (!instruction || instruction->filepath != expected.filepath ||
        instruction->length != expected.length || instruction->hashes != expected.hashes)
        throw Error(ErrorKind::State, "ECU " + step.ecu.ecu_serial +
                                          " did not accept the instruction for " +
                                          expected.filepath +
                                          (instruction ? ", it found " + instruction->filepath
                                                       : std::string(", it found none")));
    out.resumed_from = client.send_image(expected, step.image_file);
    client.install(expected.filepath);
    out.staged = true;
}

} // namespace

MultiEcuResult update_secondaries(const std::vector<SecondaryStep>& steps,
                                  const UptaneRepositories& repos, net::Fetcher& director_fetcher,
                                  net::Fetcher& image_fetcher, int timeout_s,
                                  const std::function<void()>& before_activation) {
    MultiEcuResult result;
    bool all_staged = true;
    for (const auto& step : steps) {
        SecondaryOutcome out;
        out.ecu_serial = step.ecu.ecu_serial;
        try {
            stage_one(step, out, repos, director_fetcher, image_fetcher, timeout_s);
            LOG_INFO("secondary " << out.ecu_serial << " staged " << step.target.director.path);
        } catch (const std::exception& e) {
            out.error = e.what();
            all_staged = false;
            LOG_WARN("secondary " << out.ecu_serial << " failed: " << e.what());
        }
        result.outcomes.push_back(out);
    }
    std::string not_begun;
    if (all_staged && before_activation) {
        try {
            before_activation();
        } catch (const std::exception& e) {
            all_staged = false;
            not_begun = std::string("aborted: ") + e.what();
        }
    }
    for (size_t i = 0; i < steps.size(); ++i) {
        SecondaryOutcome& out = result.outcomes[i];
        if (!out.staged) continue;
        try {
            SecondaryClient client(steps[i].ecu.host, steps[i].ecu.port, timeout_s);
            if (all_staged) {
                client.activate();
                out.activated = true;
            } else {
                client.abort();
                if (out.error.empty())
                    out.error =
                        not_begun.empty() ? "aborted: another ECU of the update failed" : not_begun;
            }
        } catch (const std::exception& e) {
            out.error = e.what();
        }
    }
    result.activated = all_staged;
    for (const auto& out : result.outcomes)
        result.activated = result.activated && out.activated;
    return result;
}

std::string new_nonce() {
    uint8_t bytes[16];
    random_bytes(bytes, sizeof bytes);
    return to_hex(bytes, sizeof bytes);
}

CheckedReport fetch_version_report(SecondaryClient& client, const SecondaryConfig& ecu,
                                   uint64_t last_counter) {
    const std::string nonce = new_nonce();
    CheckedReport out;
    out.document = client.version_report(nonce);
    out.report = verify_report(out.document, ecu.ecu_serial, ecu.key, last_counter);
    if (out.report.nonce != nonce)
        throw Error(ErrorKind::Rollback, "ECU " + ecu.ecu_serial +
                                             " answered with a report for another request "
                                             "(stale or replayed nonce)");
    if (out.report.hardware_id != ecu.hardware_id)
        throw Error(ErrorKind::WrongHardware,
                    "ECU " + ecu.ecu_serial + " reports hardware id " + out.report.hardware_id);
    return out;
}

bool report_shows_installed(const EcuVersionReport& report, const VerifiedTarget& target,
                            std::string* why) {
    const tuf::TargetFile& t = target.director;
    auto fail = [&](const std::string& reason) {
        if (why) *why = "ECU " + report.ecu_serial + " " + reason;
        return false;
    };
    if (!report.installed) return fail("reports no installed target (still its factory image)");
    if (report.installed->filepath != t.path)
        return fail("reports " + report.installed->filepath + " installed, instructed " + t.path);
    if (report.installed->length != t.length || report.installed->hashes != t.hashes)
        return fail("reports " + t.path + " with other length or hashes than instructed");
    const Json& custom = target.image.custom;
    if (custom.is_object() && custom.contains("image") && custom["image"].is_object()) {
        const Json& image = custom["image"];
        if (image.value("sha256", std::string()) != report.installed->image_sha256 ||
            image.value("length", uint64_t{0}) != report.installed->image_length)
            return fail("reports a slot image other than the one " + t.path + " decodes to");
    }
    if (report.pending) return fail("still has " + *report.pending + " pending");
    return true;
}

} // namespace ota::uptane
