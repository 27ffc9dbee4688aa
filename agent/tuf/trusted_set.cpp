#include "agent/tuf/trusted_set.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <set>

namespace ota::tuf {

namespace {

// The signature schemes each TUF keytype may sign with (securesystemslib's pairs).
bool keytype_fits_scheme(const Key& key) {
    if (key.scheme == kSchemeEcdsaP256)
        return key.keytype == "ecdsa" || key.keytype == "ecdsa-sha2-nistp256";
    if (key.scheme == kSchemeRsaPss) return key.keytype == "rsa";
    if (key.scheme == kSchemeEd25519) return key.keytype == "ed25519";
    return false;
}

} // namespace

void check_signature_keyids_unique(const Envelope& env, const std::string& what) {
    std::set<std::string> seen;
    for (const auto& sig : env.signatures)
        if (!seen.insert(sig.keyid).second)
            throw Error(ErrorKind::Malformed,
                        what + ": keyid " + sig.keyid +
                            " appears twice in \"signatures\" (keyids there must be unique)");
}

uint64_t count_valid_signatures(const Envelope& env, const std::map<std::string, Key>& keys,
                                const RoleKeys& role) {
    check_signature_keyids_unique(env, env.type + " metadata");
    std::set<std::string> counted_keys; // key material, so one key under two keyids counts once
    uint64_t valid = 0;
    for (const auto& sig : env.signatures) {
        bool in_role = false;
        for (const auto& id : role.keyids)
            in_role = in_role || id == sig.keyid;
        if (!in_role) continue;
        auto key = keys.find(sig.keyid);
        if (key == keys.end() || key->second.public_key.empty()) continue;
        if (!keytype_fits_scheme(key->second)) continue;
        const std::string material = normalized_key(key->second);
        if (counted_keys.count(material)) continue;
        if (sig.sig_hex.empty() || !is_hex(sig.sig_hex)) continue;
        if (!verify_signature(key->second.scheme, key->second.public_key, env.canonical_signed,
                              from_hex(sig.sig_hex)))
            continue;
        counted_keys.insert(material);
        ++valid;
    }
    return valid;
}

void verify_threshold(const Envelope& env, const std::map<std::string, Key>& keys,
                      const RoleKeys& role, const std::string& what) {
    check_signature_keyids_unique(env, what);
    uint64_t valid = count_valid_signatures(env, keys, role);
    if (valid < role.threshold)
        throw Error(ErrorKind::BadSignature, what + ": " + std::to_string(valid) +
                                                 " valid signature(s), threshold is " +
                                                 std::to_string(role.threshold));
}

void verify_length_and_hashes(const std::string& data, std::optional<uint64_t> length,
                              const std::map<std::string, std::string>& hashes,
                              const std::string& what) {
    if (length && data.size() != *length)
        throw Error(ErrorKind::HashMismatch, what + ": length is " + std::to_string(data.size()) +
                                                 ", metadata says " + std::to_string(*length));
    for (const auto& [alg, expected] : hashes) {
        std::string actual;
        if (alg == "sha256")
            actual = sha256_hex(data);
        else if (alg == "sha512")
            actual = sha512_hex(data);
        else
            throw Error(ErrorKind::Unsupported, what + ": unsupported hash algorithm " + alg);
        std::string lower = expected;
        for (auto& c : lower)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!equal_constant_time(actual, lower))
            throw Error(ErrorKind::HashMismatch,
                        what + ": " + alg + " does not match the metadata");
    }
}

TrustedSet::TrustedSet(const std::string& root_bytes, int64_t reference_time)
    : reference_time_(reference_time) {
    root_.env = parse_envelope(root_bytes, "root");
    root_.meta = parse_root(root_.env);
    verify_threshold(root_.env, root_.meta.keys, root_.meta.roles.at("root"), "trusted root");
}

const TrustedTargets* TrustedSet::delegated(const DelegationChain& chain) const {
    auto it = delegated_.find(chain);
    return it == delegated_.end() ? nullptr : it->second.get();
}

void TrustedSet::check_expiry(const Envelope& env, const std::string& what) const {
    if (env.expires <= reference_time_)
        throw Error(ErrorKind::Expired, what + " expired at " + format_expiry(env.expires));
}

bool TrustedSet::update_root(const std::string& bytes) {
    if (timestamp_)
        throw Error(ErrorKind::State, "root cannot be updated after the timestamp was loaded");
    TrustedRoot next;
    next.env = parse_envelope(bytes, "root");
    next.meta = parse_root(next.env);
    verify_threshold(next.env, root_.meta.keys, root_.meta.roles.at("root"),
                     "new root (signed by the trusted root's keys)");
    if (next.env.version != root_.env.version + 1)
        throw Error(ErrorKind::Rollback, "new root has version " +
                                             std::to_string(next.env.version) + ", expected " +
                                             std::to_string(root_.env.version + 1));
    verify_threshold(next.env, next.meta.keys, next.meta.roles.at("root"),
                     "new root (signed by its own keys)");
    // A rotation = a key of the role was removed (or its keyid now names other key material).
    // Keys only added, or a changed threshold, keep the old metadata as a rollback basis (it
    // simply fails verification if it no longer meets the threshold).
    auto role_keys = [](const TrustedRoot& r, const char* role) {
        std::set<std::string> out;
        for (const auto& id : r.meta.roles.at(role).keyids) {
            auto k = r.meta.keys.find(id);
            out.insert(id + "\n" + (k == r.meta.keys.end() ? "" : normalized_key(k->second)));
        }
        return out;
    };
    auto removed = [&](const char* role) {
        const auto before = role_keys(root_, role), after = role_keys(next, role);
        for (const auto& k : before)
            if (!after.count(k)) return true;
        return false;
    };
    bool rotated = removed("timestamp") || removed("snapshot");
    root_ = std::move(next);
    return rotated;
}

void TrustedSet::check_root_not_expired() const {
    check_expiry(root_.env, "root metadata");
}

bool TrustedSet::update_timestamp(const std::string& bytes, bool from_local) {
    if (snapshot_) throw Error(ErrorKind::State, "timestamp cannot be updated after the snapshot");
    check_root_not_expired(); // the root the timestamp is checked against must be the final one
    TrustedTimestamp next;
    next.env = parse_envelope(bytes, "timestamp");
    next.meta = parse_timestamp(next.env);
    verify_threshold(next.env, root_.meta.keys, root_.meta.roles.at("timestamp"),
                     "timestamp metadata");
    if (timestamp_) {
        if (next.env.version < timestamp_->env.version)
            throw Error(ErrorKind::Rollback, "timestamp version " +
                                                 std::to_string(next.env.version) +
                                                 " is older than the trusted version " +
                                                 std::to_string(timestamp_->env.version));
        if (next.env.version == timestamp_->env.version) {
            check_expiry(timestamp_->env, "timestamp metadata");
            return false; // same version: keep the trusted one, as the specification says
        }
        if (next.meta.snapshot.version < timestamp_->meta.snapshot.version)
            throw Error(ErrorKind::Rollback, "timestamp lists snapshot version " +
                                                 std::to_string(next.meta.snapshot.version) +
                                                 ", older than the trusted " +
                                                 std::to_string(timestamp_->meta.snapshot.version));
    }
    // Stored before the expiry check: an expired local timestamp still protects against
    // rollback of the next one.
    timestamp_ = std::move(next);
    if (!from_local) check_expiry(timestamp_->env, "timestamp metadata");
    return true;
}

void TrustedSet::update_snapshot(const std::string& bytes, bool from_local) {
    if (!timestamp_) throw Error(ErrorKind::State, "snapshot needs a trusted timestamp");
    if (targets_) throw Error(ErrorKind::State, "snapshot cannot be updated after targets");
    check_expiry(timestamp_->env, "timestamp metadata");
    const MetaFile& expected = timestamp_->meta.snapshot;
    if (!from_local) verify_length_and_hashes(bytes, expected.length, expected.hashes, "snapshot");
    TrustedSnapshot next;
    next.env = parse_envelope(bytes, "snapshot");
    next.meta = parse_snapshot(next.env);
    verify_threshold(next.env, root_.meta.keys, root_.meta.roles.at("snapshot"),
                     "snapshot metadata");
    if (snapshot_) {
        for (const auto& [name, old_file] : snapshot_->meta.meta) {
            auto it = next.meta.meta.find(name);
            if (it == next.meta.meta.end())
                throw Error(ErrorKind::Rollback, "new snapshot no longer lists " + name);
            if (it->second.version < old_file.version)
                throw Error(ErrorKind::Rollback, "new snapshot lists " + name + " version " +
                                                     std::to_string(it->second.version) +
                                                     ", older than the trusted " +
                                                     std::to_string(old_file.version));
        }
    }
    // Stored before the final checks (version named by the timestamp, expiry): a local snapshot
    // that is no longer current still guards the versions of the next one.
    snapshot_ = std::move(next);
    check_final_snapshot();
}

void TrustedSet::check_final_snapshot() const {
    const MetaFile& expected = timestamp_->meta.snapshot;
    if (snapshot_->env.version != expected.version)
        throw Error(ErrorKind::Rollback,
                    "snapshot version " + std::to_string(snapshot_->env.version) +
                        " does not match the timestamp's " + std::to_string(expected.version));
    check_expiry(snapshot_->env, "snapshot metadata");
}

const MetaFile& TrustedSet::snapshot_entry(const std::string& filename) const {
    if (!snapshot_) throw Error(ErrorKind::State, "targets need a trusted snapshot");
    check_final_snapshot();
    auto it = snapshot_->meta.meta.find(filename);
    if (it == snapshot_->meta.meta.end())
        throw Error(ErrorKind::NotFound, filename + " is not listed in the snapshot");
    return it->second;
}

void TrustedSet::update_targets(const std::string& bytes) {
    if (targets_) throw Error(ErrorKind::State, "top-level targets are already trusted");
    const MetaFile& expected = snapshot_entry("targets.json");
    // Also for the local copy: the snapshot may list new hashes for the same version.
    verify_length_and_hashes(bytes, expected.length, expected.hashes, "targets");
    TrustedTargets next;
    next.env = parse_envelope(bytes, "targets");
    next.meta = parse_targets(next.env);
    verify_threshold(next.env, root_.meta.keys, root_.meta.roles.at("targets"), "targets metadata");
    if (next.env.version != expected.version)
        throw Error(ErrorKind::Rollback, "targets version " + std::to_string(next.env.version) +
                                             " does not match the snapshot's " +
                                             std::to_string(expected.version));
    check_expiry(next.env, "targets metadata");
    targets_ = std::move(next);
}

void TrustedSet::update_delegated_targets(const std::string& bytes, const DelegationChain& chain) {
    if (chain.size() < 2 || chain.front() != "targets")
        throw Error(ErrorKind::State, "a delegation chain starts at targets and names a role");
    const std::string& role = chain.back();
    const std::string& delegator = chain[chain.size() - 2];
    const DelegationChain parent_chain(chain.begin(), chain.end() - 1);
    const TrustedTargets* parent = parent_chain.size() == 1 ? targets() : delegated(parent_chain);
    if (!parent) throw Error(ErrorKind::State, "delegator " + delegator + " is not trusted");
    if (!parent->meta.delegations) throw Error(ErrorKind::State, delegator + " delegates nothing");
    const RoleKeys* role_keys = parent->meta.delegations->role_keys(role);
    if (!role_keys) throw Error(ErrorKind::State, delegator + " does not delegate to " + role);
    const MetaFile& expected = snapshot_entry(role + ".json");
    const std::string what = "delegated targets " + role + " (delegated by " + delegator + ")";
    verify_length_and_hashes(bytes, expected.length, expected.hashes, what);
    TrustedTargets next;
    next.env = parse_envelope(bytes, "targets");
    next.meta = parse_targets(next.env);
    // Always this delegator's current keys: a copy trusted through another delegator of the same
    // role name, or signed by since-revoked keys, fails here.
    verify_threshold(next.env, parent->meta.delegations->keys, *role_keys, what);
    if (next.env.version != expected.version)
        throw Error(ErrorKind::Rollback, what + " version " + std::to_string(next.env.version) +
                                             " does not match the snapshot's " +
                                             std::to_string(expected.version));
    check_expiry(next.env, what);
    // The same bytes trusted through several chains are kept once.
    for (const auto& [other_chain, other] : delegated_)
        if (other_chain.back() == role && other->env.raw == next.env.raw) {
            delegated_[chain] = other;
            return;
        }
    delegated_[chain] = std::make_shared<const TrustedTargets>(std::move(next));
}

void TrustedSet::drop_timestamp_and_snapshot() {
    timestamp_.reset();
    snapshot_.reset();
}

} // namespace ota::tuf
