// TUF metadata (specification 1.0.x): parsed, strictly validated views of the four top-level roles
// and delegated targets roles. Parsing checks shape and types only; signatures, versions and expiry
// are checked by TrustedSet.
#pragma once
#include "agent/common/canonical_json.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ota::tuf {

struct Key {
    std::string keytype;    // "ecdsa", "ecdsa-sha2-nistp256", "rsa", "ed25519"
    std::string scheme;     // "ecdsa-sha2-nistp256", "rsassa-pss-sha256", "ed25519"
    std::string public_key; // "keyval"."public": PEM, or 64 hex digits for Ed25519
};

struct RoleKeys {
    std::vector<std::string> keyids;
    uint64_t threshold = 1;
};

struct Signature {
    std::string keyid;
    std::string sig_hex;
};

// A signed metadata file: the exact bytes received, the parsed "signed" object and its
// canonical form (the bytes the signatures cover).
struct Envelope {
    std::string raw;
    Json signed_json;
    std::string canonical_signed;
    std::vector<Signature> signatures;
    std::string type; // "_type"
    uint64_t version = 0;
    int64_t expires = 0; // seconds since the epoch (UTC)
};

// Length and hashes of a file as listed by its parent role.
struct MetaFile {
    uint64_t version = 0;
    std::optional<uint64_t> length;
    std::map<std::string, std::string> hashes; // algorithm -> hex
};

struct RootMeta {
    bool consistent_snapshot = false;
    std::map<std::string, Key> keys;
    std::map<std::string, RoleKeys> roles; // root, timestamp, snapshot, targets
};

struct TimestampMeta {
    MetaFile snapshot;
};

struct SnapshotMeta {
    std::map<std::string, MetaFile> meta; // "targets.json", "ROLE.json"
};

struct TargetFile {
    std::string path;
    uint64_t length = 0;
    std::map<std::string, std::string> hashes;
    Json custom; // null when absent
};

struct DelegatedRole {
    std::string name;
    RoleKeys keys;
    bool terminating = false;
    std::optional<std::vector<std::string>> paths;
    std::optional<std::vector<std::string>> path_hash_prefixes;
    // True if this role is trusted for target_path (spec 5.7.x path pattern rules).
    bool matches(const std::string& target_path) const;
};

// TAP 15 "succinct hash bin delegations": 2^bit_length roles NAME_PREFIX-HEX, each trusted for
// the target paths whose SHA-256 starts with its bin number. They are always terminating.
struct SuccinctRoles {
    RoleKeys keys;
    uint32_t bit_length = 1; // 1..32
    std::string name_prefix;
    std::string role_for_target(const std::string& target_path) const;
    bool is_delegated_role(const std::string& role) const;
};

// A role a delegator hands a target search to, in the delegator's order.
struct DelegationStep {
    std::string name;
    bool terminating = false;
};

struct Delegations {
    std::map<std::string, Key> keys;
    std::vector<DelegatedRole> roles; // empty when succinct_roles is used
    std::optional<SuccinctRoles> succinct_roles;
    // The roles trusted for target_path, in order (spec 5.7.x).
    std::vector<DelegationStep> roles_for_target(const std::string& target_path) const;
    // Keys and threshold of a delegated role, nullptr when this delegator does not delegate it.
    const RoleKeys* role_keys(const std::string& role) const;
};

struct TargetsMeta {
    std::map<std::string, TargetFile> targets;
    std::optional<Delegations> delegations;
};

// Splits raw bytes into an Envelope; throws Error(Malformed) on anything that is not a signed
// TUF document of `expected_type` ("root", "timestamp", "snapshot", "targets").
Envelope parse_envelope(const std::string& raw, const std::string& expected_type);
RootMeta parse_root(const Envelope& env);
TimestampMeta parse_timestamp(const Envelope& env);
SnapshotMeta parse_snapshot(const Envelope& env);
TargetsMeta parse_targets(const Envelope& env);

// "2030-01-01T00:00:00Z" -> seconds since the epoch; throws Error(Malformed).
int64_t parse_expiry(const std::string& iso8601);
std::string format_expiry(int64_t epoch_seconds);

// Public key material with all whitespace removed (and hex in lower case), so the same key written
// under two keyids (or with different line breaks) is recognised as one key.
std::string normalized_key(const Key& key);

// Percent-encoding of everything but unreserved characters (RFC 3986), '/' included: used for
// delegated role names in URLs and in file names.
std::string percent_encode(const std::string& s);

} // namespace ota::tuf
