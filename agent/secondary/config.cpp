#include "agent/secondary/config.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/secondary_client.h"

namespace ota::secondary {

using namespace uptane;

namespace {

std::string path_in(const std::string& base_dir, const std::string& p) {
    if (p.empty() || p.front() == '/' || base_dir.empty()) return p;
    return join_path(base_dir, p);
}

std::vector<std::string> argv_of(const Json& j, const char* name, const std::string& what) {
    const Json& v = require_member(j, name, what);
    if (!v.is_array() || v.size() > 64)
        throw Error(ErrorKind::Config, what + ": \"" + name + "\" must be an array of strings");
    std::vector<std::string> out;
    for (const auto& a : v) {
        if (!a.is_string())
            throw Error(ErrorKind::Config, what + ": \"" + name + "\" must hold strings");
        out.push_back(a.get<std::string>());
    }
    return out;
}

SecondaryConfig parse(const Json& j, const std::string& base) {
    const std::string what = "ota-secondary configuration";
    require_only_keys(j,
                      {"ecu_serial", "hardware_id", "verification", "vehicle_id", "listen", "key",
                       "state_dir", "director_root", "image_root", "installed_version", "slots",
                       "bootloader", "reboot_command", "health_check", "max_image_length",
                       "timeout_s"},
                      what);
    SecondaryConfig c;
    c.ecu_serial = require_identifier(j, "ecu_serial", what);
    c.hardware_id = require_identifier(j, "hardware_id", what);
    c.verification = parse_verification_mode(require_string(j, "verification", 16, what));
    if (j.contains("vehicle_id")) c.vehicle_id = require_identifier(j, "vehicle_id", what);
    if (j.contains("listen")) c.listen = require_string(j, "listen", 256, what);
    parse_address(c.listen); // checked now, used when serving
    c.key = path_in(base, require_string(j, "key", 4096, what));
    c.state_dir = path_in(base, require_string(j, "state_dir", 4096, what));
    c.director_root = path_in(base, require_string(j, "director_root", 4096, what));
    if (c.verification == VerificationMode::Full)
        c.image_root = path_in(base, require_string(j, "image_root", 4096, what));
    else if (j.contains("image_root"))
        throw Error(ErrorKind::Config, what + ": \"image_root\" is only used by full verification");
    if (j.contains("installed_version"))
        c.installed_version = require_uint(j, "installed_version", what);
    const Json& slots = require_object(j, "slots", what);
    if (slots.size() != 2)
        throw Error(ErrorKind::Config, what + ": \"slots\" must name exactly two slots");
    for (auto it = slots.begin(); it != slots.end(); ++it) {
        if (!is_identifier(it.key()) || !it->is_string())
            throw Error(ErrorKind::Config, what + ": slots map names to device paths");
        c.slots[it.key()] = path_in(base, it->get<std::string>());
    }
    if (j.contains("bootloader")) {
        const Json& b = j["bootloader"];
        const std::string bwhat = what + " bootloader";
        require_only_keys(b, {"fw_env_config", "cmdline", "booted_slot_file", "lock_file", "tries"},
                          bwhat);
        if (b.contains("fw_env_config"))
            c.boot.fw_env_config = path_in(base, require_string(b, "fw_env_config", 4096, bwhat));
        if (b.contains("cmdline")) c.boot.cmdline = require_string(b, "cmdline", 4096, bwhat);
        if (b.contains("booted_slot_file"))
            c.boot.booted_slot_file =
                path_in(base, require_string(b, "booted_slot_file", 4096, bwhat));
        if (b.contains("lock_file"))
            c.boot.lock_file = path_in(base, require_string(b, "lock_file", 4096, bwhat));
        if (b.contains("tries")) {
            uint64_t t = require_uint(b, "tries", bwhat);
            if (t < 1 || t > 9) throw Error(ErrorKind::Config, bwhat + ": tries must be 1-9");
            c.boot.tries = static_cast<int>(t);
        }
    }
    if (j.contains("reboot_command")) c.reboot_command = argv_of(j, "reboot_command", what);
    if (j.contains("health_check")) c.health_check = argv_of(j, "health_check", what);
    if (j.contains("max_image_length"))
        c.max_image_length = require_uint(j, "max_image_length", what);
    if (j.contains("timeout_s")) {
        uint64_t t = require_uint(j, "timeout_s", what);
        if (t < 1 || t > 3600) throw Error(ErrorKind::Config, what + ": timeout_s must be 1-3600");
        c.timeout_s = static_cast<int>(t);
    }
    return c;
}

} // namespace

SecondaryConfig parse_config(const Json& json, const std::string& base_dir) {
    try {
        return parse(json, base_dir);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Config) throw;
        throw Error(ErrorKind::Config, e.what());
    }
}

SecondaryConfig load_config(const std::string& path) {
    return parse_config(parse_bounded_json(read_file(path, 1 << 20), path), parent_directory(path));
}

} // namespace ota::secondary
