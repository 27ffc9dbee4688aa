#include "agent/uptane/config.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"

#include <set>
#include <tuple>

namespace ota::uptane {

namespace {

[[noreturn]] void config_error(const std::string& what, const std::string& why) {
    throw Error(ErrorKind::Config, what + ": " + why);
}

std::string path_in(const std::string& base_dir, const std::string& p) {
    if (p.empty() || p.front() == '/' || base_dir.empty()) return p;
    return join_path(base_dir, p);
}

std::string url_with_slash(std::string url) {
    if (!url.empty() && url.back() != '/') url.push_back('/');
    return url;
}

// Rethrows parsing errors of a section as configuration errors.
template <typename F> auto as_config(const std::string& what, F f) -> decltype(f()) {
    try {
        return f();
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Config) throw;
        config_error(what, e.what());
    }
}

RepositoryEndpoint parse_endpoint(const Json& j, const std::string& what,
                                  const std::string& base_dir, MetadataLimits limits,
                                  bool needs_targets) {
    require_only_keys(j, {"metadata_url", "targets_url", "trusted_root"}, what);
    RepositoryEndpoint e;
    e.metadata_url = url_with_slash(require_string(j, "metadata_url", 4096, what));
    if (needs_targets)
        e.targets_url = url_with_slash(require_string(j, "targets_url", 4096, what));
    else if (j.contains("targets_url"))
        e.targets_url = url_with_slash(require_string(j, "targets_url", 4096, what));
    e.trusted_root = path_in(base_dir, require_string(j, "trusted_root", 4096, what));
    e.limits = limits;
    return e;
}

void check_mapping(const Json& mapping) {
    // Only the basic Uptane case: every image path signed by both repositories.
    const Json basic = Json::array({Json{{"paths", Json::array({"*"})},
                                         {"repositories", Json::array({"director", "image"})}}});
    if (mapping != basic)
        config_error("mapping", "only [{\"paths\": [\"*\"], \"repositories\": [\"director\", "
                                "\"image\"]}] is supported (every image signed by both)");
}

SecondaryConfig parse_secondary(const Json& j, const std::string& what,
                                const std::string& base_dir) {
    require_only_keys(
        j,
        {"ecu_serial", "hardware_id", "address", "verification", "public_key_file", "key_scheme"},
        what);
    SecondaryConfig s;
    s.ecu_serial = require_identifier(j, "ecu_serial", what);
    s.hardware_id = require_identifier(j, "hardware_id", what);
    std::tie(s.host, s.port) = parse_address(require_string(j, "address", 256, what));
    s.verification = parse_verification_mode(require_string(j, "verification", 16, what));
    s.key.scheme = require_string(j, "key_scheme", 64, what);
    s.key.pem = read_file(path_in(base_dir, require_string(j, "public_key_file", 4096, what)),
                          kMaxPublicKeyPem);
    return s;
}

} // namespace

std::vector<EcuIdentity> UptaneConfig::vehicle_ecus() const {
    std::vector<EcuIdentity> out{{primary_serial, primary_hardware_id}};
    for (const auto& s : secondaries)
        out.push_back({s.ecu_serial, s.hardware_id});
    return out;
}

UptaneConfig parse_uptane_config(const Json& j, const std::string& base_dir) {
    return as_config("uptane configuration", [&] {
        const std::string what = "uptane configuration";
        require_only_keys(j,
                          {"vehicle_id", "primary", "state_dir", "repositories", "mapping",
                           "manifest_url", "secondaries", "secondary_timeout_s"},
                          what);
        UptaneConfig c;
        c.vehicle_id = require_identifier(j, "vehicle_id", what);
        const Json& primary = require_object(j, "primary", what);
        require_only_keys(primary, {"ecu_serial", "hardware_id", "key"}, what + " primary");
        c.primary_serial = require_identifier(primary, "ecu_serial", what + " primary");
        c.primary_hardware_id = require_identifier(primary, "hardware_id", what + " primary");
        c.primary_key = path_in(base_dir, require_string(primary, "key", 4096, what + " primary"));
        c.state_dir = path_in(base_dir, require_string(j, "state_dir", 4096, what));
        const Json& repos = require_object(j, "repositories", what);
        require_only_keys(repos, {"director", "image"}, what + " repositories");
        c.director =
            parse_endpoint(require_object(repos, "director", what), "repositories.director",
                           base_dir, MetadataLimits::director(), false);
        c.image = parse_endpoint(require_object(repos, "image", what), "repositories.image",
                                 base_dir, MetadataLimits::image(), true);
        if (j.contains("mapping")) check_mapping(j["mapping"]);
        if (j.contains("manifest_url"))
            c.manifest_url = require_string(j, "manifest_url", 4096, what);
        if (j.contains("secondary_timeout_s")) {
            uint64_t t = require_uint(j, "secondary_timeout_s", what);
            if (t < 1 || t > 3600) config_error(what, "secondary_timeout_s must be 1-3600");
            c.secondary_timeout_s = static_cast<int>(t);
        }
        if (j.contains("secondaries")) {
            const Json& list = j["secondaries"];
            if (!list.is_array() || list.size() > 63)
                config_error(what, "\"secondaries\" must be an array of at most 63 ECUs");
            for (size_t i = 0; i < list.size(); ++i)
                c.secondaries.push_back(
                    parse_secondary(list[i], "secondaries[" + std::to_string(i) + "]", base_dir));
        }
        std::set<std::string> serials{c.primary_serial};
        for (const auto& s : c.secondaries)
            if (!serials.insert(s.ecu_serial).second)
                config_error(what, "ECU serial " + s.ecu_serial + " is configured twice");
        return c;
    });
}

UptaneConfig load_uptane_config(const std::string& path) {
    return parse_uptane_config(parse_bounded_json(read_file(path, 1 << 20), path),
                               parent_directory(path));
}

} // namespace ota::uptane
