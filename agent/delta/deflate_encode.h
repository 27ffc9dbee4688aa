// Encoder of deflate Diff blobs (deflate_diff_format.h): finds the deflate streams of the new
// image (agent/deflate/stream_locator.h) and, unless turned off, its zstd frames that can be made
// again exactly (zstd_frame_locator.h), pairs each with a stream of the old image (same zip or
// gzip member name, else the old stream sharing most sampled strings), cuts runs of
// nearby streams into ops of bounded output and decompressed size, and encodes each op. Every
// blob is applied once by the encoder itself and kept only if it rebuilds the op exactly.
// Publisher side only.
#pragma once
#include "agent/deflate/stream_model.h"
#include "agent/delta/delta_plan.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace ota::delta {

struct DeflateOp {
    uint64_t dst_offset = 0;
    uint64_t dst_length = 0;
    struct Segment {
        enum Kind { Raw, Piece, ZstdFrame } kind = Raw;
        uint64_t raw_offset = 0; // raw: bytes [raw_offset, raw_offset + raw_length) of the image
        uint64_t raw_length = 0;
        size_t stream = 0; // piece: of new stream `stream`, between cuts a and b; zstd: the frame
        deflate::Cut a, b;
    };
    std::vector<Segment> segments;
};

struct DeflateSummary {
    size_t new_streams = 0; // found in the new image
    size_t old_streams = 0;
    size_t paired = 0;         // new streams with an old counterpart, described
    size_t zstd_frames = 0;    // of the new streams: zstd frames (the rest are deflate)
    size_t zstd_remade = 0;    // zstd frames paired and made again exactly at a level found
    uint64_t mispredicted = 0; // tokens the predictor got wrong, over all described streams
    uint64_t tokens = 0;
};

class DeflateEncoder {
public:
    DeflateEncoder(const uint8_t* old_image, uint64_t old_size, const uint8_t* new_image,
                   uint64_t new_size, const DeltaOptions& options);
    ~DeflateEncoder();
    DeflateEncoder(const DeflateEncoder&) = delete;
    DeflateEncoder& operator=(const DeflateEncoder&) = delete;

    // The planned ops, in image order, not overlapping.
    const std::vector<DeflateOp>& ops() const;
    // Encodes op i as a Diff op with a deflate blob; safe to call from several threads. Returns
    // an op with an empty blob if the op cannot be encoded or does not rebuild exactly.
    EncodedOp encode(size_t i) const;
    const DeflateSummary& summary() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ota::delta
