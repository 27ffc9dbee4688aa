// What ota-secondary remembers between requests and across reboots (state_dir/state.json,
// replaced atomically): the report counter, what is installed, the instruction it accepted, and
// where an update stands (image received, slot written, boot order switched).
#pragma once
#include "agent/tuf/metadata.h"
#include "agent/uptane/version_report.h"

#include <cstdint>
#include <optional>
#include <string>

namespace ota::secondary {

// An update's slot: written (or being written) while staged, booted into once activated.
struct SlotChange {
    std::string slot;
    std::string from_slot;
    tuf::TargetFile target;
    bool written = false; // the whole slot verified end to end
};

struct SecondaryState {
    uint64_t report_counter = 0;
    std::optional<uptane::InstalledImage> installed; // nullopt = the factory image
    uint64_t installed_version = 0;
    std::optional<tuf::TargetFile> instruction; // the director's, verified; custom authoritative
    bool image_verified = false;                // state_dir/image.bundle holds its bytes
    std::optional<SlotChange> staged;
    std::optional<SlotChange> activated;
    std::optional<uptane::UpdateResult> last_result;
    std::string attacks_detected;
};

// A missing file gives the initial state with `factory_version` installed.
SecondaryState load_state(const std::string& path, uint64_t factory_version);
void save_state(const std::string& path, const SecondaryState& state);

Json target_to_json(const tuf::TargetFile& target);
tuf::TargetFile target_from_json(const Json& json, const std::string& what);

} // namespace ota::secondary
