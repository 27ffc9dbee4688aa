// Metadata a primary hands to a secondary (Uptane Standard, "Send metadata to Secondaries"), and
// the fetcher through which a secondary's own TUF client reads it: a full-verification secondary
// runs the same tuf::Updater as the primary, over its own metadata folder, with this fetcher in
// place of the network. Every file is bounded by the caps below before it is kept.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/net/fetcher.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ota::uptane {

// Length caps for each metadata file (aktualizr uses 64 KiB for the director's roles and 8 MiB for
// the image repository's targets).
struct MetadataLimits {
    uint64_t root = 64 * 1024;
    uint64_t timestamp = 16 * 1024;
    uint64_t snapshot = 64 * 1024;
    uint64_t targets = 128 * 1024;
    uint64_t delegated = 8ull << 20;
    uint32_t max_roots = 32;     // root versions sent at once
    uint32_t max_delegated = 32; // delegated roles sent at once
    static MetadataLimits director();
    static MetadataLimits image();
};

struct RepositoryMetadata {
    std::map<uint64_t, std::string> roots; // version -> N.root.json (newer than the receiver's)
    std::string timestamp;                 // "" = not sent
    std::string snapshot;
    std::string targets;
    std::map<std::string, std::string> delegated; // delegated role name -> its metadata
    uint64_t total_size() const;
};

struct SecondaryMetadata {
    RepositoryMetadata director;
    std::optional<RepositoryMetadata> image; // full verification only
};

// {"director": {"roots": {"2": "..."}, "timestamp": "...", "snapshot": "...", "targets": "...",
//  "delegated": {}}, "image": {...} | null}: each file is the exact bytes as a JSON string.
Json metadata_to_json(const SecondaryMetadata& metadata);
// Strict and bounded by the caps; throws Error(Malformed) / Error(TooLarge).
SecondaryMetadata metadata_from_json(const Json& json);

// Serves one repository's pushed files under `base_url` as a TUF client requests them:
// N.root.json, timestamp.json, [N.]snapshot.json, [N.]targets.json, [N.]ROLE.json. Anything else
// is Error(NotFound); a file longer than the requested bound is Error(TooLarge).
class PushedFetcher : public net::Fetcher {
public:
    PushedFetcher(const RepositoryMetadata& metadata, std::string base_url);
    std::string fetch(const std::string& url, uint64_t max_length) override;
    void fetch_to_file(const std::string& url, const std::string& path, uint64_t max_length,
                       bool resume, const net::ProgressFn& progress) override;

private:
    const RepositoryMetadata& metadata_;
    std::string base_url_;
};

// The primary's side: its trusted copies in `trusted_dir` (exactly the bytes it verified), and the
// roots after `receiver_root_version` (fetched from the repository at `metadata_base_url`, bounded
// by limits.root). Without `full`, only roots and targets (a partial-verification secondary).
RepositoryMetadata collect_repository_metadata(const std::string& trusted_dir,
                                               uint64_t receiver_root_version, bool full,
                                               net::Fetcher& fetcher,
                                               const std::string& metadata_base_url,
                                               const MetadataLimits& limits);

// Version of the root in a metadata folder's root.json (0 if there is none).
uint64_t trusted_root_version(const std::string& metadata_dir);

std::string percent_decode(const std::string& s);

} // namespace ota::uptane
