// Partial verification (Uptane Standard, "Partial verification"), for secondaries too small for
// two full TUF repositories: only the director's targets role, checked with the keys of the
// director's root the ECU trusts. Roots pushed with it are applied first (each N+1 signed by the
// old and the new root keys), so the director can still rotate its targets key.
#pragma once
#include "agent/uptane/director_targets.h"
#include "agent/uptane/pushed_metadata.h"

#include <cstdint>
#include <optional>
#include <string>

namespace ota::uptane {

struct PartialTrust {
    std::string root;    // director root.json
    std::string targets; // director targets.json ("" before the first update)
};

struct PartialResult {
    PartialTrust trust; // what to keep once the ECU accepted the instruction
    DirectorInstructions director;
};

// Checks, against `trusted` at time `now`: the pushed root chain (signatures of old and new
// root keys, consecutive versions, at most max_rotations, the final root not expired); the
// pushed targets (threshold of the root's targets keys, type, not expired, version not below the
// trusted one, and an equal version only with identical bytes); the director rules
// (parse_director_targets). Throws ota::Error; nothing is written.
PartialResult verify_partial(const PartialTrust& trusted, const RepositoryMetadata& pushed,
                             int64_t now, uint32_t max_rotations = 32);

} // namespace ota::uptane
