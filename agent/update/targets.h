// What the signed targets say about bundles and releases: their "custom" objects
// (manifests/SPEC.md), parsed strictly.
#pragma once
#include "agent/common/crypto.h"
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

// The hash a bundle is checked against: the strongest one its target lists. TUF lets a target
// list any hashes; the agent knows sha512 and sha256.
struct TargetHash {
    HashAlgorithm algorithm = HashAlgorithm::Sha256;
    std::string name;  // as in the metadata: "sha512" or "sha256"
    std::string label; // for people: "SHA-512" or "SHA-256"
    std::string hex;
};
// Throws Error(Unsupported) naming the target when it lists neither sha512 nor sha256.
TargetHash strongest_hash(const tuf::TargetFile& target);
// A whole file hashed with `algorithm` (hex), read in chunks.
std::string file_hash_hex(const std::string& path, HashAlgorithm algorithm);

} // namespace ota::update
