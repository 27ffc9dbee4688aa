// The agent's configuration file (JSON, documented in docs/configuration.md). Parsed strictly:
// unknown keys and wrong types are errors that name the key, so a typo cannot silently disable a
// safety setting.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/net/curl_fetcher.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ota::update {

struct BootloaderConfig {
    std::string type = "uboot";                      // "uboot" or "sim"
    std::string fw_env_config = "/etc/fw_env.config"; // uboot
    std::string cmdline = "/proc/cmdline";            // uboot: where rauc.slot= is read
    std::string sim_dir;                              // sim: the simulated ECU's directory
    int tries = 3;                                    // boot attempts of a new slot
};

struct AgentConfig {
    std::string hardware_id;
    std::string component = "rootfs";  // firmware component this ECU's slots hold
    std::string state_dir;
    std::string trusted_root;          // initial root.json shipped with the image
    std::string metadata_url;          // ends with '/'
    std::string targets_url;           // ends with '/'
    uint64_t installed_version = 0;    // factory version, until the agent commits one
    std::map<std::string, std::string> slots; // slot name -> block device or image file
    BootloaderConfig bootloader;
    std::vector<std::string> health_check;    // argv; empty = always healthy
    std::vector<std::string> reboot_command;  // argv; empty = reboot(2) (uboot) / recorded (sim)
    net::TransportOptions transport;
    uint64_t max_bundle_length = 4ull << 30;  // refuse targets larger than this
    uint64_t max_timestamp_length = 16 * 1024;
    uint64_t max_root_length = 512 * 1024;
    // Daemon settings (issue 7 builds on them).
    uint64_t poll_interval_s = 3600;
    uint64_t poll_jitter_s = 300;

    std::string metadata_dir() const { return state_dir + "/metadata"; }
};

// Throws Error(Config) with the offending key in the message.
AgentConfig parse_config(const Json& json, const std::string& base_dir);
AgentConfig load_config(const std::string& path);

} // namespace ota::update
