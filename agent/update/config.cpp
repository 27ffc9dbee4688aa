#include "agent/update/config.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "hal/hash_engine.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace ota::update {

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
    throw Error(ErrorKind::Config, "configuration: \"" + key + "\" " + why);
}

void check_keys(const Json& obj, const std::string& where, const std::set<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (!allowed.count(it.key())) bad(where + it.key(), "is not a known setting");
}

std::string str(const Json& obj, const std::string& where, const char* key, bool required,
                const std::string& def = "") {
    auto it = obj.find(key);
    if (it == obj.end()) {
        if (required) bad(where + key, "is required");
        return def;
    }
    if (!it->is_string()) bad(where + key, "must be a string");
    return it->get<std::string>();
}

uint64_t num(const Json& obj, const std::string& where, const char* key, uint64_t def,
             uint64_t min = 0, uint64_t max = UINT64_MAX) {
    auto it = obj.find(key);
    if (it == obj.end()) return def;
    if (!it->is_number_unsigned()) bad(where + key, "must be a non-negative integer");
    uint64_t v = it->get<uint64_t>();
    if (v < min || v > max)
        bad(where + key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return v;
}

bool flag(const Json& obj, const std::string& where, const char* key, bool def) {
    auto it = obj.find(key);
    if (it == obj.end()) return def;
    if (!it->is_boolean()) bad(where + key, "must be true or false");
    return it->get<bool>();
}

bool valid_model_name(const std::string& n) {
    return !n.empty() && n.size() <= 64 && n.front() != '.' &&
           n.find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
               std::string::npos;
}

std::vector<std::string> argv(const Json& obj, const std::string& where, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    if (it->is_string()) return {"/bin/sh", "-c", it->get<std::string>()};
    if (!it->is_array() || it->empty()) bad(where + key, "must be a command string or argv array");
    std::vector<std::string> out;
    for (const auto& a : *it) {
        if (!a.is_string()) bad(where + key, "argv entries must be strings");
        out.push_back(a.get<std::string>());
    }
    return out;
}

std::string url_dir(const std::string& key, std::string url) {
    if (url.empty()) bad(key, "must not be empty");
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0 &&
        url.rfind("file://", 0) != 0)
        bad(key, "must be an http://, https:// or file:// URL");
    if (url.back() != '/') url.push_back('/');
    return url;
}

// An octal string such as "0660": who may connect to the control socket.
uint32_t socket_mode(const Json& j) {
    const std::string s = str(j, "", "control_socket_mode", false, "0660");
    if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos)
        bad("control_socket_mode", "must be an octal file mode such as \"0660\"");
    const auto mode = static_cast<uint32_t>(std::stoul(s, nullptr, 8));
    if (mode & 0111) bad("control_socket_mode", "must not have execute bits");
    return mode;
}

std::string resolve(const std::string& base_dir, const std::string& path) {
    if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
    return join_path(base_dir, path);
}

} // namespace

AgentConfig parse_config(const Json& j, const std::string& base_dir) {
    if (!j.is_object()) throw Error(ErrorKind::Config, "configuration must be a JSON object");
    check_keys(
        j, "",
        {"hardware_id",  "component",       "state_dir",           "trusted_root",
         "metadata_url", "targets_url",     "installed_version",   "slots",
         "bootloader",   "health_check",    "reboot_command",      "transport",
         "limits",       "poll_interval_s", "poll_jitter_s",       "models",
         "vehicle",      "control_socket",  "control_socket_mode", "control_socket_group",
         "report",       "hash_engine",     "download_mode",       "install_checkpoint_bytes",
         "uptane"});
    AgentConfig c;
    c.hardware_id = str(j, "", "hardware_id", true);
    if (c.hardware_id.empty()) bad("hardware_id", "must not be empty");
    c.component = str(j, "", "component", false, "rootfs");
    c.state_dir = resolve(base_dir, str(j, "", "state_dir", true));
    c.uptane_config = str(j, "", "uptane", false);
    if (j.contains("uptane") && c.uptane_config.empty()) bad("uptane", "must not be empty");
    if (!c.uptane_config.empty()) {
        // The director and the image repository replace the single repository.
        c.uptane_config = resolve(base_dir, c.uptane_config);
        for (const char* key : {"trusted_root", "metadata_url", "targets_url"})
            if (j.contains(key))
                bad(key, "must not be set with \"uptane\" (its repositories are in " +
                             c.uptane_config + ")");
    } else {
        c.trusted_root = resolve(base_dir, str(j, "", "trusted_root", true));
        c.metadata_url = url_dir("metadata_url", str(j, "", "metadata_url", true));
        c.targets_url = url_dir("targets_url", str(j, "", "targets_url", true));
    }
    c.installed_version = num(j, "", "installed_version", 0);
    c.poll_interval_s = num(j, "", "poll_interval_s", 3600, 1);
    c.poll_jitter_s = num(j, "", "poll_jitter_s", 300);
    c.health_check = argv(j, "", "health_check");
    c.reboot_command = argv(j, "", "reboot_command");

    const Json& bl = j.contains("bootloader") ? j["bootloader"] : Json::object();
    if (!bl.is_object()) bad("bootloader", "must be an object");
    check_keys(bl, "bootloader.", {"type", "fw_env_config", "cmdline", "boot_id", "tries"});
    c.bootloader.type = str(bl, "bootloader.", "type", false, "uboot");
    if (c.bootloader.type != "uboot") bad("bootloader.type", "must be \"uboot\"");
    c.bootloader.fw_env_config =
        resolve(base_dir, str(bl, "bootloader.", "fw_env_config", false, "/etc/fw_env.config"));
    c.bootloader.cmdline =
        resolve(base_dir, str(bl, "bootloader.", "cmdline", false, "/proc/cmdline"));
    c.bootloader.boot_id = resolve(
        base_dir, str(bl, "bootloader.", "boot_id", false, "/proc/sys/kernel/random/boot_id"));
    c.bootloader.tries = static_cast<int>(num(bl, "bootloader.", "tries", 3, 1, 9));

    if (!j.contains("slots")) bad("slots", "is required");
    const Json& slots = j["slots"];
    if (!slots.is_object() || slots.size() != 2)
        bad("slots", "must map exactly two slot names to devices");
    for (auto it = slots.begin(); it != slots.end(); ++it) {
        if (!it->is_string()) bad("slots." + it.key(), "must be a device path");
        c.slots[it.key()] = resolve(base_dir, it->get<std::string>());
    }

    if (j.contains("transport")) {
        const Json& t = j["transport"];
        if (!t.is_object()) bad("transport", "must be an object");
        check_keys(t, "transport.",
                   {"ca_file", "pinned_public_key", "client_cert", "client_key",
                    "connect_timeout_s", "low_speed_bytes", "low_speed_time_s",
                    "max_bytes_per_second", "retries", "retry_base_ms", "retry_max_ms"});
        auto& o = c.transport;
        o.ca_file = resolve(base_dir, str(t, "transport.", "ca_file", false));
        o.pinned_public_key = str(t, "transport.", "pinned_public_key", false);
        o.client_cert = resolve(base_dir, str(t, "transport.", "client_cert", false));
        o.client_key = resolve(base_dir, str(t, "transport.", "client_key", false));
        o.connect_timeout_s =
            static_cast<long>(num(t, "transport.", "connect_timeout_s", 15, 1, 600));
        o.low_speed_bytes = static_cast<long>(num(t, "transport.", "low_speed_bytes", 1024, 1));
        o.low_speed_time_s =
            static_cast<long>(num(t, "transport.", "low_speed_time_s", 30, 1, 3600));
        o.max_bytes_per_second = num(t, "transport.", "max_bytes_per_second", 0);
        o.retries = static_cast<int>(num(t, "transport.", "retries", 0, 0, 100));
        o.retry_base_ms = static_cast<long>(num(t, "transport.", "retry_base_ms", 500, 1, 600000));
        o.retry_max_ms = static_cast<long>(num(t, "transport.", "retry_max_ms", 30000, 1, 3600000));
        if (o.client_cert.empty() != o.client_key.empty())
            bad("transport.client_cert", "and transport.client_key must be given together");
    }
    if (j.contains("limits")) {
        const Json& l = j["limits"];
        if (!l.is_object()) bad("limits", "must be an object");
        check_keys(l, "limits.",
                   {"max_bundle_length", "max_timestamp_length", "max_root_length",
                    "storage_reserve_bytes"});
        c.max_bundle_length = num(l, "limits.", "max_bundle_length", c.max_bundle_length, 1);
        c.max_timestamp_length =
            num(l, "limits.", "max_timestamp_length", c.max_timestamp_length, 1);
        c.max_root_length = num(l, "limits.", "max_root_length", c.max_root_length, 1);
        c.storage_reserve_bytes =
            num(l, "limits.", "storage_reserve_bytes", c.storage_reserve_bytes);
    }
    if (j.contains("models")) {
        const Json& m = j["models"];
        if (!m.is_object()) bad("models", "must be an object");
        check_keys(m, "models.", {"store", "health_timeout_s", "components"});
        c.models.store = resolve(base_dir, str(m, "models.", "store", true));
        if (c.models.store.empty()) bad("models.store", "must not be empty");
        c.models.health_timeout_s =
            static_cast<int>(num(m, "models.", "health_timeout_s", 120, 1, 3600));
        if (m.contains("components")) {
            const Json& comps = m["components"];
            if (!comps.is_object()) bad("models.components", "must map model names to settings");
            for (auto it = comps.begin(); it != comps.end(); ++it) {
                const std::string where = "models.components." + it.key();
                if (!valid_model_name(it.key()))
                    bad(where, "is not a valid model name ([A-Za-z0-9._-], 1-64)");
                if (!it->is_object()) bad(where, "must be an object");
                check_keys(*it, where + ".", {"health_check"});
                c.models.models[it.key()].health_check = argv(*it, where + ".", "health_check");
            }
        }
    }
    if (j.contains("vehicle")) {
        const Json& v = j["vehicle"];
        if (!v.is_object()) bad("vehicle", "must be an object");
        check_keys(v, "vehicle.",
                   {"type", "file", "command", "command_timeout_s", "max_age_s", "require_parked",
                    "require_ignition_off", "min_battery_percent", "require_consent", "poll_ms",
                    "max_wait_s"});
        auto& p = c.vehicle;
        p.type = str(v, "vehicle.", "type", false, "none");
        if (p.type != "none" && p.type != "file" && p.type != "command")
            bad("vehicle.type", "must be \"none\", \"file\" or \"command\"");
        p.file = resolve(base_dir, str(v, "vehicle.", "file", p.type == "file"));
        p.command = argv(v, "vehicle.", "command");
        if (p.type == "command" && p.command.empty()) bad("vehicle.command", "is required");
        p.command_timeout_s = static_cast<int>(num(v, "vehicle.", "command_timeout_s", 10, 1, 600));
        p.max_age_s = num(v, "vehicle.", "max_age_s", 10, 1, 86400);
        p.require_parked = flag(v, "vehicle.", "require_parked", true);
        p.require_ignition_off = flag(v, "vehicle.", "require_ignition_off", false);
        p.min_battery_percent =
            static_cast<int>(num(v, "vehicle.", "min_battery_percent", 0, 0, 100));
        p.require_consent = flag(v, "vehicle.", "require_consent", false);
        p.poll_ms = num(v, "vehicle.", "poll_ms", 1000, 10, 600000);
        p.max_wait_s = num(v, "vehicle.", "max_wait_s", 0);
    }
    c.control_socket = resolve(base_dir, str(j, "", "control_socket", false));
    if (c.control_socket.size() > 100)
        bad("control_socket", "is longer than a Unix socket path may be");
    c.control_socket_mode = socket_mode(j);
    c.control_socket_group = str(j, "", "control_socket_group", false);
    if (j.contains("report")) {
        const Json& r = j["report"];
        if (!r.is_object()) bad("report", "must be an object");
        check_keys(r, "report.", {"url", "device_key", "ecu_serial"});
        c.report.url = str(r, "report.", "url", true);
        if (c.report.url.rfind("http://", 0) != 0 && c.report.url.rfind("https://", 0) != 0)
            bad("report.url", "must be an http:// or https:// URL");
        c.report.device_key = resolve(base_dir, str(r, "report.", "device_key", true));
        c.report.ecu_serial = str(r, "report.", "ecu_serial", false, c.hardware_id);
    }
    c.hash_engine = str(j, "", "hash_engine", false, "auto");
    if (!hal::is_hash_engine_setting(c.hash_engine))
        bad("hash_engine", "must be \"auto\", \"mbedtls\", \"openssl\" or \"kernel\"");
    const std::string mode = str(j, "", "download_mode", false, "staged");
    if (mode != "stream" && mode != "staged")
        bad("download_mode", "must be \"stream\" or \"staged\"");
    c.download_mode = mode == "stream" ? DownloadMode::Stream : DownloadMode::Staged;
    c.install_checkpoint_bytes =
        num(j, "", "install_checkpoint_bytes", c.install_checkpoint_bytes, 64 << 10, 1ull << 30);
    return c;
}

// The configuration may name any path, even a FIFO or a device another user controls: opening
// without O_NONBLOCK would wait for a writer forever, so only a regular file is read.
static std::string read_config_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd)
        throw Error(ErrorKind::Config,
                    "cannot read configuration: cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(ErrorKind::Config,
                    "cannot read configuration: " + path + " is not a regular file");
    constexpr uint64_t kMaxConfig = 1 << 20;
    if (static_cast<uint64_t>(st.st_size) > kMaxConfig)
        throw Error(ErrorKind::Config, "cannot read configuration: " + path + " is larger than " +
                                           std::to_string(kMaxConfig) + " bytes");
    std::string text(static_cast<size_t>(st.st_size), '\0');
    try {
        text.resize(read_full(fd.get(), text.data(), text.size(), path));
    } catch (const Error& e) {
        throw Error(ErrorKind::Config, "cannot read configuration: " + std::string(e.what()));
    }
    return text;
}

AgentConfig load_config(const std::string& path) {
    const std::string text = read_config_file(path);
    Json j;
    try {
        j = parse_json(text, path);
    } catch (const Error& e) {
        throw Error(ErrorKind::Config, e.what());
    }
    return parse_config(j, parent_directory(path));
}

} // namespace ota::update
