#include "agent/delta/delta_plan.h"

#include "agent/common/error.h"
#include "agent/delta/diff_encode.h"

#include <algorithm>
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

EncodedOp encode_chunk(const SuffixArray& sa, const SuffixArray* filtered_sa, const uint8_t* nw,
                       uint64_t off, uint64_t len, const DeltaOptions& options) {
    const uint8_t* old = sa.old();
    EncodedOp op;
    op.dst_offset = off;
    op.dst_length = len;
    if (all_zero(nw + off, len)) {
        op.type = bundle::OpType::Zero;
        return op;
    }
    if (off + len <= sa.old_size() && std::memcmp(old + off, nw + off, len) == 0) {
        op.type = bundle::OpType::Copy;
        op.src_extents = {{off, len}};
        return op;
    }
    // Every Diff variant is matched, ranked by a quick zstd level, and only the variants close
    // to the best estimate are compressed at the (slow) ultra level.
    const bool try_filter =
        filtered_sa && looks_like_arm64_code(nw + off, len, options.arm64_min_call_density);
    std::vector<DiffStreams> variants;
    for (int filter = 0; filter <= (try_filter ? 1 : 0); ++filter) {
        for (uint64_t min_match : options.diff_min_matches) {
            DiffEncodeOptions dopt;
            dopt.min_match = min_match;
            dopt.arm64_filter = filter == 1;
            variants.push_back(
                build_diff_streams(filter ? *filtered_sa : sa, nw + off, len, off, dopt));
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
    if (!diff.blob.empty()) {
        op.type = bundle::OpType::Diff;
        op.blob = std::move(diff.blob);
        op.src_extents = diff.src_extents;
        if (op.blob.size() <= len * options.good_enough_ratio) return op;
    }
    std::string z = zstd_compress(nw + off, len, options.zstd_level);
    if (op.blob.empty() || z.size() < op.blob.size()) {
        op.type = bundle::OpType::Zstd;
        op.blob = std::move(z);
        op.src_extents.clear();
    }
    // ZstdPatch prefixes: the ranges the diff matched, and the old bytes around the same offset;
    // the smaller frame wins. The agent holds the prefix in memory, so it is capped at two ops.
    const uint64_t max_prefix = 2 * options.op_size;
    uint64_t prefix_len = 0;
    for (const auto& e : diff.src_extents)
        prefix_len += e.length;
    std::vector<std::vector<bundle::Extent>> prefixes;
    if (prefix_len > 0 && prefix_len <= max_prefix) prefixes.push_back(diff.src_extents);
    uint64_t start = off > options.op_size / 2 ? off - options.op_size / 2 : 0;
    if (start < sa.old_size())
        prefixes.push_back({{start, std::min(max_prefix, sa.old_size() - start)}});
    for (const auto& prefix_extents : prefixes) {
        std::string prefix = gather(old, prefix_extents);
        std::string zp =
            zstd_compress(nw + off, len, options.zstd_level,
                          reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
        if (zp.size() < op.blob.size()) {
            op.type = bundle::OpType::ZstdPatch;
            op.blob = std::move(zp);
            op.src_extents = prefix_extents;
        }
    }
    return op;
}

} // namespace

void encode_delta(const uint8_t* old_data, uint64_t old_size, const uint8_t* new_data,
                  uint64_t new_size, const DeltaOptions& options,
                  const std::function<void(EncodedOp&&)>& sink, DeltaStats* stats) {
    if (options.op_size == 0 || options.op_size > bundle::kMaxOpOutput)
        throw Error(ErrorKind::Config, "delta op size must be between 1 byte and 64 MiB");
    auto t0 = std::chrono::steady_clock::now();
    SuffixArray sa(old_data, old_size);
    std::vector<uint8_t> filtered_old;
    std::unique_ptr<SuffixArray> filtered_sa;
    if (options.arm64_min_call_density > 0 &&
        looks_like_arm64_code(old_data, old_size, options.arm64_min_call_density)) {
        filtered_old = arm64_filtered_copy(old_data, old_size, 0);
        filtered_sa = std::make_unique<SuffixArray>(filtered_old.data(), old_size);
    }
    if (options.verbose)
        std::fprintf(stderr, "suffix array over %llu bytes: %.1f s\n",
                     static_cast<unsigned long long>(old_size),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

    const unsigned threads = std::max(
        1u, options.threads ? options.threads : std::min(std::thread::hardware_concurrency(), 16u));
    std::deque<std::future<EncodedOp>> pending;
    uint64_t next = 0;
    auto drain_one = [&] {
        EncodedOp op = pending.front().get();
        pending.pop_front();
        if (stats) {
            stats->ops[static_cast<int>(op.type)]++;
            stats->blob_bytes[static_cast<int>(op.type)] += op.blob.size();
        }
        if (options.verbose)
            std::fprintf(stderr, "op @%llu len %llu: %s %zu bytes\n",
                         static_cast<unsigned long long>(op.dst_offset),
                         static_cast<unsigned long long>(op.dst_length), type_name(op.type),
                         op.blob.size());
        sink(std::move(op));
    };
    while (next < new_size) {
        uint64_t len = std::min(options.op_size, new_size - next);
        uint64_t off = next;
        pending.push_back(std::async(std::launch::async, [&, off, len] {
            return encode_chunk(sa, filtered_sa.get(), new_data, off, len, options);
        }));
        next += len;
        if (pending.size() >= threads) drain_one();
    }
    while (!pending.empty())
        drain_one();
}

} // namespace ota::delta
