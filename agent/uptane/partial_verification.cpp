#include "agent/uptane/partial_verification.h"

#include "agent/common/error.h"
#include "agent/tuf/trusted_set.h"

namespace ota::uptane {

PartialResult verify_partial(const PartialTrust& trusted, const RepositoryMetadata& pushed,
                             int64_t now, uint32_t max_rotations) {
    tuf::TrustedSet set(trusted.root, now);
    PartialResult result;
    result.trust.root = trusted.root;
    uint32_t rotations = 0;
    for (const auto& [version, bytes] : pushed.roots) {
        if (version <= set.root().env.version) continue; // already trusted
        if (++rotations > max_rotations)
            throw Error(ErrorKind::TooLarge, "more than " + std::to_string(max_rotations) +
                                                 " director root rotations at once");
        set.update_root(bytes);
        result.trust.root = bytes;
    }
    set.check_root_not_expired();

    if (pushed.targets.empty())
        throw Error(ErrorKind::NotFound, "no director targets metadata was pushed");
    tuf::Envelope env = tuf::parse_envelope(pushed.targets, "targets");
    tuf::TargetsMeta meta = tuf::parse_targets(env);
    const tuf::RootMeta& root = set.root().meta;
    tuf::verify_threshold(env, root.keys, root.roles.at("targets"), "director targets");
    if (!trusted.targets.empty()) {
        const tuf::Envelope before = tuf::parse_envelope(trusted.targets, "targets");
        if (env.version < before.version)
            throw Error(ErrorKind::Rollback,
                        "director targets version " + std::to_string(env.version) +
                            " is older than the trusted version " + std::to_string(before.version));
        if (env.version == before.version && pushed.targets != trusted.targets)
            throw Error(ErrorKind::Rollback, "director targets version " +
                                                 std::to_string(env.version) +
                                                 " differs from the trusted copy of that version");
    }
    if (env.expires <= now)
        throw Error(ErrorKind::Expired,
                    "director targets expired at " + tuf::format_expiry(env.expires));
    result.director = parse_director_targets(env, meta);
    result.trust.targets = pushed.targets;
    return result;
}

} // namespace ota::uptane
