// The primary's Uptane configuration (docs/uptane.md): the vehicle, the primary ECU, the
// repository mapping (director and image repository: URLs and the roots shipped with the ECU),
// where version manifests go, and the secondaries. Parsed strictly: unknown keys and wrong types
// are errors naming the key.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/uptane/repositories.h"
#include "agent/uptane/secondary_update.h"

#include <string>
#include <vector>

namespace ota::uptane {

struct UptaneConfig {
    std::string vehicle_id;
    std::string primary_serial;
    std::string primary_hardware_id;
    std::string primary_key; // PEM private key file; its type gives the signature scheme
    std::string state_dir;   // the primary's Uptane state: trust/ (both repositories), counters
    std::string trust_dir() const { return state_dir + "/trust"; }
    RepositoryEndpoint director;
    RepositoryEndpoint image;
    std::string manifest_url; // where the vehicle version manifest is POSTed ("" = not sent)
    std::vector<SecondaryConfig> secondaries;
    int secondary_timeout_s = 60;

    // The primary and every secondary: the ECUs director instructions may name.
    std::vector<EcuIdentity> vehicle_ecus() const;
};

// base_dir: relative file names are taken from there (the configuration file's folder).
UptaneConfig parse_uptane_config(const Json& json, const std::string& base_dir);
UptaneConfig load_uptane_config(const std::string& path);

} // namespace ota::uptane
