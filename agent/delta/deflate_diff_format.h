// The layout of a deflate Diff blob ("OTADIFF3", docs/delta.md), shared by the applier and the
// encoder. The op's output holds deflate data (pieces of deflate streams, and raw bytes between
// them such as gzip or zip headers). The blob rebuilds the decompressed bytes of those streams
// (the op's "U" bytes) with an ordinary Diff against decompressed bytes of the old image's
// streams, then writes the exact deflate bits from them with piece descriptions
// (agent/deflate/piece.h).
//
//   magic "OTADIFF3"
//   varint out_size              must equal the op's dst_length
//   varint u_size                the op's U bytes
//   varint origin                position of the first source byte in the Diff's source space
//   varint source_count, then per source (placed one after the other from origin):
//     varint kind                0: raw bytes of the source image, 1: decompressed bytes of a raw
//                                deflate stream in the source image, 2: decompressed bytes of a
//                                zstd frame in the source image
//     varint offset, length      the source image bytes read (the stream's or frame's bytes)
//     kind 1, 2: varint u_begin, u_end   the decompressed bytes taken
//   varint diff_length, then a Diff blob (OTADIFF1, 2 or 4) of u_size output bytes whose
//                                source is the sources' bytes
//   varint plan_raw, plan_packed, then plan_packed bytes: one zstd frame of plan_raw bytes:
//     varint segment_count, then per segment (consuming the U bytes in order):
//       varint 0, length         raw bytes, copied to the output
//       varint 1, piece          a piece description (piece.h), its lead-in and token bytes
//       varint 2, level, version, length   a whole zstd frame: `length` U bytes compressed as
//                                ZSTD_compressCCtx does at `level` with libzstd `version`
//                                (ZSTD_versionNumber(); another version is refused), zstd_frame.h
//
// Every piece starts at a byte boundary of the output; only the last segment may leave its
// stream unfinished (its last partial byte is the next op's lead bits).
#pragma once
#include <cstdint>

namespace ota::delta::format {

inline constexpr char kMagicDeflate[8] = {'O', 'T', 'A', 'D', 'I', 'F', 'F', '3'};
// What the applier holds besides the op output: the U bytes and the sources' bytes (the encoder
// stays well below: 2 MiB and 4 MiB by default).
inline constexpr uint64_t kMaxDeflateU = 16ull << 20;
inline constexpr uint64_t kMaxDeflateSource = 16ull << 20;
inline constexpr uint64_t kMaxDeflateSources = 4096;
inline constexpr uint64_t kMaxDeflateSegments = 1u << 20;

enum class SourceKind : uint8_t { Raw = 0, Stream = 1, ZstdFrame = 2 };
enum class SegmentKind : uint8_t { Raw = 0, Piece = 1, ZstdFrame = 2 };

} // namespace ota::delta::format
