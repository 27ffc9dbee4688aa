// The vertical slice as the user runs it: a simulated ECU (ota-sim), a signed repository
// (ota-publish) served by a real nginx on 127.0.0.1, and the agent (ota-agent) with its own
// configuration and state directory, all in one temporary directory.
#pragma once
#include "agent/common/canonical_json.h"
#include "support/test_support.h"

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace ota::test::slice {

// Small images keep the tests quick; the slot is larger than the image, as on a real ECU.
constexpr uint64_t kImageSize = 4ull << 20;
constexpr uint64_t kSlotSize = 8ull << 20;
constexpr uint64_t kImageSeed = 7;
constexpr const char* kHardwareId = "demo-ecu";

struct Result {
    int status = -1;
    std::string output; // stdout and stderr
};

// Single-quoted for /bin/sh.
std::string quote(const std::string& s);
Result run(const std::string& command);

// nginx serving `root` on a free 127.0.0.1 port, through scripts/serve-repo.sh (a private
// configuration in `run_dir`); stopped when destroyed.
class Nginx {
public:
    Nginx(const std::string& root, const std::string& run_dir);
    ~Nginx();
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;
    int port() const { return port_; }

private:
    std::string run_dir_;
    int port_ = 0;
};

// Everything that must stay as it was when the agent rejects an update.
struct DeviceSnapshot {
    std::string slot_a_sha256;
    std::string slot_b_sha256;
    std::string env_sha256; // uboot.env, the boot configuration
    std::string booted_slot;
    std::map<std::string, std::string> metadata_sha256; // state/metadata/<file>
};

class Slice {
public:
    // Slot A holds image version 1, the repository is initialised (no targets yet) and served,
    // and agent.json trusts the repository's first root (copied, as shipped with the ECU).
    Slice();

    std::string path(const std::string& relative) const { return tmp_.file(relative); }
    std::string ecu_dir() const { return path("ecu"); }
    std::string repo_dir() const { return path("repo"); }
    std::string state_dir() const { return path("state"); }
    std::string config() const { return path("agent.json"); }
    int port() const { return nginx_->port(); }

    // `ota-sim make-image` of this version and health (made once, then reused).
    std::string image(uint64_t version, const std::string& health = "ok");
    // `ota-publish release`: the full bundle, and a delta from image version 1 if asked.
    void release(const std::string& image_path, uint64_t version,
                 const std::string& hardware_id = kHardwareId, bool delta_from_v1 = false);

    // Writes an agent configuration; returns its path.
    std::string write_config(const std::string& name, int port,
                             uint64_t installed_version = 1) const;

    // `ota-agent --config CONFIG ARGS`, optionally behind a wrapper such as faketime.
    Result agent(const std::string& args, const std::string& config = "",
                 const std::string& wrapper = "") const;
    Result publish(const std::string& args) const;
    Result sim(const std::string& args) const;

    // The environment as Debian's fw_printenv reads it.
    std::map<std::string, std::string> printenv() const;
    // `ota-agent status --json`.
    Json status() const;
    std::string booted_slot() const;
    bool reboot_requested() const;

    DeviceSnapshot snapshot() const;

private:
    TempDir tmp_; // declared first: removed after nginx has stopped
    std::unique_ptr<Nginx> nginx_;
    std::map<std::string, std::string> images_;
};

// Asserts that a rejected update left the ECU as it was: the agent exited 1 naming
// `error_kind` (as printed, e.g. "bad-signature") and a message containing `message`; slots,
// environment, booted slot and trusted metadata are byte-identical to `before`. Trusted metadata
// files listed in `may_advance` are the exception: they may instead equal the server's current,
// validly signed copy (TUF persists a verified timestamp/snapshot before the next role).
void require_rejected(const Slice& slice, const Result& result, const std::string& error_kind,
                      const std::string& message, const DeviceSnapshot& before,
                      const std::set<std::string>& may_advance = {});

} // namespace ota::test::slice
