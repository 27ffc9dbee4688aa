#include "agent/uptane/vehicle_manifest.h"

#include "agent/common/error.h"
#include "agent/uptane/json_fields.h"

namespace ota::uptane {

namespace {
constexpr const char* kManifestType = "vehicle_version_manifest";
}

Json sign_vehicle_manifest(const std::string& vin, const std::string& primary_serial,
                           const std::map<std::string, Json>& reports, const SigningKey& key) {
    Json all = Json::object();
    for (const auto& [serial, report] : reports)
        all[serial] = report;
    return sign_document(Json{{"_type", kManifestType},
                              {"vin", vin},
                              {"primary_ecu_serial", primary_serial},
                              {"ecu_version_reports", all}},
                         key);
}

VerifiedManifest verify_vehicle_manifest(const Json& doc, const std::string& vin,
                                         const std::vector<RegisteredEcu>& ecus) {
    const std::string what = "vehicle version manifest";
    if (!doc.is_object() || !doc.contains("signed") || !doc["signed"].is_object())
        throw Error(ErrorKind::Malformed, what + " is not a signed document");
    const Json& s = doc["signed"];
    require_only_keys(s, {"_type", "vin", "primary_ecu_serial", "ecu_version_reports"}, what);
    if (require_string(s, "_type", 64, what) != kManifestType)
        throw Error(ErrorKind::Malformed, what + ": \"_type\" must be \"" + kManifestType + "\"");
    VerifiedManifest out;
    out.vin = require_identifier(s, "vin", what);
    if (out.vin != vin)
        throw Error(ErrorKind::Malformed,
                    what + " is from vehicle " + out.vin + ", expected " + vin);
    out.primary_serial = require_identifier(s, "primary_ecu_serial", what);
    const RegisteredEcu* primary = nullptr;
    for (const auto& e : ecus)
        if (e.serial == out.primary_serial && e.primary) primary = &e;
    if (!primary)
        throw Error(ErrorKind::Malformed,
                    what + ": " + out.primary_serial + " is not this vehicle's primary ECU");
    if (!document_signed_by(doc, primary->key))
        throw Error(ErrorKind::BadSignature,
                    what + " is not signed by the key of primary " + out.primary_serial);

    const Json& reports = require_object(s, "ecu_version_reports", what);
    if (reports.size() > kMaxVehicleEcus)
        throw Error(ErrorKind::TooLarge,
                    what + " lists more than " + std::to_string(kMaxVehicleEcus) + " ECUs");
    for (auto it = reports.begin(); it != reports.end(); ++it) {
        bool known = false;
        for (const auto& e : ecus)
            known = known || e.serial == it.key();
        if (!known)
            throw Error(ErrorKind::Malformed, what + " has a report of ECU " +
                                                  it.key().substr(0, kMaxIdLength) +
                                                  ", which is not in vehicle " + vin);
    }
    for (const auto& e : ecus) {
        auto it = reports.find(e.serial);
        if (it == reports.end())
            throw Error(ErrorKind::Malformed, what + " has no report of ECU " + e.serial);
        EcuVersionReport r = verify_report(*it, e.serial, e.key, e.last_counter);
        if (r.hardware_id != e.hardware_id)
            throw Error(ErrorKind::Malformed, "ECU " + e.serial + " reports hardware id " +
                                                  r.hardware_id + ", registered as " +
                                                  e.hardware_id);
        out.reports[e.serial] = std::move(r);
    }
    return out;
}

} // namespace ota::uptane
