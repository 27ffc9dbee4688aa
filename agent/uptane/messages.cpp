#include "agent/uptane/messages.h"

#include "agent/common/error.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/protocol.h"

namespace ota::uptane {

const char* verification_mode_name(VerificationMode mode) {
    return mode == VerificationMode::Full ? "full" : "partial";
}

VerificationMode parse_verification_mode(const std::string& name) {
    if (name == "full") return VerificationMode::Full;
    if (name == "partial") return VerificationMode::Partial;
    throw Error(ErrorKind::Config,
                "verification must be \"full\" or \"partial\", not \"" + name.substr(0, 32) + "\"");
}

Json info_to_json(const SecondaryInfo& i) {
    return Json{{"protocol_version", protocol::kVersion},
                {"ecu_serial", i.ecu_serial},
                {"hardware_id", i.hardware_id},
                {"verification", verification_mode_name(i.verification)},
                {"public_key", public_key_to_json(i.key)},
                {"director_root_version", i.director_root_version},
                {"image_root_version", i.image_root_version}};
}

SecondaryInfo info_from_json(const Json& j) {
    const std::string what = "GET_INFO answer";
    require_only_keys(j,
                      {"ok", "protocol_version", "ecu_serial", "hardware_id", "verification",
                       "public_key", "director_root_version", "image_root_version"},
                      what);
    if (require_uint(j, "protocol_version", what) != protocol::kVersion)
        throw Error(ErrorKind::Unsupported, "the secondary speaks another protocol version");
    SecondaryInfo i;
    i.ecu_serial = require_identifier(j, "ecu_serial", what);
    i.hardware_id = require_identifier(j, "hardware_id", what);
    try {
        i.verification = parse_verification_mode(require_string(j, "verification", 16, what));
    } catch (const Error& e) {
        throw Error(ErrorKind::Malformed, what + ": " + e.what());
    }
    i.key = public_key_from_json(require_member(j, "public_key", what), what + " public_key");
    i.director_root_version = require_uint(j, "director_root_version", what);
    i.image_root_version = require_uint(j, "image_root_version", what);
    return i;
}

Json offer_to_json(const ImageOffer& o) {
    return Json{
        {"filepath", o.filepath}, {"length", o.length}, {"hashes", hashes_to_json(o.hashes)}};
}

ImageOffer offer_from_json(const Json& j) {
    const std::string what = "IMAGE_BEGIN";
    require_only_keys(j, {"filepath", "length", "hashes"}, what);
    ImageOffer o;
    o.filepath = require_string(j, "filepath", kMaxTargetNameLength, what);
    o.length = require_uint(j, "length", what);
    o.hashes = parse_hashes(require_member(j, "hashes", what), what);
    return o;
}

ImageOffer offer_of(const tuf::TargetFile& t) {
    return ImageOffer{t.path, t.length, t.hashes};
}

} // namespace ota::uptane
