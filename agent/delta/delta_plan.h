// Splits a new image into operations of bounded output size and encodes each against the old image
// with whichever op is smallest: Zero, Copy, Diff (bsdiff-class), ZstdPatch (old extents as zstd
// prefix) or plain Zstd. Publisher side only.
#pragma once
#include "agent/bundle/format.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ota::delta {

struct DeltaOptions {
    // Target bytes per operation. The agent holds one op output, one blob and (for Diff) half an
    // op of stream data, or a ZstdPatch prefix, at a time, so this sets the apply memory; bigger
    // ops compress a little better because each op's streams are independent zstd frames.
    uint64_t op_size = 2ull << 20;
    // zstd level of the Zstd / ZstdPatch candidates, and of the Diff streams (ultra levels pay off
    // on the sparse diff stream; the applier's cost does not change with the level).
    int zstd_level = 19;
    int diff_level = 22;
    // The Diff is encoded once per value (DiffEncodeOptions::min_match) and the smallest kept:
    // which threshold wins depends on the data (measured on the benchmark corpus).
    std::vector<uint64_t> diff_min_matches = {8, 16};
    // The Diff variants are ranked by their size at rank_level; only those within rank_slack of
    // the smallest estimate are compressed at diff_level (the ultra levels cost most of the time).
    int rank_level = 9;
    double rank_slack = 1.03;
    // ARM64 branch filter (diff_format.h): when the old image looks like ARM64 code (BL density
    // above this), Diff ops are also encoded between the filtered images and the smaller kept.
    // 0 disables it. Costs a filtered copy of the old image and a second suffix array.
    double arm64_min_call_density = 0.02;
    // Operations encoded in parallel (the suffix array is shared read-only); 0 = one per core.
    unsigned threads = 0;
    // Threads one op's Diff variants and zstd candidates may use at once (encode_delta raises it
    // to threads / ops when there are fewer ops than threads to keep busy).
    unsigned candidate_threads = 1;
    // The flagged Diff blob layout (OTADIFF4: sparse diff stream, streams stored as they are).
    // Off: only the layouts agents before it read (what `ota-publish delta --format 2` makes).
    bool flagged_diff = true;
    // Source extents listed per op (they cost header bytes; the applier checks reads against them).
    size_t max_extents = 16;
    // A Diff blob at most this fraction of the op output is kept without trying the zstd ops.
    double good_enough_ratio = 1.0 / 16;
    // Deflate streams (gzip, zip members, zlib) in the new image are described bit-exactly and
    // their decompressed bytes diffed against the old image's streams (deflate_encode.h). Per
    // op at most deflate_op_u decompressed bytes and deflate_source bytes of decompressed old
    // data: the applier holds both (besides the op output).
    bool deflate = true;
    // Zstd frames too (squashfs zstd blocks), where a level re-creates them exactly with this
    // libzstd; the agent must have the same libzstd version (zstd_frame.h).
    bool zstd_frames = true;
    uint64_t deflate_op_u = 2ull << 20;
    uint64_t deflate_source = 4ull << 20;
    // Progress lines on stderr.
    bool verbose = false;
    // The bundle's header: format 3 (compact binary), or format 2 (JSON) for older agents.
    bool compact_header = true;
};

struct EncodedOp {
    bundle::OpType type = bundle::OpType::Zero;
    bool deflate = false; // a Diff op with a deflate blob (OTADIFF3)
    uint64_t dst_offset = 0;
    uint64_t dst_length = 0;
    std::vector<bundle::Extent> src_extents;
    std::string blob;
};

struct DeltaStats {
    uint64_t ops[5] = {};        // per OpType
    uint64_t blob_bytes[5] = {}; // per OpType
    uint64_t deflate_ops = 0;    // Diff ops that rebuild deflate streams (counted in Diff too)
    uint64_t deflate_blob_bytes = 0;
    uint64_t deflate_fallbacks = 0; // planned deflate ops encoded as plain ops instead
};

// Calls sink with every op in write order (dst ranges contiguous from 0 to new_size).
void encode_delta(const uint8_t* old_data, uint64_t old_size, const uint8_t* new_data,
                  uint64_t new_size, const DeltaOptions& options,
                  const std::function<void(EncodedOp&&)>& sink, DeltaStats* stats = nullptr);

} // namespace ota::delta
