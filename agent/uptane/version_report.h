// The ECU version report (Uptane Standard, "ECU version report"): what one ECU runs, signed with
// its own key. The signed part:
//
//   {"_type": "ecu_version_report", "ecu_serial": S, "hardware_id": HW,
//    "installed_image": {"filepath": NAME, "fileinfo": {"length": N, "hashes": {...},
//                        "custom": {"image": {"length": N, "sha256": H}}}} | null,
//    "installed_version": V, "attacks_detected": "", "time": T, "report_counter": C,
//    "nonce": HEX, "pending": NAME | null,
//    "last_result": {"success": B, "filepath": NAME, "message": M} | null}
//
// installed_image is the director's target as installed (its non-custom metadata, plus the
// slot image it decoded to); null while the ECU still runs its factory image. report_counter
// increases with every report the ECU signs (kept on the ECU), so the director refuses a replayed
// report; nonce is the primary's challenge for this request, so the primary refuses a stale one.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/uptane/keys.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ota::uptane {

constexpr size_t kMaxNonceLength = 64;

struct InstalledImage {
    std::string filepath; // the target name the director listed
    uint64_t length = 0;  // the target's length and hashes
    std::map<std::string, std::string> hashes;
    uint64_t image_length = 0; // the slot image the target decoded to, verified end to end
    std::string image_sha256;
    bool operator==(const InstalledImage& o) const {
        return filepath == o.filepath && length == o.length && hashes == o.hashes &&
               image_length == o.image_length && image_sha256 == o.image_sha256;
    }
};

struct UpdateResult {
    bool success = false;
    std::string filepath;
    std::string message;
};

struct EcuVersionReport {
    std::string ecu_serial;
    std::string hardware_id;
    std::optional<InstalledImage> installed;
    uint64_t installed_version = 0; // release counter of what runs (factory version at first)
    std::string attacks_detected;   // "" = none; else what the ECU refused, and why
    int64_t time = 0;               // the ECU's latest time (seconds since the epoch)
    uint64_t counter = 0;
    std::string nonce;
    std::optional<std::string> pending; // a target staged or switched to, not yet committed
    std::optional<UpdateResult> last_result;
};

Json report_to_json(const EcuVersionReport& report);
// Strict: unknown fields, wrong types and oversized values are Error(Malformed)/TooLarge.
EcuVersionReport report_from_json(const Json& signed_part);

Json sign_report(const EcuVersionReport& report, const SigningKey& key);

// A signed report checked against the ECU it must come from: the signature of `key`, the serial,
// and a counter above `min_counter_exclusive` (replay). Throws Error(BadSignature) or
// Error(Rollback) for a replayed counter, Malformed for anything else.
EcuVersionReport verify_report(const Json& doc, const std::string& expected_serial,
                               const PublicKey& key, uint64_t min_counter_exclusive);

} // namespace ota::uptane
