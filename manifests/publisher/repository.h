// A TUF repository as plain files, for a fleet backend: keys per role, signed metadata
// (root, timestamp, snapshot, targets, optional delegated targets) and the targets themselves.
// Also the building blocks the test suite uses to forge and mangle metadata.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ota::publish {

// TUF key object and keyid (sha256 of the canonical key object).
Json key_object(const SigningKey& key);
std::string key_id(const SigningKey& key);

// Wraps `signed_body` into {"signatures": [...], "signed": ...}, signed by each key.
Json sign_envelope(const Json& signed_body, const std::vector<const SigningKey*>& keys);
// Serialized metadata bytes as published (pretty, stable).
std::string to_bytes(const Json& envelope);

struct RoleState {
    std::vector<SigningKey> keys;
    uint64_t threshold = 1;
    Json body; // the "signed" object
};

struct RepositoryOptions {
    std::string scheme = kSchemeEcdsaP256; // of every key made: ECDSA P-256, RSA-PSS or Ed25519
    bool consistent_snapshot = true;
    int64_t expires_days = 365; // root, targets
    int64_t timestamp_days = 7; // timestamp, snapshot
};

class Repository {
public:
    // Creates a new repository in `dir` (keys/, metadata/, targets/) with one key per role.
    static Repository create(const std::string& dir, const RepositoryOptions& options);
    // Opens an existing one: reads keys/ and the current metadata/.
    static Repository open(const std::string& dir);

    // Copies `file` into targets/ (as HASH.NAME when consistent snapshots are on) and lists it
    // under `target_path` with `custom`. Does not sign: call publish().
    void add_target(const std::string& target_path, const std::string& file, const Json& custom);
    void remove_target(const std::string& target_path);
    // Bumps and re-signs targets, snapshot and timestamp; writes them under metadata/.
    void publish();
    // Only a new timestamp (its expiry is short: the backend refreshes it periodically).
    void refresh_timestamp();
    // A new key for `role` (root, timestamp, snapshot or targets), of `scheme` (default: the
    // repository's): writes root N+1, signed by the old and the new root keys, then re-signs the
    // rest.
    void rotate_keys(const std::string& role, const std::string& scheme = "");

    const std::string& dir() const { return dir_; }
    RoleState& role(const std::string& name) { return roles_.at(name); }
    const RepositoryOptions& options() const { return options_; }
    std::string metadata_dir() const { return dir_ + "/metadata"; }
    std::string targets_dir() const { return dir_ + "/targets"; }

private:
    Repository() = default;
    void write_role(const std::string& name);
    void save_keys(const std::string& role);
    Json root_body() const;
    std::string expiry(int64_t days) const;

    std::string dir_;
    RepositoryOptions options_;
    std::map<std::string, RoleState> roles_;
};

} // namespace ota::publish
