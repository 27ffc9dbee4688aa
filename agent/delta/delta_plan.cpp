#include "agent/delta/delta_plan.h"

#include "agent/common/error.h"
#include "agent/delta/deflate_encode.h"
#include "agent/delta/diff_choice.h"
#include "agent/delta/diff_encode.h"
#include "agent/delta/each_index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <memory>
#include <thread>

namespace ota::delta {

namespace {

const char* type_name(bundle::OpType t) {
    static const char* names[] = {"zero", "zstd", "copy", "zstd_patch", "diff"};
    return names[static_cast<int>(t)];
}

bool all_zero(const uint8_t* p, uint64_t n) {
    static const uint8_t zeros[4096] = {};
    while (n > 0) {
        uint64_t k = std::min<uint64_t>(n, sizeof(zeros));
        if (std::memcmp(p, zeros, k) != 0) return false;
        p += k;
        n -= k;
    }
    return true;
}

// The old bytes a ZstdPatch op would use as its prefix: the ranges the diff matched against.
std::string gather(const uint8_t* old, const std::vector<bundle::Extent>& extents) {
    std::string s;
    for (const auto& e : extents)
        s.append(reinterpret_cast<const char*>(old + e.offset), e.length);
    return s;
}

// An op between the two encoding phases: final already (Zero, Copy, a deflate op), or its
// plain Diff variants ranked and waiting for the filtered ones.
struct StagedOp {
    EncodedOp op;
    bool done = false;
    std::vector<RankedVariant> plain;
};

// Phase one of an op, with the plain suffix array.
StagedOp stage_plain(const SuffixArray& sa, const uint8_t* nw, uint64_t off, uint64_t len,
                     const DeltaOptions& options) {
    const uint8_t* old = sa.old();
    StagedOp s;
    EncodedOp& op = s.op;
    op.dst_offset = off;
    op.dst_length = len;
    if (all_zero(nw + off, len)) {
        op.type = bundle::OpType::Zero;
        s.done = true;
        return s;
    }
    if (off + len <= sa.old_size() && std::memcmp(old + off, nw + off, len) == 0) {
        op.type = bundle::OpType::Copy;
        op.src_extents = {{off, len}};
        s.done = true;
        return s;
    }
    s.plain = rank_plain_variants(sa, nw + off, len, off, 0, options);
    return s;
}

// Phase two: the filtered Diff variants (if any), the best Diff, and the zstd candidates when the
// Diff is not clearly good.
EncodedOp stage_finish(StagedOp&& staged, const SuffixArray* filtered_sa, const uint8_t* old,
                       uint64_t old_size, const uint8_t* nw, const DeltaOptions& options) {
    EncodedOp op = std::move(staged.op);
    if (staged.done) return op;
    const uint64_t off = op.dst_offset, len = op.dst_length;
    EncodedDiff diff =
        choose_diff(std::move(staged.plain), filtered_sa, nw + off, len, off, 0, options);
    if (!diff.blob.empty()) {
        op.type = bundle::OpType::Diff;
        op.blob = std::move(diff.blob);
        op.src_extents = diff.src_extents;
        if (op.blob.size() <= len * options.good_enough_ratio) return op;
    }
    // The zstd candidates: the bytes alone, then ZstdPatch with each prefix (the ranges the diff
    // matched, and the old bytes around the same offset); the smallest wins, earlier ones on a
    // tie. The agent holds the prefix in memory, so it is capped at two ops.
    const uint64_t max_prefix = 2 * options.op_size;
    uint64_t prefix_len = 0;
    for (const auto& e : diff.src_extents)
        prefix_len += e.length;
    std::vector<std::vector<bundle::Extent>> prefixes = {{}};
    if (prefix_len > 0 && prefix_len <= max_prefix) prefixes.push_back(diff.src_extents);
    uint64_t start = off > options.op_size / 2 ? off - options.op_size / 2 : 0;
    if (start < old_size) prefixes.push_back({{start, std::min(max_prefix, old_size - start)}});
    std::vector<std::string> frames(prefixes.size());
    each_index(prefixes.size(), options.candidate_threads, [&](size_t i) {
        const std::string prefix = gather(old, prefixes[i]);
        frames[i] = prefix.empty() ? zstd_compress(nw + off, len, options.zstd_level)
                                   : zstd_compress(nw + off, len, options.zstd_level,
                                                   reinterpret_cast<const uint8_t*>(prefix.data()),
                                                   prefix.size());
    });
    for (size_t i = 0; i < frames.size(); ++i) {
        if (!op.blob.empty() && frames[i].size() >= op.blob.size()) continue;
        op.type = prefixes[i].empty() ? bundle::OpType::Zstd : bundle::OpType::ZstdPatch;
        op.blob = std::move(frames[i]);
        op.src_extents = prefixes[i];
    }
    return op;
}

// Whether most of data[0, size) is found in the old image in runs of 32 bytes or more (judged on
// 32 sampled positions): then the plain Diff may cost little.
bool mostly_in(const SuffixArray& sa, const uint8_t* data, uint64_t size) {
    if (size < 64) return true;
    unsigned found = 0;
    for (uint64_t i = 0; i < 32; ++i) {
        const uint64_t at = (size - 32) * i / 32;
        uint64_t pos = 0;
        if (sa.longest_match(data + at, 32, &pos) >= 32) ++found;
    }
    return found >= 8;
}

uint64_t smallest_estimate(const StagedOp& s) {
    uint64_t best = UINT64_MAX;
    for (const auto& v : s.plain)
        if (!v.packed.empty()) best = std::min<uint64_t>(best, v.packed.size());
    return best;
}

// Runs work(0 .. count-1) on up to `threads` threads at a time and hands the results to
// deliver() in index order.
template <class Result>
void run_in_order(size_t count, unsigned threads, const std::function<Result(size_t)>& work,
                  const std::function<void(size_t, Result&&)>& deliver) {
    std::deque<std::pair<size_t, std::future<Result>>> pending;
    for (size_t i = 0; i < count; ++i) {
        pending.emplace_back(i, std::async(std::launch::async, [&work, i] { return work(i); }));
        if (pending.size() >= threads) {
            deliver(pending.front().first, pending.front().second.get());
            pending.pop_front();
        }
    }
    while (!pending.empty()) {
        deliver(pending.front().first, pending.front().second.get());
        pending.pop_front();
    }
}

} // namespace

void encode_delta(const uint8_t* old_data, uint64_t old_size, const uint8_t* new_data,
                  uint64_t new_size, const DeltaOptions& options,
                  const std::function<void(EncodedOp&&)>& sink, DeltaStats* stats) {
    if (options.op_size == 0 || options.op_size > bundle::kMaxOpOutput)
        throw Error(ErrorKind::Config, "delta op size must be between 1 byte and 64 MiB");
    auto t0 = std::chrono::steady_clock::now();
    auto sa = std::make_unique<SuffixArray>(old_data, old_size);
    // ARM64 code is also matched between the filtered images, over a second suffix array. The
    // two are never held at once: every op first gets its plain variants ranked, then the plain
    // suffix array is freed and the filtered one built (peak memory: one suffix array, 4 bytes
    // per old byte, plus the filtered copy of the old image).
    const bool filter = options.arm64_min_call_density > 0 &&
                        looks_like_arm64_code(old_data, old_size, options.arm64_min_call_density);
    if (options.verbose)
        std::fprintf(stderr, "suffix array over %llu bytes: %.1f s\n",
                     static_cast<unsigned long long>(old_size),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const unsigned threads = std::max(
        1u, options.threads ? options.threads : std::min(std::thread::hardware_concurrency(), 16u));

    // Deflate streams of the new image get their own ops; plain ops cover the rest.
    std::unique_ptr<DeflateEncoder> deflate;
    if (options.deflate) {
        deflate = std::make_unique<DeflateEncoder>(old_data, old_size, new_data, new_size, options);
        if (options.verbose) {
            const DeflateSummary& s = deflate->summary();
            std::fprintf(stderr,
                         "deflate: %zu streams (old image %zu; %zu zstd frames, %zu made again), "
                         "%zu described, %zu ops; matcher wrong on %llu of %llu sampled tokens\n",
                         s.new_streams, s.old_streams, s.zstd_frames, s.zstd_remade, s.paired,
                         deflate->ops().size(), static_cast<unsigned long long>(s.mispredicted),
                         static_cast<unsigned long long>(s.tokens));
        }
    }
    struct Job {
        uint64_t off, len;
        size_t deflate_op; // SIZE_MAX: a plain op
    };
    std::vector<Job> jobs;
    size_t d = 0;
    for (uint64_t next = 0; next < new_size;) {
        const DeflateOp* op = deflate && d < deflate->ops().size() ? &deflate->ops()[d] : nullptr;
        if (op && op->dst_offset == next) {
            jobs.push_back({next, op->dst_length, d++});
            next += op->dst_length;
        } else {
            const uint64_t limit = op ? op->dst_offset : new_size;
            const uint64_t len = std::min(options.op_size, limit - next);
            jobs.push_back({next, len, SIZE_MAX});
            next += len;
        }
    }

    // Few ops for the threads: the ops' own pieces get the threads the others would leave idle
    // (ops differ in cost: with two ops on two threads, the small one ends early and leaves the
    // large one alone, so the share counts twice the threads; more ops than that: one each).
    DeltaOptions op_options = options;
    if (!jobs.empty()) {
        const size_t share = (2 * size_t{threads} + jobs.size() - 1) / jobs.size();
        op_options.candidate_threads = std::max<unsigned>(
            options.candidate_threads,
            static_cast<unsigned>(std::min<size_t>(share > 1 ? share : 1, threads)));
    }
    std::atomic<uint64_t> fallbacks{0};
    auto first_phase = [&](size_t i) {
        const Job& j = jobs[i];
        if (j.deflate_op != SIZE_MAX) {
            StagedOp s;
            s.op = deflate->encode(j.deflate_op);
            s.done = true;
            // A deflate blob that failed, or is no better than storing the bytes, gives way to
            // the plain candidates; so does one the plain Diff beats, which can happen where
            // most compressed bytes are still in the old image.
            const bool usable = !s.op.blob.empty() &&
                                s.op.blob.size() < zstd_compress(new_data + j.off, j.len, 3).size();
            if (usable && !mostly_in(*sa, new_data + j.off, j.len)) return s;
            StagedOp plain = stage_plain(*sa, new_data, j.off, j.len, op_options);
            if (usable && !plain.done && s.op.blob.size() < smallest_estimate(plain)) return s;
            fallbacks++;
            return plain;
        }
        return stage_plain(*sa, new_data, j.off, j.len, op_options);
    };
    auto emit = [&](size_t, EncodedOp&& op) {
        if (stats) {
            stats->ops[static_cast<int>(op.type)]++;
            stats->blob_bytes[static_cast<int>(op.type)] += op.blob.size();
            if (op.deflate) {
                stats->deflate_ops++;
                stats->deflate_blob_bytes += op.blob.size();
            }
        }
        if (options.verbose)
            std::fprintf(stderr, "op @%llu len %llu: %s%s %zu bytes\n",
                         static_cast<unsigned long long>(op.dst_offset),
                         static_cast<unsigned long long>(op.dst_length), type_name(op.type),
                         op.deflate ? " (deflate)" : "", op.blob.size());
        sink(std::move(op));
    };

    if (!filter) {
        run_in_order<EncodedOp>(
            jobs.size(), threads,
            [&](size_t i) {
                return stage_finish(first_phase(i), nullptr, old_data, old_size, new_data,
                                    op_options);
            },
            emit);
    } else {
        std::vector<StagedOp> staged(jobs.size());
        run_in_order<StagedOp>(jobs.size(), threads, first_phase,
                               [&](size_t i, StagedOp&& s) { staged[i] = std::move(s); });
        sa.reset();
        deflate.reset();
        t0 = std::chrono::steady_clock::now();
        std::vector<uint8_t> filtered_old = arm64_filtered_copy(old_data, old_size, 0);
        SuffixArray filtered_sa(filtered_old.data(), old_size);
        if (options.verbose)
            std::fprintf(
                stderr, "filtered suffix array: %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        run_in_order<EncodedOp>(
            jobs.size(), threads,
            [&](size_t i) {
                return stage_finish(std::move(staged[i]), &filtered_sa, old_data, old_size,
                                    new_data, op_options);
            },
            emit);
    }
    if (stats) stats->deflate_fallbacks = fallbacks;
}

} // namespace ota::delta
