// The director repository's targets role: per-ECU instructions. Each target names the ECUs that
// must install it in its custom fields, besides the image repository's custom fields it repeats:
//
//   "demo-ecu/rootfs-2.full.bundle": {"length": N, "hashes": {"sha256": H},
//     "custom": {"ecu_identifiers": {"SERIAL": {"hardware_id": "demo-ecu"}},
//                "hardware_id": "demo-ecu", "version": 2, "image": {...}, "bundle": {...}, ...}}
//
// and the signed body carries "vehicle_id", so instructions for one vehicle cannot be replayed to
// another (the Uptane Standard requires it when the list is empty).
#pragma once
#include "agent/tuf/metadata.h"

#include <optional>
#include <string>
#include <vector>

namespace ota::uptane {

struct EcuInstruction {
    std::string ecu_serial;
    std::string hardware_id;
    tuf::TargetFile target; // as the director lists it
};

struct DirectorInstructions {
    std::optional<std::string> vehicle_id;
    std::vector<EcuInstruction> instructions;
    const EcuInstruction* for_ecu(const std::string& serial) const;
};

// Checks the director-specific rules (Uptane Standard, "How to check Targets metadata"): no
// delegations, each ECU serial at most once, at most kMaxVehicleEcus instructions, well-formed
// identifiers and a vehicle id when there is no instruction. Throws Error(Malformed).
DirectorInstructions parse_director_targets(const tuf::Envelope& env, const tuf::TargetsMeta& meta);

} // namespace ota::uptane
