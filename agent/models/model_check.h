// Integrity of the installed models: each version the store links to (current, previous, trial)
// re-read and matched against its manifest, for `status`, `boot-check` and `verify-models`.
#pragma once
#include "agent/models/model_store.h"

#include <optional>
#include <string>
#include <vector>

namespace ota::models {

struct ModelCheck {
    std::string name;
    std::string role; // "current", "previous" or "trial"
    uint64_t version = 0;
    std::optional<std::string> problem; // nullopt: the files match the manifest
};

// Every model's current version, or (all_versions) every version a link names.
std::vector<ModelCheck> check_models(const ModelStore& store, bool all_versions);

} // namespace ota::models
