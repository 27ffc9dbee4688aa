#include "agent/uptane/verification.h"

#include "agent/common/error.h"

namespace ota::uptane {

const char* const kMatchingCustomFields[7] = {"hardware_id", "component", "kind",      "version",
                                              "image",       "bundle",    "delta_from"};

uint64_t release_counter(const tuf::TargetFile& target) {
    if (target.custom.is_object())
        if (auto v = target.custom.find("version");
            v != target.custom.end() && v->is_number_unsigned())
            return v->get<uint64_t>();
    throw Error(ErrorKind::Malformed,
                "target " + target.path + " has no release counter (custom \"version\")");
}

uint64_t VerifiedTarget::version() const {
    return release_counter(image);
}

namespace {
Json custom_field(const tuf::TargetFile& t, const char* name) {
    if (!t.custom.is_object()) return nullptr;
    auto it = t.custom.find(name);
    return it == t.custom.end() ? Json(nullptr) : *it;
}
} // namespace

VerifiedTarget verify_instruction(const EcuInstruction& instruction, const EcuIdentity& ecu,
                                  const ImageTargetLookup& image_targets,
                                  uint64_t previous_version) {
    const std::string what = "director instruction for ECU " + instruction.ecu_serial + " (" +
                             instruction.target.path + ")";
    if (instruction.ecu_serial != ecu.serial)
        throw Error(ErrorKind::WrongHardware, what + " is not for ECU " + ecu.serial);
    if (instruction.hardware_id != ecu.hardware_id)
        throw Error(ErrorKind::WrongHardware, what + " names hardware id " +
                                                  instruction.hardware_id + ", the ECU is " +
                                                  ecu.hardware_id);
    std::optional<tuf::TargetFile> image = image_targets(instruction.target.path);
    if (!image)
        throw Error(ErrorKind::NotFound,
                    what + ": the image repository signs no target of that name");
    const tuf::TargetFile& d = instruction.target;
    if (d.length != image->length)
        throw Error(ErrorKind::HashMismatch,
                    what + ": the director says " + std::to_string(d.length) +
                        " bytes, the image repository " + std::to_string(image->length));
    if (d.hashes != image->hashes)
        throw Error(ErrorKind::HashMismatch,
                    what + ": the director's hashes differ from the image repository's");
    for (const char* field : kMatchingCustomFields)
        if (custom_field(d, field) != custom_field(*image, field))
            throw Error(ErrorKind::HashMismatch, what + ": custom field \"" + field +
                                                     "\" differs from the image repository's");
    // The image repository's own hardware id protects against a director that is compromised.
    const Json hw = custom_field(*image, "hardware_id");
    if (!hw.is_string() || hw.get<std::string>() != ecu.hardware_id)
        throw Error(ErrorKind::WrongHardware,
                    what + ": the image repository signs it for hardware " +
                        (hw.is_string() ? hw.get<std::string>() : std::string("(none)")) +
                        ", not " + ecu.hardware_id);
    const uint64_t version = release_counter(*image);
    if (version < previous_version)
        throw Error(ErrorKind::Rollback, what + ": release counter " + std::to_string(version) +
                                             " is below the " + std::to_string(previous_version) +
                                             " instructed before");
    return VerifiedTarget{ecu.serial, ecu.hardware_id, d, *image};
}

std::map<std::string, VerifiedTarget>
verify_director_targets(const DirectorInstructions& director, const std::string& vehicle_id,
                        const std::vector<EcuIdentity>& vehicle_ecus,
                        const ImageTargetLookup& image_targets,
                        const std::map<std::string, uint64_t>& previous_versions) {
    if (director.vehicle_id && *director.vehicle_id != vehicle_id)
        throw Error(ErrorKind::WrongHardware, "director targets are for vehicle " +
                                                  *director.vehicle_id + ", this is " + vehicle_id);
    std::map<std::string, VerifiedTarget> out;
    for (const auto& instruction : director.instructions) {
        const EcuIdentity* ecu = nullptr;
        for (const auto& e : vehicle_ecus)
            if (e.serial == instruction.ecu_serial) ecu = &e;
        if (!ecu)
            throw Error(ErrorKind::WrongHardware, "director instructs ECU " +
                                                      instruction.ecu_serial +
                                                      ", which is not in vehicle " + vehicle_id);
        auto prev = previous_versions.find(ecu->serial);
        out.emplace(ecu->serial,
                    verify_instruction(instruction, *ecu, image_targets,
                                       prev == previous_versions.end() ? 0 : prev->second));
    }
    return out;
}

std::map<std::string, uint64_t> instructed_versions(const DirectorInstructions& director) {
    std::map<std::string, uint64_t> out;
    for (const auto& i : director.instructions)
        if (i.target.custom.is_object() && i.target.custom.contains("version") &&
            i.target.custom["version"].is_number_unsigned())
            out[i.ecu_serial] = i.target.custom["version"].get<uint64_t>();
    return out;
}

} // namespace ota::uptane
