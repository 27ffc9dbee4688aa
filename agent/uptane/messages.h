// Bodies of the secondary protocol's messages that both sides parse
// (manifests/UPTANE-SECONDARY.md).
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/tuf/metadata.h"
#include "agent/uptane/keys.h"

#include <cstdint>
#include <map>
#include <string>

namespace ota::uptane {

enum class VerificationMode { Full, Partial };
const char* verification_mode_name(VerificationMode mode);
// "full" / "partial"; throws Error(Config).
VerificationMode parse_verification_mode(const std::string& name);

// GET_INFO's answer: who the secondary is.
struct SecondaryInfo {
    std::string ecu_serial;
    std::string hardware_id;
    VerificationMode verification = VerificationMode::Full;
    PublicKey key;
    uint64_t director_root_version = 0; // the roots it trusts, so the primary sends newer ones
    uint64_t image_root_version = 0;    // 0 for partial verification
};
Json info_to_json(const SecondaryInfo& info);
SecondaryInfo info_from_json(const Json& json);

// IMAGE_BEGIN's body: the target whose bytes follow (name, length and hashes as the director
// lists them).
struct ImageOffer {
    std::string filepath;
    uint64_t length = 0;
    std::map<std::string, std::string> hashes;
};
Json offer_to_json(const ImageOffer& offer);
ImageOffer offer_from_json(const Json& json);
ImageOffer offer_of(const tuf::TargetFile& target);

} // namespace ota::uptane
