#include "agent/secondary/state.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"

namespace ota::secondary {

using namespace uptane;

Json target_to_json(const tuf::TargetFile& t) {
    return Json{{"filepath", t.path},
                {"length", t.length},
                {"hashes", hashes_to_json(t.hashes)},
                {"custom", t.custom}};
}

tuf::TargetFile target_from_json(const Json& j, const std::string& what) {
    tuf::TargetFile t;
    t.path = require_string(j, "filepath", kMaxTargetNameLength, what);
    t.length = require_uint(j, "length", what);
    t.hashes = parse_hashes(require_member(j, "hashes", what), what);
    t.custom = require_member(j, "custom", what);
    return t;
}

namespace {

Json change_to_json(const std::optional<SlotChange>& c) {
    if (!c) return nullptr;
    return Json{{"slot", c->slot},
                {"from_slot", c->from_slot},
                {"target", target_to_json(c->target)},
                {"written", c->written}};
}

std::optional<SlotChange> change_from_json(const Json& j, const std::string& what) {
    if (j.is_null()) return std::nullopt;
    SlotChange c;
    c.slot = require_string(j, "slot", kMaxIdLength, what);
    c.from_slot = require_string(j, "from_slot", kMaxIdLength, what);
    c.target = target_from_json(require_member(j, "target", what), what);
    c.written = require_bool(j, "written", what);
    return c;
}

} // namespace

SecondaryState load_state(const std::string& path, uint64_t factory_version) {
    SecondaryState s;
    s.installed_version = factory_version;
    if (!file_exists(path)) return s;
    const std::string what = path;
    const Json j = parse_bounded_json(read_file(path, 1 << 20), path);
    s.report_counter = require_uint(j, "report_counter", what);
    s.installed_version = require_uint(j, "installed_version", what);
    if (!j.at("installed").is_null()) {
        // Stored in the report's own form, checked by the same parser.
        EcuVersionReport r;
        Json probe = report_to_json(r);
        probe["ecu_serial"] = "x";
        probe["hardware_id"] = "x";
        probe["installed_image"] = j["installed"];
        s.installed = report_from_json(probe).installed;
    }
    if (!j.at("instruction").is_null())
        s.instruction = target_from_json(j["instruction"], what + " instruction");
    s.image_verified = require_bool(j, "image_verified", what);
    s.staged = change_from_json(j.at("staged"), what + " staged");
    s.activated = change_from_json(j.at("activated"), what + " activated");
    if (!j.at("last_result").is_null())
        s.last_result =
            UpdateResult{require_bool(j["last_result"], "success", what),
                         require_string(j["last_result"], "filepath", kMaxTargetNameLength, what),
                         require_string(j["last_result"], "message", kMaxMessageLength, what)};
    s.attacks_detected = require_string(j, "attacks_detected", kMaxMessageLength, what);
    return s;
}

void save_state(const std::string& path, const SecondaryState& s) {
    EcuVersionReport r;
    r.installed = s.installed;
    Json j{{"report_counter", s.report_counter},
           {"installed_version", s.installed_version},
           {"installed", report_to_json(r)["installed_image"]},
           {"instruction", s.instruction ? target_to_json(*s.instruction) : Json(nullptr)},
           {"image_verified", s.image_verified},
           {"staged", change_to_json(s.staged)},
           {"activated", change_to_json(s.activated)},
           {"last_result", Json(nullptr)},
           {"attacks_detected", s.attacks_detected}};
    if (s.last_result)
        j["last_result"] = Json{{"success", s.last_result->success},
                                {"filepath", s.last_result->filepath},
                                {"message", s.last_result->message}};
    write_file_atomic(path, j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n");
}

} // namespace ota::secondary
