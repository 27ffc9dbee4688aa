// Encodes the Diff variants of one op's bytes (match thresholds, with and without the ARM64
// filter) and keeps the smallest: what the planner does for every op that is not a Copy or Zero.
#pragma once
#include "agent/delta/delta_plan.h"
#include "agent/delta/diff_encode.h"

namespace ota::delta {

// `data` is the op's output (at `offset` in the new image or stream); `sa` covers the old bytes
// placed at `origin` in the source, `filtered_sa` (optional) the same bytes ARM64-filtered at
// that origin. An empty blob: no variant is acceptable to the applier.
EncodedDiff best_diff(const SuffixArray& sa, const SuffixArray* filtered_sa, const uint8_t* data,
                      uint64_t size, uint64_t offset, uint64_t origin, const DeltaOptions& options);

} // namespace ota::delta
