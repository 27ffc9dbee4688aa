// Encodes the Diff variants of one op's bytes (match thresholds, with and without the ARM64
// filter) and keeps the smallest: what the planner does for every op that is not a Copy or Zero.
#pragma once
#include "agent/delta/delta_plan.h"
#include "agent/delta/diff_encode.h"

namespace ota::delta {

// A Diff variant matched against the plain old bytes, kept packed at DeltaOptions::rank_level
// (its size is the estimate the variants are ranked by): the planner can then free the plain
// suffix array before it builds the ARM64-filtered one, and still choose exactly as if both had
// been there at once.
struct RankedVariant {
    std::string packed; // empty: a variant the applier would refuse
    std::vector<bundle::Extent> reads;
};

// The plain variants of one op's bytes (one per DeltaOptions::diff_min_matches).
std::vector<RankedVariant> rank_plain_variants(const SuffixArray& sa, const uint8_t* data,
                                               uint64_t size, uint64_t offset, uint64_t origin,
                                               const DeltaOptions& options);

// Adds the filtered variants (when `filtered_sa` is given and the bytes look like ARM64 code),
// then compresses every variant ranked within rank_slack of the best at diff_level and keeps the
// smallest. An empty blob: no variant is acceptable to the applier.
EncodedDiff choose_diff(std::vector<RankedVariant> plain, const SuffixArray* filtered_sa,
                        const uint8_t* data, uint64_t size, uint64_t offset, uint64_t origin,
                        const DeltaOptions& options);

// `data` is the op's output (at `offset` in the new image or stream); `sa` covers the old bytes
// placed at `origin` in the source, `filtered_sa` (optional) the same bytes ARM64-filtered at
// that origin. An empty blob: no variant is acceptable to the applier.
EncodedDiff best_diff(const SuffixArray& sa, const SuffixArray* filtered_sa, const uint8_t* data,
                      uint64_t size, uint64_t offset, uint64_t origin, const DeltaOptions& options);

} // namespace ota::delta
