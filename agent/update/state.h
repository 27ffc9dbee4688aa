// What the agent remembers across reboots and power cuts, in state_dir/agent-state.json, always
// replaced atomically and then copied to agent-state.json.bak (ota::DurableFile). The trusted TUF
// metadata lives next to it in state_dir/metadata/.
#pragma once
#include "agent/common/canonical_json.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ota::update {

struct InstalledComponent {
    uint64_t version = 0;
    std::string slot;         // firmware: the slot it runs from
    std::string image_sha256; // of the installed image, when known
};

// A model activated as part of a release whose firmware waits for its reboot: committed or rolled
// back together with the firmware.
struct PendingModel {
    std::string name;
    uint64_t version = 0;
};

// The release (a set of components that go together) installed or being installed.
struct ReleaseRef {
    std::string id;
    uint64_t version = 0;
};

enum class PendingStage {
    Installing, // the target slot is marked bad and being written (resumable)
    Switched,   // written, verified, set primary: waiting for the reboot into it
};

struct PendingUpdate {
    PendingStage stage = PendingStage::Installing;
    std::string component;
    uint64_t version = 0;
    std::string target_path;  // TUF target name of the bundle
    std::string slot;         // the slot being written / to boot
    std::string from_slot;    // the slot that was running
    std::string image_sha256; // expected image after install
    std::string boot_id;      // switched: the boot in which the switch was made (hal/boot_id.h)
    int health_failures = 0;
    std::vector<PendingModel> models;  // activated with this firmware (releases)
    std::optional<ReleaseRef> release; // the release this firmware belongs to
};

struct LastResult {
    std::string outcome; // "committed", "rolled-back", "failed", "up-to-date", "installed"
    std::string component;
    uint64_t version = 0;
    std::string message;
    int64_t time = 0;
};

struct AgentState {
    std::map<std::string, InstalledComponent> installed;
    std::optional<PendingUpdate> pending;
    std::map<std::string, std::set<uint64_t>> failed_versions; // never retried automatically
    std::optional<LastResult> last_result;
    std::optional<ReleaseRef> release; // the last release installed completely

    Json to_json() const;
    static AgentState from_json(const Json& j);
};

// Missing file = fresh state. A corrupt file falls back to its copy with a warning; when both are
// unusable it is an error naming both (never silently reset: it could hide an interrupted
// install).
AgentState load_state(const std::string& state_dir);
void save_state(const std::string& state_dir, const AgentState& state);

} // namespace ota::update
