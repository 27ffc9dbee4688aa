// The chain of roots this client has trusted, kept in METADATA_DIR/root_history/ as one record per
// root version: {"accepted": "YYYY-MM-DDTHH:MM:SSZ", "root": "<the exact bytes received>"}, each
// written atomically (temporary file, fsync, rename, fsync of the folder) once the root was
// verified. It is the audit trail of the roots the client walked through (ota-tuf-client
// root-history, ota-agent status --json) and the fallback when the trusted root.json is damaged:
// the client continues from the newest record that still verifies as part of the chain, never
// from an unverified root and never from an older one.
#pragma once
#include "agent/common/canonical_json.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ota::tuf {

struct RootRecord {
    uint64_t version = 0;
    int64_t accepted = 0; // seconds since the epoch, the reference time of the accepting refresh
    std::string bytes;    // the root metadata exactly as received
};

class RootHistory {
public:
    explicit RootHistory(const std::string& metadata_dir);

    // Keeps a verified root (atomic and durable; replaces an older record of the same version).
    void record(const RootRecord& root) const;
    // Removes every record: a new trust anchor was installed.
    void clear() const;
    // Versions with a record, ascending (at most kMaxRecords of the newest).
    std::vector<uint64_t> versions() const;
    // The record of `version`; nullopt when missing or unreadable.
    std::optional<RootRecord> load(uint64_t version) const;
    // The newest root the chain vouches for: starting at the oldest record that carries its own
    // threshold of signatures, each next version must be signed by the threshold of the previous
    // root's keys and of its own (as in a rotation); the walk stops at the first missing or
    // damaged version. nullopt when no record is intact.
    std::optional<RootRecord> newest_verified(int64_t reference_time) const;

    static constexpr size_t kMaxRecords = 4096;

private:
    std::string record_path(uint64_t version) const;
    std::string dir_;
};

// The history for status displays, oldest first: version, when it was accepted, its expiry and,
// per top-level role, the threshold and keyids; a record that no longer parses or carries its own
// signatures is listed with "intact": false and the reason.
Json root_history_json(const std::string& metadata_dir);

} // namespace ota::tuf
