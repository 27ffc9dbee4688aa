// The Uptane director repository of one vehicle, as plain files any static HTTP server can serve
// (docs/uptane.md):
//   DIR/metadata/, DIR/keys/, DIR/publisher.json   a TUF repository (Repository) whose targets
//                                                  role lists per-ECU instructions
//   DIR/inventory.json                             the vehicle and its ECUs: serial, hardware id,
//                                                  public key, primary or not, last report counter
//   DIR/manifests/last.json                        the last vehicle version manifest accepted
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/tuf/metadata.h"
#include "agent/uptane/vehicle_manifest.h"
#include "manifests/publisher/repository.h"

#include <string>
#include <vector>

namespace ota::publish {

struct Inventory {
    std::string vehicle_id;
    std::vector<uptane::RegisteredEcu> ecus;
};

Inventory load_inventory(const std::string& dir);
void save_inventory(const std::string& dir, const Inventory& inventory);

// What the director knows about one ECU after a verified manifest.
struct EcuStatus {
    std::string ecu_serial;
    std::string assigned;  // the instructed target ("" = none)
    std::string installed; // the reported target ("" = factory image)
    std::string status;    // "up-to-date", "pending", "differs" or "no-assignment"
    uptane::EcuVersionReport report;
};

class Director {
public:
    // A new director repository for `vehicle_id` (keys, root, empty instructions).
    static Director create(const std::string& dir, const std::string& vehicle_id,
                           const RepositoryOptions& options);
    static Director open(const std::string& dir);

    const Inventory& inventory() const { return inventory_; }
    // Registers an ECU (or replaces the registration of the same serial).
    void add_ecu(const uptane::RegisteredEcu& ecu);
    // Instructs ECU `serial` to install `target_path` of the image repository in
    // `image_repo_dir` (its current signed targets): length, hashes and custom fields are copied,
    // the ECU's previous instruction is replaced. The image must be for the ECU's hardware id.
    // Publishes new targets, snapshot and timestamp.
    tuf::TargetFile assign(const std::string& serial, const std::string& image_repo_dir,
                           const std::string& target_path);
    void unassign(const std::string& serial);

    // Verifies a vehicle version manifest against the inventory (signatures of the primary and of
    // every ECU, vehicle id, report counters above the last accepted: replay). On success the
    // counters advance and the manifest is kept as manifests/last.json. Throws ota::Error.
    std::vector<EcuStatus> receive_manifest(const Json& manifest);

    Repository& repository() { return repo_; }

private:
    Director(Repository repo, Inventory inventory)
        : repo_(std::move(repo)), inventory_(std::move(inventory)) {}
    const uptane::RegisteredEcu& ecu(const std::string& serial) const;
    void remove_instruction(const std::string& serial);

    Repository repo_;
    Inventory inventory_;
};

} // namespace ota::publish
