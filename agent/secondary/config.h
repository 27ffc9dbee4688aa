// ota-secondary's configuration file (JSON, docs/uptane.md): who the ECU is, how it verifies,
// where it listens, its key and state, its slots and boot control. Parsed strictly: unknown keys
// and wrong types are errors naming the key.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/uptane/messages.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ota::secondary {

struct BootConfig {
    std::string fw_env_config = "/etc/fw_env.config";
    // The booted slot: `rauc.slot=X` in cmdline, or the first line of booted_slot_file when set
    // (the simulated ECU keeps it in a file).
    std::string cmdline = "/proc/cmdline";
    std::string booted_slot_file;
    std::string lock_file; // libubootenv's lock; "" = none
    int tries = 3;
};

struct SecondaryConfig {
    std::string ecu_serial;
    std::string hardware_id;
    uptane::VerificationMode verification = uptane::VerificationMode::Full;
    std::optional<std::string> vehicle_id; // when set, director targets must name this vehicle
    std::string listen = "0.0.0.0:9701";   // HOST:PORT; port 0 = any free port
    std::string key;                       // PEM private key file (the ECU key)
    std::string state_dir;
    std::string director_root;      // the director's root shipped with the ECU
    std::string image_root;         // the image repository's root (full verification)
    uint64_t installed_version = 0; // release counter of the factory image
    std::map<std::string, std::string> slots;
    BootConfig boot;
    std::vector<std::string> reboot_command; // argv; empty = reboot(2)
    std::vector<std::string> health_check;   // argv; empty = always healthy
    uint64_t max_image_length = 4ull << 30;
    int timeout_s = 60; // idle limit of a connection

    std::string trust_dir() const { return state_dir + "/trust"; }
};

SecondaryConfig parse_config(const Json& json, const std::string& base_dir);
SecondaryConfig load_config(const std::string& path);

} // namespace ota::secondary
