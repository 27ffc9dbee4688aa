// What the signed targets say about bundles and releases: their "custom" objects
// (manifests/SPEC.md), parsed strictly.
#pragma once
#include "agent/tuf/metadata.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ota::update {

// A firmware or model bundle.
struct BundleTarget {
    tuf::TargetFile target;
    std::string hardware_id;
    std::string component;
    std::string kind; // "firmware" or "model"
    uint64_t version = 0;
    std::string image_sha256;
    uint64_t image_length = 0;
    std::string header_sha256;
    uint64_t header_length = 0;
    std::optional<uint64_t> delta_from_version;
    std::string delta_from_sha256;
};

// Reads the custom fields; throws Error(Malformed) naming the missing/invalid field.
BundleTarget parse_bundle_target(const tuf::TargetFile& target);

// A release target (custom "kind": "release"): the component versions that must be installed
// together.
struct ReleaseTarget {
    tuf::TargetFile target;
    std::string hardware_id;
    std::string id;
    uint64_t version = 0;
    std::vector<std::pair<std::string, uint64_t>> components; // component -> version
};
ReleaseTarget parse_release_target(const tuf::TargetFile& target);
bool is_release_target(const tuf::TargetFile& target);

} // namespace ota::update
