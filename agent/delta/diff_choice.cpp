#include "agent/delta/diff_choice.h"

#include <algorithm>
#include <cstdint>

namespace ota::delta {

EncodedDiff best_diff(const SuffixArray& sa, const SuffixArray* filtered_sa, const uint8_t* data,
                      uint64_t size, uint64_t offset, uint64_t origin,
                      const DeltaOptions& options) {
    // Every Diff variant is matched, ranked by a quick zstd level, and only the variants close
    // to the best estimate are compressed at the (slow) ultra level.
    const bool try_filter =
        filtered_sa && looks_like_arm64_code(data, size, options.arm64_min_call_density);
    std::vector<DiffStreams> variants;
    for (int filter = 0; filter <= (try_filter ? 1 : 0); ++filter) {
        for (uint64_t min_match : options.diff_min_matches) {
            DiffEncodeOptions dopt;
            dopt.min_match = min_match;
            dopt.arm64_filter = filter == 1;
            dopt.old_origin = origin;
            variants.push_back(
                build_diff_streams(filter ? *filtered_sa : sa, data, size, offset, dopt));
        }
    }
    // A variant the applier would refuse (empty blob) is never kept; with one variant there is
    // nothing to rank.
    std::vector<size_t> estimates(variants.size(), 0);
    if (variants.size() > 1) {
        for (size_t i = 0; i < variants.size(); ++i) {
            size_t e = pack_diff(variants[i], options.rank_level).blob.size();
            estimates[i] = e == 0 ? SIZE_MAX : e;
        }
    }
    const size_t best_estimate =
        estimates.empty() ? SIZE_MAX : *std::min_element(estimates.begin(), estimates.end());
    EncodedDiff diff;
    for (size_t i = 0; i < variants.size(); ++i) {
        if (estimates[i] == SIZE_MAX || static_cast<double>(estimates[i]) >
                                            static_cast<double>(best_estimate) * options.rank_slack)
            continue;
        EncodedDiff d = pack_diff(variants[i], options.diff_level, options.max_extents);
        if (!d.blob.empty() && (diff.blob.empty() || d.blob.size() < diff.blob.size()))
            diff = std::move(d);
    }
    return diff;
}

} // namespace ota::delta
