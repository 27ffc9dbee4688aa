#include "agent/uptane/director_targets.h"

#include "agent/common/error.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/vehicle_manifest.h"

#include <set>

namespace ota::uptane {

const EcuInstruction* DirectorInstructions::for_ecu(const std::string& serial) const {
    for (const auto& i : instructions)
        if (i.ecu_serial == serial) return &i;
    return nullptr;
}

DirectorInstructions parse_director_targets(const tuf::Envelope& env,
                                            const tuf::TargetsMeta& meta) {
    const std::string what = "director targets";
    if (meta.delegations)
        throw Error(ErrorKind::Malformed, what + " must not delegate (only the image repository "
                                                 "may)");
    DirectorInstructions out;
    if (auto v = env.signed_json.find("vehicle_id"); v != env.signed_json.end())
        out.vehicle_id = require_identifier(env.signed_json, "vehicle_id", what);
    std::set<std::string> serials;
    for (const auto& [path, target] : meta.targets) {
        const std::string twhat = what + " target " + path.substr(0, kMaxTargetNameLength);
        if (path.size() > kMaxTargetNameLength)
            throw Error(ErrorKind::TooLarge, twhat + ": name longer than " +
                                                 std::to_string(kMaxTargetNameLength) + " bytes");
        if (!target.custom.is_object())
            throw Error(ErrorKind::Malformed, twhat + ": no custom fields");
        const Json& ids = require_object(target.custom, "ecu_identifiers", twhat);
        if (ids.empty())
            throw Error(ErrorKind::Malformed, twhat + ": \"ecu_identifiers\" is empty");
        for (auto it = ids.begin(); it != ids.end(); ++it) {
            if (!is_identifier(it.key()))
                throw Error(ErrorKind::Malformed, twhat + ": invalid ECU serial");
            require_only_keys(*it, {"hardware_id"}, twhat + " ECU " + it.key());
            EcuInstruction i;
            i.ecu_serial = it.key();
            i.hardware_id = require_identifier(*it, "hardware_id", twhat + " ECU " + it.key());
            i.target = target;
            if (!serials.insert(i.ecu_serial).second)
                throw Error(ErrorKind::Malformed,
                            what + " list ECU " + i.ecu_serial + " more than once");
            if (serials.size() > kMaxVehicleEcus)
                throw Error(ErrorKind::TooLarge, what + " instruct more than " +
                                                     std::to_string(kMaxVehicleEcus) + " ECUs");
            out.instructions.push_back(std::move(i));
        }
    }
    if (out.instructions.empty() && !out.vehicle_id)
        throw Error(ErrorKind::Malformed,
                    what + " without instructions must name the vehicle (\"vehicle_id\")");
    return out;
}

} // namespace ota::uptane
