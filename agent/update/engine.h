// The update state machine of one ECU:
//   check -> download -> install into the inactive slot (every blob verified, resumable) ->
//   whole-slot verification -> switch (set primary with bounded tries) -> reboot ->
//   boot-check: health check -> commit (mark good), or detect the bootloader's fallback.
// Every step that changes the ECU is persisted before the next one starts, so a power cut at any
// point resumes or leaves the running slot untouched.
#pragma once
#include "agent/models/model_store.h"
#include "agent/net/fetcher.h"
#include "agent/tuf/metadata.h"
#include "agent/update/config.h"
#include "agent/update/platform.h"
#include "agent/update/state.h"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ota::update {

// A step of the update as it happens, for the terminal, logs and the control socket.
struct Event {
    std::string step; // "check", "download", "verify", "write", "switch", "reboot", "commit", ...
    std::string message;
    uint64_t done = 0; // progress of download/write, when known
    uint64_t total = 0;
};
using EventSink = std::function<void(const Event&)>;

// What the signed target says about a bundle (its "custom" object, manifests/SPEC.md).
struct BundleTarget {
    tuf::TargetFile target;
    std::string hardware_id;
    std::string component;
    std::string kind; // "firmware" or "model"
    uint64_t version = 0;
    std::string image_sha256;
    uint64_t image_length = 0;
    std::string header_sha256;
    uint64_t header_length = 0;
    std::optional<uint64_t> delta_from_version;
    std::string delta_from_sha256;
};

// Reads the custom fields; throws Error(Malformed) naming the missing/invalid field.
BundleTarget parse_bundle_target(const tuf::TargetFile& target);

struct Selection {
    BundleTarget chosen;
    std::optional<BundleTarget> full; // the full bundle of the same version (delta fallback)
};

// A release target (custom "kind": "release", manifests/SPEC.md): the component versions that
// must be installed together.
struct ReleaseTarget {
    tuf::TargetFile target;
    std::string hardware_id;
    std::string id;
    uint64_t version = 0;
    std::vector<std::pair<std::string, uint64_t>> components; // component -> version
};
ReleaseTarget parse_release_target(const tuf::TargetFile& target);
bool is_release_target(const tuf::TargetFile& target);

// What one update attempt installs: one or more components, all-or-nothing. Models come first,
// the firmware (which needs a reboot) last.
struct Plan {
    std::optional<ReleaseRef> release;
    std::vector<Selection> items;
};

struct UpdateOptions {
    bool reboot = true;
    int health_timeout_s = 300;
    bool skip_health = false; // mark-good: the integrator vouches for the running system
};

class Engine {
public:
    Engine(AgentConfig config, Platform& platform, net::Fetcher& fetcher, EventSink events = {});

    // Refreshes the metadata and picks the target for this hardware newer than the installed
    // version (nullopt: up to date). Throws Error(WrongHardware) when newer targets exist only for
    // other hardware.
    std::optional<Selection> check();
    // Everything this ECU should install now: the newest release for this hardware above the
    // installed release, else the newest standalone firmware and model targets.
    std::optional<Plan> check_plan();
    // Everything up to the reboot request. Returns false when there was nothing to do.
    bool update(const UpdateOptions& options = {});
    // After boot: commit, report a fallback, or (no update pending) confirm the running slot.
    // Returns the outcome written to the state ("committed", "rolled-back", "health-failed",
    // "confirmed", "nothing-pending").
    std::string boot_check(const UpdateOptions& options = {});
    Json status();

    // Installs one bundle given as a local file or a URL. It must be a target of the verified
    // metadata (same length and SHA-256) for this hardware with a newer version: never unsigned.
    bool install(const std::string& file_or_url, const UpdateOptions& options = {});
    // Commits a pending update without running the health check (the integrator vouches).
    std::string mark_good();
    // Rolls back a model to its previous version, or an uncommitted firmware update.
    std::string rollback(const std::string& component, const UpdateOptions& options = {});

    // Install and reboot wait for this (vehicle-state gating); default: always allowed.
    void set_gate(std::function<void(const std::string& phase)> gate) { gate_ = std::move(gate); }
    models::ModelStore* model_store() { return store_.get(); }
    uint64_t component_version(const AgentState& state, const std::string& component) const;
    uint64_t installed_version(const AgentState& state) const;
    const AgentConfig& config() const { return config_; }

private:
    void emit(const std::string& step, const std::string& message, uint64_t done = 0,
              uint64_t total = 0);
    std::vector<tuf::TargetFile> refresh_targets();
    std::string download(const BundleTarget& t, const std::set<std::string>& keep = {});
    bool run_plan(Plan& plan, AgentState& state, std::vector<std::string> ready_paths,
                  const UpdateOptions& options);
    void stage(const BundleTarget& t, const std::string& bundle_path, AgentState& state);
    bool model_healthy(const std::string& name, uint64_t version, std::string* output);
    void gate(const std::string& phase);
    void install_firmware(const BundleTarget& t, const std::string& bundle_path, AgentState& state,
                          const std::string& active, const std::string& target_slot);
    void ensure_trusted_root();
    void record(AgentState& state, const std::string& outcome, const std::string& component,
                uint64_t version, const std::string& message);

    AgentConfig config_;
    Platform& platform_;
    net::Fetcher& fetcher_;
    EventSink events_;
    std::unique_ptr<models::ModelStore> store_;
    std::function<void(const std::string&)> gate_;
};

} // namespace ota::update
