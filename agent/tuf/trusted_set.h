// The set of trusted metadata (the verifier). Every update_* call takes raw bytes, verifies them
// against what is already trusted (signatures, thresholds, versions, hashes, lengths, expiry
// against one reference time) and only then replaces the trusted copy. A failed call leaves the
// set unchanged (except as noted for timestamp and snapshot). There is one verifier in the
// project: the agent and ota-tuf-client both use it. Mirrors python-tuf's TrustedMetadataSet.
#pragma once
#include "agent/tuf/metadata.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ota::tuf {

struct TrustedRoot {
    Envelope env;
    RootMeta meta;
};
struct TrustedTimestamp {
    Envelope env;
    TimestampMeta meta;
};
struct TrustedSnapshot {
    Envelope env;
    SnapshotMeta meta;
};
struct TrustedTargets {
    Envelope env;
    TargetsMeta meta;
};

// A role as the target search reached it: the role names from "targets" down to it, e.g.
// {"targets", "A", "release"}. When two delegators both delegate "release" (with different keys),
// a copy is trusted only through the chain whose keys signed it, so trust is kept per chain.
using DelegationChain = std::vector<std::string>;

// Throws Error(Malformed) when a keyid appears twice in env.signatures: the specification wants
// them unique, and such metadata is refused before any signature is counted.
void check_signature_keyids_unique(const Envelope& env, const std::string& what);
// Counts the distinct keys of `role` that produced a valid signature over env.canonical_signed.
// The same public key under two keyids counts once; unknown keyids, empty or undecodable
// signatures, unsupported schemes and keys whose keytype does not fit their scheme are ignored.
// Throws Error(Malformed) on duplicate keyids in env.signatures.
uint64_t count_valid_signatures(const Envelope& env, const std::map<std::string, Key>& keys,
                                const RoleKeys& role);
// Throws Error(BadSignature) when fewer than role.threshold keys signed.
void verify_threshold(const Envelope& env, const std::map<std::string, Key>& keys,
                      const RoleKeys& role, const std::string& what);
// Checks the length (if given) and every listed hash (sha256, sha512); unknown algorithm = error.
void verify_length_and_hashes(const std::string& data, std::optional<uint64_t> length,
                              const std::map<std::string, std::string>& hashes,
                              const std::string& what);

class TrustedSet {
public:
    // root_bytes: the locally trusted root. Its signatures are checked against itself (threshold),
    // its expiry is not (an expired root is still a valid starting point for rotation).
    TrustedSet(const std::string& root_bytes, int64_t reference_time);

    int64_t reference_time() const { return reference_time_; }
    const TrustedRoot& root() const { return root_; }
    const TrustedTimestamp* timestamp() const { return timestamp_ ? &*timestamp_ : nullptr; }
    const TrustedSnapshot* snapshot() const { return snapshot_ ? &*snapshot_ : nullptr; }
    const TrustedTargets* targets() const { return targets_ ? &*targets_ : nullptr; }
    // A delegated role trusted through exactly this chain; nullptr when it is not (yet).
    const TrustedTargets* delegated(const DelegationChain& chain) const;

    // Root rotation N -> N+1: signed by the threshold of the old root's root keys AND of its own.
    // Returns true when a timestamp or snapshot key was removed or replaced (the caller drops
    // the trusted timestamp and snapshot: fast-forward attack recovery, spec 5.3.11).
    bool update_root(const std::string& bytes);
    // Call once no further root is available: the final root must not be expired (freeze attack).
    void check_root_not_expired() const;

    // Returns false (and keeps the trusted one) when the new timestamp has the same version.
    // `from_local`: the copy from our own metadata folder; its expiry is not checked, since
    // expired local metadata is still a valid basis for rollback checks.
    bool update_timestamp(const std::string& bytes, bool from_local = false);
    // `from_local`: hashes/length against the timestamp are not checked (the local file was
    // verified when received). The snapshot is kept as trusted even when it then fails the final
    // checks (version named by the timestamp, expiry), so it still guards the next one.
    void update_snapshot(const std::string& bytes, bool from_local = false);
    // Targets (top-level or delegated): length and hashes listed in the snapshot are checked for
    // local copies too; a delegated role is checked against the keys its delegator in `chain`
    // (trusted through the rest of the chain) lists for it.
    void update_targets(const std::string& bytes);
    void update_delegated_targets(const std::string& bytes, const DelegationChain& chain);

    void drop_timestamp_and_snapshot();

private:
    void check_expiry(const Envelope& env, const std::string& what) const;
    void check_final_snapshot() const;
    const MetaFile& snapshot_entry(const std::string& filename) const;

    int64_t reference_time_;
    TrustedRoot root_;
    std::optional<TrustedTimestamp> timestamp_;
    std::optional<TrustedSnapshot> snapshot_;
    std::optional<TrustedTargets> targets_;
    std::map<DelegationChain, std::shared_ptr<const TrustedTargets>> delegated_;
};

} // namespace ota::tuf
