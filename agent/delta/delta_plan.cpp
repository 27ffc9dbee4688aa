#include "agent/delta/delta_plan.h"

#include "agent/common/error.h"
#include "agent/delta/deflate_encode.h"
#include "agent/delta/diff_choice.h"
#include "agent/delta/diff_encode.h"

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
    EncodedDiff diff = best_diff(sa, filtered_sa, nw + off, len, off, 0, options);
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
    // Deflate streams of the new image get their own ops; plain ops cover the rest.
    std::unique_ptr<DeflateEncoder> deflate;
    if (options.deflate) {
        deflate = std::make_unique<DeflateEncoder>(old_data, old_size, new_data, new_size, options);
        if (options.verbose) {
            const DeflateSummary& s = deflate->summary();
            std::fprintf(stderr, "deflate: %zu streams (old image %zu), %zu described, %zu ops\n",
                         s.new_streams, s.old_streams, s.paired, deflate->ops().size());
        }
    }
    std::atomic<uint64_t> fallbacks{0};
    size_t next_deflate = 0;
    while (next < new_size) {
        const DeflateOp* d = deflate && next_deflate < deflate->ops().size()
                                 ? &deflate->ops()[next_deflate]
                                 : nullptr;
        if (d && d->dst_offset == next) {
            const size_t index = next_deflate++;
            pending.push_back(std::async(std::launch::async, [&, index, d] {
                EncodedOp op = deflate->encode(index);
                // A deflate blob that failed, or is no better than storing the bytes, gives way
                // to the plain candidates.
                if (op.blob.empty() ||
                    op.blob.size() >=
                        zstd_compress(new_data + d->dst_offset, d->dst_length, 3).size()) {
                    fallbacks++;
                    return encode_chunk(sa, filtered_sa.get(), new_data, d->dst_offset,
                                        d->dst_length, options);
                }
                return op;
            }));
            next += d->dst_length;
        } else {
            const uint64_t limit = d ? d->dst_offset : new_size;
            const uint64_t len = std::min(options.op_size, limit - next);
            const uint64_t off = next;
            pending.push_back(std::async(std::launch::async, [&, off, len] {
                return encode_chunk(sa, filtered_sa.get(), new_data, off, len, options);
            }));
            next += len;
        }
        if (pending.size() >= threads) drain_one();
    }
    while (!pending.empty())
        drain_one();
    if (stats) stats->deflate_fallbacks = fallbacks;
}

} // namespace ota::delta
