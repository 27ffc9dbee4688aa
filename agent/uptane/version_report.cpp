#include "agent/uptane/version_report.h"

#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "agent/uptane/json_fields.h"

namespace ota::uptane {

namespace {
constexpr const char* kReportType = "ecu_version_report";

Json installed_to_json(const InstalledImage& i) {
    return Json{{"filepath", i.filepath},
                {"fileinfo", Json{{"length", i.length},
                                  {"hashes", hashes_to_json(i.hashes)},
                                  {"custom", Json{{"image", Json{{"length", i.image_length},
                                                                 {"sha256", i.image_sha256}}}}}}}};
}

InstalledImage installed_from_json(const Json& j, const std::string& what) {
    require_only_keys(j, {"filepath", "fileinfo"}, what);
    InstalledImage i;
    i.filepath = require_string(j, "filepath", kMaxTargetNameLength, what);
    if (i.filepath.empty()) throw Error(ErrorKind::Malformed, what + ": empty filepath");
    const Json& info = require_object(j, "fileinfo", what);
    const std::string iwhat = what + " fileinfo";
    require_only_keys(info, {"length", "hashes", "custom"}, iwhat);
    i.length = require_uint(info, "length", iwhat);
    i.hashes = parse_hashes(require_member(info, "hashes", iwhat), iwhat);
    const Json& custom = require_object(info, "custom", iwhat);
    require_only_keys(custom, {"image"}, iwhat + " custom");
    const Json& image = require_object(custom, "image", iwhat + " custom");
    require_only_keys(image, {"length", "sha256"}, iwhat + " image");
    i.image_length = require_uint(image, "length", iwhat + " image");
    i.image_sha256 = require_string(image, "sha256", 64, iwhat + " image");
    if (i.image_sha256.size() != 64 || !is_hex(i.image_sha256))
        throw Error(ErrorKind::Malformed, iwhat + ": image sha256 must be 64 hex digits");
    return i;
}
} // namespace

Json report_to_json(const EcuVersionReport& r) {
    Json j{{"_type", kReportType},
           {"ecu_serial", r.ecu_serial},
           {"hardware_id", r.hardware_id},
           {"installed_image", r.installed ? installed_to_json(*r.installed) : Json(nullptr)},
           {"installed_version", r.installed_version},
           {"attacks_detected", r.attacks_detected},
           {"time", r.time},
           {"report_counter", r.counter},
           {"nonce", r.nonce},
           {"pending", r.pending ? Json(*r.pending) : Json(nullptr)},
           {"last_result", Json(nullptr)}};
    if (r.last_result)
        j["last_result"] = Json{{"success", r.last_result->success},
                                {"filepath", r.last_result->filepath},
                                {"message", r.last_result->message}};
    return j;
}

EcuVersionReport report_from_json(const Json& s) {
    const std::string what = "ECU version report";
    require_only_keys(s,
                      {"_type", "ecu_serial", "hardware_id", "installed_image", "installed_version",
                       "attacks_detected", "time", "report_counter", "nonce", "pending",
                       "last_result"},
                      what);
    if (require_string(s, "_type", 64, what) != kReportType)
        throw Error(ErrorKind::Malformed, what + ": \"_type\" must be \"" + kReportType + "\"");
    EcuVersionReport r;
    r.ecu_serial = require_identifier(s, "ecu_serial", what);
    r.hardware_id = require_identifier(s, "hardware_id", what);
    const Json& installed = require_member(s, "installed_image", what);
    if (!installed.is_null())
        r.installed = installed_from_json(installed, what + " installed_image");
    r.installed_version = require_uint(s, "installed_version", what);
    r.attacks_detected = require_string(s, "attacks_detected", kMaxMessageLength, what);
    r.time = require_int(s, "time", what);
    r.counter = require_uint(s, "report_counter", what);
    r.nonce = require_string(s, "nonce", kMaxNonceLength, what);
    const Json& pending = require_member(s, "pending", what);
    if (!pending.is_null()) r.pending = require_string(s, "pending", kMaxTargetNameLength, what);
    const Json& last = require_member(s, "last_result", what);
    if (!last.is_null()) {
        const std::string lwhat = what + " last_result";
        require_only_keys(last, {"success", "filepath", "message"}, lwhat);
        r.last_result = UpdateResult{require_bool(last, "success", lwhat),
                                     require_string(last, "filepath", kMaxTargetNameLength, lwhat),
                                     require_string(last, "message", kMaxMessageLength, lwhat)};
    }
    return r;
}

Json sign_report(const EcuVersionReport& report, const SigningKey& key) {
    return sign_document(report_to_json(report), key);
}

EcuVersionReport verify_report(const Json& doc, const std::string& expected_serial,
                               const PublicKey& key, uint64_t min_counter_exclusive) {
    if (!doc.is_object() || !doc.contains("signed"))
        throw Error(ErrorKind::Malformed,
                    "ECU version report of " + expected_serial + " is not a signed document");
    if (!document_signed_by(doc, key))
        throw Error(ErrorKind::BadSignature, "ECU version report of " + expected_serial +
                                                 " is not signed by that ECU's key");
    EcuVersionReport r = report_from_json(doc["signed"]);
    if (r.ecu_serial != expected_serial)
        throw Error(ErrorKind::Malformed, "ECU version report signed by " + expected_serial +
                                              "'s key names ECU " + r.ecu_serial);
    if (r.counter <= min_counter_exclusive)
        throw Error(ErrorKind::Rollback, "ECU version report of " + expected_serial +
                                             " is replayed: report_counter " +
                                             std::to_string(r.counter) + ", last accepted " +
                                             std::to_string(min_counter_exclusive));
    return r;
}

} // namespace ota::uptane
