#include "manifests/publisher/director.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"

namespace ota::publish {

using namespace uptane;

namespace {

std::string inventory_path(const std::string& dir) {
    return dir + "/inventory.json";
}

} // namespace

Inventory load_inventory(const std::string& dir) {
    const std::string path = inventory_path(dir);
    const Json j = parse_bounded_json(read_file(path, 4 << 20), path);
    Inventory inv;
    inv.vehicle_id = require_identifier(j, "vehicle_id", path);
    const Json& ecus = require_member(j, "ecus", path);
    if (!ecus.is_array()) throw Error(ErrorKind::Malformed, path + ": \"ecus\" must be an array");
    for (const auto& e : ecus) {
        RegisteredEcu r;
        r.serial = require_identifier(e, "ecu_serial", path);
        r.hardware_id = require_identifier(e, "hardware_id", path);
        r.key = public_key_from_json(require_member(e, "public_key", path), path);
        r.primary = require_bool(e, "primary", path);
        r.last_counter = require_uint(e, "last_counter", path);
        inv.ecus.push_back(std::move(r));
    }
    return inv;
}

void save_inventory(const std::string& dir, const Inventory& inv) {
    Json ecus = Json::array();
    for (const auto& e : inv.ecus)
        ecus.push_back(Json{{"ecu_serial", e.serial},
                            {"hardware_id", e.hardware_id},
                            {"public_key", public_key_to_json(e.key)},
                            {"primary", e.primary},
                            {"last_counter", e.last_counter}});
    write_file_atomic(inventory_path(dir),
                      Json{{"vehicle_id", inv.vehicle_id}, {"ecus", ecus}}.dump(1) + "\n");
}

Director Director::create(const std::string& dir, const std::string& vehicle_id,
                          const RepositoryOptions& options) {
    if (!is_identifier(vehicle_id))
        throw Error(ErrorKind::Config, "vehicle id must be 1-128 printable characters without "
                                       "spaces or '/'");
    if (file_exists(inventory_path(dir)))
        throw Error(ErrorKind::Config, dir + " already holds a director repository");
    Repository repo = Repository::create(dir, options);
    // Instructions are for this vehicle only, even when there are none (Uptane requires it).
    repo.role("targets").body["vehicle_id"] = vehicle_id;
    repo.publish();
    Inventory inv{vehicle_id, {}};
    save_inventory(dir, inv);
    return Director(std::move(repo), std::move(inv));
}

Director Director::open(const std::string& dir) {
    Inventory inv = load_inventory(dir);
    return Director(Repository::open(dir), std::move(inv));
}

const RegisteredEcu& Director::ecu(const std::string& serial) const {
    for (const auto& e : inventory_.ecus)
        if (e.serial == serial) return e;
    throw Error(ErrorKind::Config,
                "ECU " + serial + " is not registered in vehicle " + inventory_.vehicle_id);
}

void Director::add_ecu(const RegisteredEcu& ecu) {
    if (!is_identifier(ecu.serial) || !is_identifier(ecu.hardware_id))
        throw Error(ErrorKind::Config, "ECU serial and hardware id must be 1-128 printable "
                                       "characters without spaces or '/'");
    if (inventory_.ecus.size() >= kMaxVehicleEcus)
        throw Error(ErrorKind::Config,
                    "a vehicle has at most " + std::to_string(kMaxVehicleEcus) + " ECUs");
    for (const auto& e : inventory_.ecus)
        if (ecu.primary && e.primary && e.serial != ecu.serial)
            throw Error(ErrorKind::Config, "vehicle " + inventory_.vehicle_id +
                                               " already has primary ECU " + e.serial);
    bool replaced = false;
    for (auto& e : inventory_.ecus)
        if (e.serial == ecu.serial) {
            e = ecu;
            replaced = true;
        }
    if (!replaced) inventory_.ecus.push_back(ecu);
    save_inventory(repo_.dir(), inventory_);
}

void Director::remove_instruction(const std::string& serial) {
    Json& targets = repo_.role("targets").body["targets"];
    std::vector<std::string> empty;
    for (auto it = targets.begin(); it != targets.end(); ++it) {
        Json& ids = (*it)["custom"]["ecu_identifiers"];
        ids.erase(serial);
        if (ids.empty()) empty.push_back(it.key());
    }
    for (const auto& path : empty)
        targets.erase(path);
}

tuf::TargetFile Director::assign(const std::string& serial, const std::string& image_repo_dir,
                                 const std::string& target_path) {
    const RegisteredEcu& e = ecu(serial);
    const std::string targets_file = image_repo_dir + "/metadata/targets.json";
    const tuf::Envelope env = tuf::parse_envelope(read_file(targets_file, 64ull << 20), "targets");
    const tuf::TargetsMeta meta = tuf::parse_targets(env);
    auto it = meta.targets.find(target_path);
    if (it == meta.targets.end())
        throw Error(ErrorKind::NotFound,
                    "the image repository " + image_repo_dir + " lists no target " + target_path);
    const tuf::TargetFile& image = it->second;
    const Json hw =
        image.custom.is_object() ? image.custom.value("hardware_id", Json(nullptr)) : Json(nullptr);
    if (hw != e.hardware_id)
        throw Error(ErrorKind::WrongHardware,
                    target_path + " is for hardware " +
                        (hw.is_string() ? hw.get<std::string>() : std::string("(none)")) +
                        ", ECU " + serial + " is " + e.hardware_id);
    remove_instruction(serial);
    Json& targets = repo_.role("targets").body["targets"];
    Json entry;
    if (targets.contains(target_path)) {
        entry = targets[target_path];
    } else {
        Json hashes = Json::object();
        for (const auto& [alg, hex] : image.hashes)
            hashes[alg] = hex;
        Json custom = image.custom.is_object() ? image.custom : Json::object();
        custom["ecu_identifiers"] = Json::object();
        entry = Json{{"length", image.length}, {"hashes", hashes}, {"custom", custom}};
    }
    entry["custom"]["ecu_identifiers"][serial] = Json{{"hardware_id", e.hardware_id}};
    targets[target_path] = entry;
    repo_.publish();
    tuf::TargetFile out = image;
    out.custom = entry["custom"];
    return out;
}

void Director::unassign(const std::string& serial) {
    ecu(serial);
    remove_instruction(serial);
    repo_.publish();
}

std::vector<EcuStatus> Director::receive_manifest(const Json& manifest) {
    VerifiedManifest verified =
        verify_vehicle_manifest(manifest, inventory_.vehicle_id, inventory_.ecus);
    for (auto& e : inventory_.ecus)
        e.last_counter = verified.reports.at(e.serial).counter;
    save_inventory(repo_.dir(), inventory_);
    make_directories(repo_.dir() + "/manifests");
    write_file_atomic(repo_.dir() + "/manifests/last.json", manifest.dump(1) + "\n");

    const Json& targets = repo_.role("targets").body["targets"];
    std::vector<EcuStatus> out;
    for (const auto& e : inventory_.ecus) {
        EcuStatus s;
        s.ecu_serial = e.serial;
        s.report = verified.reports.at(e.serial);
        if (s.report.installed) s.installed = s.report.installed->filepath;
        Json assigned_hashes;
        for (auto it = targets.begin(); it != targets.end(); ++it)
            if ((*it)["custom"]["ecu_identifiers"].contains(e.serial)) {
                s.assigned = it.key();
                assigned_hashes = (*it)["hashes"];
            }
        if (s.assigned.empty())
            s.status = "no-assignment";
        else if (s.report.installed && s.installed == s.assigned &&
                 hashes_to_json(s.report.installed->hashes) == assigned_hashes && !s.report.pending)
            s.status = "up-to-date";
        else if (s.report.pending && *s.report.pending == s.assigned)
            s.status = "pending";
        else
            s.status = "differs";
        out.push_back(std::move(s));
    }
    return out;
}

} // namespace ota::publish
