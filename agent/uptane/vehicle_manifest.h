// The vehicle version manifest (Uptane Standard, "Vehicle version manifest"): the primary's
// bundle of every ECU's signed version report (its own included), signed with the primary's key
// and sent to the director. The signed part:
//
//   {"_type": "vehicle_version_manifest", "vin": VIN, "primary_ecu_serial": S,
//    "ecu_version_reports": {SERIAL: SIGNED-ECU-VERSION-REPORT, ...}}
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/uptane/keys.h"
#include "agent/uptane/version_report.h"

#include <map>
#include <string>
#include <vector>

namespace ota::uptane {

constexpr size_t kMaxVehicleEcus = 64;
// A manifest of 64 reports is a few tens of KiB; the director refuses more than this.
constexpr size_t kMaxVehicleManifestSize = 1024 * 1024;

// reports: ECU serial -> that ECU's signed report (as it sent it).
Json sign_vehicle_manifest(const std::string& vin, const std::string& primary_serial,
                           const std::map<std::string, Json>& reports, const SigningKey& key);

// An ECU as the director's inventory knows it.
struct RegisteredEcu {
    std::string serial;
    std::string hardware_id;
    PublicKey key;
    bool primary = false;
    uint64_t last_counter = 0; // the highest report_counter accepted so far (0 = none)
};

struct VerifiedManifest {
    std::string vin;
    std::string primary_serial;
    std::map<std::string, EcuVersionReport> reports;
};

// The director's checks (Uptane Standard, "Directing installation of images on vehicles"):
// the vehicle id; the primary is the vehicle's registered primary and signed the manifest; every
// registered ECU, and no other, has a report signed by its own key, naming its serial and
// hardware id, with a report_counter above the last accepted one (replay). Throws
// Error(BadSignature), Error(Rollback) for a replay, Error(Malformed) for the rest.
VerifiedManifest verify_vehicle_manifest(const Json& doc, const std::string& vin,
                                         const std::vector<RegisteredEcu>& ecus);

} // namespace ota::uptane
