// Uptane's cross-check of the two repositories (Uptane Standard, "Full verification", last step):
// every image the director instructs an ECU to install must be signed by the image repository
// under exactly the same name, with the same length and hashes and the same "SHALL match" custom
// fields; the instruction must be for an ECU of this vehicle with its hardware id; and its
// release counter must not go back.
#pragma once
#include "agent/tuf/metadata.h"
#include "agent/uptane/director_targets.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ota::uptane {

struct EcuIdentity {
    std::string serial;
    std::string hardware_id;
};

// Custom fields the director repeats and that must be equal in both repositories.
extern const char* const kMatchingCustomFields[7];

// What an ECU may install: the director's instruction, checked against the image repository.
struct VerifiedTarget {
    std::string ecu_serial;
    std::string hardware_id;
    tuf::TargetFile director; // the instruction as the director signed it
    tuf::TargetFile image;    // the image repository's target: its custom fields are authoritative
    uint64_t version() const; // the release counter (custom "version")
};

// Looks a target up in the (refreshed) image repository, delegations included.
using ImageTargetLookup = std::function<std::optional<tuf::TargetFile>(const std::string& name)>;

// The release counter (custom "version") of a target; throws Error(Malformed) if absent.
uint64_t release_counter(const tuf::TargetFile& target);

// Checks one instruction for `ecu`. previous_version: the release counter the director instructed
// this ECU before (0 = none). Throws WrongHardware (hardware id), NotFound (not in the image
// repository), HashMismatch (name, length, hashes or custom fields disagree), Rollback (counter).
VerifiedTarget verify_instruction(const EcuInstruction& instruction, const EcuIdentity& ecu,
                                  const ImageTargetLookup& image_targets,
                                  uint64_t previous_version);

// The primary's check of every instruction (the whole vehicle): the director's vehicle id must be
// this vehicle's, every instructed serial one of `vehicle_ecus` (WrongHardware otherwise), and each
// instruction passes verify_instruction. Returns the verified targets by ECU serial.
std::map<std::string, VerifiedTarget>
verify_director_targets(const DirectorInstructions& director, const std::string& vehicle_id,
                        const std::vector<EcuIdentity>& vehicle_ecus,
                        const ImageTargetLookup& image_targets,
                        const std::map<std::string, uint64_t>& previous_versions = {});

// The previous instructions' release counters, by ECU serial (for the rollback check).
std::map<std::string, uint64_t> instructed_versions(const DirectorInstructions& director);

} // namespace ota::uptane
