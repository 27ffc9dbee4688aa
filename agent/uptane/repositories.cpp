#include "agent/uptane/repositories.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/tuf/trusted_set.h"

namespace ota::uptane {

UptaneRepositories::UptaneRepositories(std::string trust_dir, RepositoryEndpoint director,
                                       RepositoryEndpoint image, tuf::Clock clock)
    : store_(std::move(trust_dir)), director_(std::move(director)), image_(std::move(image)),
      clock_(std::move(clock)) {}

std::string UptaneRepositories::director_dir() const {
    return join_path(store_.current(), "director");
}

std::string UptaneRepositories::image_dir() const {
    return join_path(store_.current(), "image");
}

tuf::UpdaterConfig UptaneRepositories::updater_config(const RepositoryEndpoint& e,
                                                      const std::string& dir) const {
    tuf::UpdaterConfig c;
    c.metadata_dir = dir;
    c.metadata_base_url = e.metadata_url;
    c.targets_base_url = e.targets_url;
    c.max_root_length = e.limits.root;
    c.max_timestamp_length = e.limits.timestamp;
    c.max_snapshot_length = e.limits.snapshot;
    c.max_targets_length = e.limits.targets;
    c.max_root_rotations = e.limits.max_roots;
    c.max_delegations = e.limits.max_delegated;
    return c;
}

std::optional<DirectorInstructions> trusted_director_instructions(const std::string& director_dir) {
    const std::string path = join_path(director_dir, "targets.json");
    if (!file_exists(path)) return std::nullopt;
    tuf::Envelope env = tuf::parse_envelope(read_file(path, 64ull << 20), "targets");
    return parse_director_targets(env, tuf::parse_targets(env));
}

tuf::Updater& UptaneRepositories::image_updater() {
    if (!image_updater_) throw Error(ErrorKind::State, "the image repository was not refreshed");
    return *image_updater_;
}

VerificationResult UptaneRepositories::refresh_and_verify(
    net::Fetcher& director_fetcher, net::Fetcher& image_fetcher,
    const std::optional<std::string>& vehicle_id, const std::vector<EcuIdentity>& ecus,
    bool whole_vehicle, const std::function<void(const VerificationResult&)>& accept) {
    image_updater_.reset();
    const std::string staged = store_.stage();
    try {
        const std::string director_dir = join_path(staged, "director");
        const std::string image_dir = join_path(staged, "image");
        for (const auto& [dir, endpoint] :
             {std::pair{director_dir, &director_}, std::pair{image_dir, &image_}})
            if (!file_exists(join_path(dir, "root.json")))
                tuf::Updater::initialize(dir,
                                         read_file(endpoint->trusted_root, endpoint->limits.root));

        // The release counters instructed before: an instruction may not go below them.
        std::map<std::string, uint64_t> previous;
        try {
            if (auto before = trusted_director_instructions(director_dir))
                previous = instructed_versions(*before);
        } catch (const Error& e) {
            LOG_WARN("previous director targets not readable: " << e.what());
        }

        tuf::Updater director(updater_config(director_, director_dir), director_fetcher, clock_);
        director.refresh();
        const tuf::TrustedTargets& dt = *director.trusted().targets();
        VerificationResult result;
        result.director = parse_director_targets(dt.env, dt.meta);
        if (vehicle_id && result.director.vehicle_id && *result.director.vehicle_id != *vehicle_id)
            throw Error(ErrorKind::WrongHardware, "director targets are for vehicle " +
                                                      *result.director.vehicle_id + ", this is " +
                                                      *vehicle_id);

        DirectorInstructions in_scope;
        in_scope.vehicle_id = result.director.vehicle_id;
        if (whole_vehicle) {
            in_scope.instructions = result.director.instructions;
        } else {
            for (const auto& e : ecus)
                if (const EcuInstruction* i = result.director.for_ecu(e.serial))
                    in_scope.instructions.push_back(*i);
        }
        auto image = std::make_unique<tuf::Updater>(updater_config(image_, image_dir),
                                                    image_fetcher, clock_);
        if (!in_scope.instructions.empty()) {
            image->refresh();
            ImageTargetLookup lookup = [&](const std::string& name) {
                return image->find_target(name);
            };
            result.targets = verify_director_targets(
                in_scope, vehicle_id.value_or(in_scope.vehicle_id.value_or("")), ecus, lookup,
                previous);
        }
        if (accept) accept(result);
        store_.commit(staged);
        if (!in_scope.instructions.empty()) image_updater_ = std::move(image);
        return result;
    } catch (...) {
        store_.discard(staged);
        throw;
    }
}

} // namespace ota::uptane
