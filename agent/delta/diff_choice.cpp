#include "agent/delta/diff_choice.h"

#include "agent/delta/each_index.h"

#include <algorithm>
#include <cstdint>

namespace ota::delta {

std::vector<RankedVariant> rank_plain_variants(const SuffixArray& sa, const uint8_t* data,
                                               uint64_t size, uint64_t offset, uint64_t origin,
                                               const DeltaOptions& options) {
    std::vector<RankedVariant> out(options.diff_min_matches.size());
    each_index(out.size(), options.candidate_threads, [&](size_t i) {
        DiffEncodeOptions dopt;
        dopt.min_match = options.diff_min_matches[i];
        dopt.old_origin = origin;
        DiffStreams streams = build_diff_streams(sa, data, size, offset, dopt);
        out[i].packed =
            pack_diff(streams, options.rank_level, options.max_extents, options.flagged_diff).blob;
        out[i].reads = std::move(streams.reads);
    });
    return out;
}

EncodedDiff choose_diff(std::vector<RankedVariant> plain, const SuffixArray* filtered_sa,
                        const uint8_t* data, uint64_t size, uint64_t offset, uint64_t origin,
                        const DeltaOptions& options) {
    // Every variant is ranked by its size at a quick zstd level, and only the variants close to
    // the best estimate are compressed at the (slow) ultra level.
    std::vector<DiffStreams> filtered;
    if (filtered_sa && looks_like_arm64_code(data, size, options.arm64_min_call_density, offset)) {
        for (uint64_t min_match : options.diff_min_matches) {
            DiffEncodeOptions dopt;
            dopt.min_match = min_match;
            dopt.arm64_filter = true;
            dopt.old_origin = origin;
            filtered.push_back(build_diff_streams(*filtered_sa, data, size, offset, dopt));
        }
    }
    const size_t count = plain.size() + filtered.size();
    std::vector<size_t> estimates;
    for (const auto& v : plain)
        estimates.push_back(v.packed.empty() ? SIZE_MAX : v.packed.size());
    for (const auto& f : filtered) {
        const size_t e =
            count > 1 ? pack_diff(f, options.rank_level, options.max_extents, options.flagged_diff)
                            .blob.size()
                      : 1;
        estimates.push_back(e == 0 ? SIZE_MAX : e);
    }
    const size_t best_estimate =
        estimates.empty() ? SIZE_MAX : *std::min_element(estimates.begin(), estimates.end());
    std::vector<EncodedDiff> packed(count);
    each_index(count, options.candidate_threads, [&](size_t i) {
        if (estimates[i] == SIZE_MAX || static_cast<double>(estimates[i]) >
                                            static_cast<double>(best_estimate) * options.rank_slack)
            return;
        packed[i] = i < plain.size()
                        ? pack_diff(unpack_diff(plain[i].packed, std::move(plain[i].reads)),
                                    options.diff_level, options.max_extents, options.flagged_diff)
                        : pack_diff(filtered[i - plain.size()], options.diff_level,
                                    options.max_extents, options.flagged_diff);
    });
    EncodedDiff diff;
    for (auto& d : packed)
        if (!d.blob.empty() && (diff.blob.empty() || d.blob.size() < diff.blob.size()))
            diff = std::move(d);
    return diff;
}

EncodedDiff best_diff(const SuffixArray& sa, const SuffixArray* filtered_sa, const uint8_t* data,
                      uint64_t size, uint64_t offset, uint64_t origin,
                      const DeltaOptions& options) {
    return choose_diff(rank_plain_variants(sa, data, size, offset, origin, options), filtered_sa,
                       data, size, offset, origin, options);
}

} // namespace ota::delta
