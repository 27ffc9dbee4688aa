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
    std::string type = "uboot";                              // the only backend so far
    std::string fw_env_config = "/etc/fw_env.config";        // where the U-Boot environment lives
    std::string cmdline = "/proc/cmdline";                   // where rauc.slot= is read
    std::string boot_id = "/proc/sys/kernel/random/boot_id"; // changes at every boot
    int tries = 3;                                           // boot attempts of a new slot
};

// Model store (agent/models): where models live and how each one is health-checked.
struct ModelSettings {
    std::vector<std::string> health_check; // argv; empty = healthy; env OTA_MODEL_NAME/VERSION/DIR
};
struct ModelsConfig {
    std::string store;                           // empty = no model store on this ECU
    std::map<std::string, ModelSettings> models; // known models (others: no health check)
    int health_timeout_s = 120;
};

// When the vehicle allows installing and rebooting (downloads are never gated).
struct VehiclePolicy {
    // "none" (always allowed), "file" (a JSON document another process keeps up to date) or
    // "command" (a program that prints it): hal/json_vehicle_state.h.
    std::string type = "none";
    std::string file;                 // file: the JSON state file
    std::vector<std::string> command; // command: argv
    int command_timeout_s = 10;
    uint64_t max_age_s = 10; // a state whose "time" is older than this is stale: not safe
    bool require_parked = true;
    bool require_ignition_off = false;
    int min_battery_percent = 0;
    bool require_consent = false; // HMI consent (vehicle signal or the control socket's approve)
    uint64_t poll_ms = 1000;      // re-read interval while waiting
    uint64_t max_wait_s = 0;      // give up (and retry at the next poll) after this; 0 = wait
};

// Signed status report after each attempt (the start of Uptane's version report).
struct ReportConfig {
    std::string url;        // empty = no report
    std::string device_key; // PEM private key (ECDSA P-256) the report is signed with
    std::string ecu_serial; // default: hardware_id
};

// How a bundle from the network reaches the slot: staged (the whole bundle is downloaded first,
// also while driving, and checked before anything is written: needs its size free on disk), or
// streamed (no copy on disk; writing, and so the download, waits for the vehicle policy, and a
// bundle refused half-way leaves the inactive slot marked bad).
enum class DownloadMode { Stream, Staged };

struct AgentConfig {
    std::string hardware_id;
    std::string component = "rootfs"; // firmware component this ECU's slots hold
    std::string state_dir;
    std::string trusted_root;                 // initial root.json shipped with the image
    std::string metadata_url;                 // ends with '/'
    std::string targets_url;                  // ends with '/'
    uint64_t installed_version = 0;           // factory version, until the agent commits one
    std::map<std::string, std::string> slots; // slot name -> block device or image file
    BootloaderConfig bootloader;
    std::vector<std::string> health_check;   // argv; empty = always healthy
    std::vector<std::string> reboot_command; // argv, run after sync(); empty = reboot(2)
    net::TransportOptions transport;
    uint64_t max_bundle_length = 4ull << 30; // refuse targets larger than this
    uint64_t max_timestamp_length = 16 * 1024;
    uint64_t max_root_length = 512 * 1024;
    // Daemon settings.
    uint64_t poll_interval_s = 3600;
    uint64_t poll_jitter_s = 300;

    ModelsConfig models;
    VehiclePolicy vehicle;
    std::string control_socket;          // Unix socket of the daemon's control API; empty = none
    uint32_t control_socket_mode = 0660; // who may connect (and so watch)
    std::string control_socket_group;    // besides root, who may send commands; empty = root only
    // Free space kept on the download and model filesystems beyond what an update needs, for the
    // agent's state and journals (an update that would eat into it is refused before it starts).
    uint64_t storage_reserve_bytes = 1 << 20;
    ReportConfig report;
    // SHA-2 code for every hash the agent computes: auto, mbedtls, openssl or kernel
    // (hal/hash_engine.h).
    std::string hash_engine = "auto";
    DownloadMode download_mode = DownloadMode::Staged;
    // The slot is synced and the install journal saved after this many written bytes: the most
    // an install repeats after a power cut (and, streamed, downloads again).
    uint64_t install_checkpoint_bytes = 8ull << 20;
    // The Uptane primary's configuration file (docs/uptane.md); empty = a plain TUF client of
    // metadata_url. When set, the agent is the vehicle's primary ECU: director + image repository.
    std::string uptane_config;

    std::string metadata_dir() const { return state_dir + "/metadata"; }
};

// Throws Error(Config) with the offending key in the message.
AgentConfig parse_config(const Json& json, const std::string& base_dir);
AgentConfig load_config(const std::string& path);

} // namespace ota::update
