#include "agent/models/model_check.h"

#include "agent/common/error.h"

namespace ota::models {

std::vector<ModelCheck> check_models(const ModelStore& store, bool all_versions) {
    std::vector<ModelCheck> out;
    for (const auto& name : store.models()) {
        const std::pair<const char*, std::optional<uint64_t>> links[] = {
            {"current", store.current_version(name)},
            {"previous", all_versions ? store.previous_version(name) : std::nullopt},
            {"trial", all_versions ? store.trial_version(name) : std::nullopt}};
        for (const auto& [role, version] : links) {
            if (!version) continue;
            if (std::string(role) == "trial" && version == links[0].second) continue;
            out.push_back(ModelCheck{name, role, *version, store.verify(name, *version)});
        }
    }
    return out;
}

} // namespace ota::models
