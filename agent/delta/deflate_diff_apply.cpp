// Applier of deflate Diff blobs: decompress the old streams' bytes the blob names, rebuild the
// op's decompressed bytes with the inner Diff, then write the deflate bits back exactly.
#include "agent/common/error.h"
#include "agent/deflate/bit_writer.h"
#include "agent/deflate/piece.h"
#include "agent/deflate/varint.h"
#include "agent/delta/allowed_ranges.h"
#include "agent/delta/deflate_diff.h"
#include "agent/delta/deflate_diff_format.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_format.h"
#include "agent/delta/memory_source.h"
#include "agent/delta/zstd_frame.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace ota::delta {

namespace {

[[noreturn]] void malformed(const std::string& what) {
    throw Error(ErrorKind::Malformed, "deflate diff blob: " + what);
}

struct Source {
    format::SourceKind kind;
    uint64_t offset, length, u_begin, u_end;
};

// Appends the decompressed bytes [u_begin, u_end) of the raw deflate stream at source bytes
// [offset, offset + length) to `out`, reading the source in small pieces.
void inflate_range(hal::BlockDevice& device, const Source& s, std::vector<uint8_t>& out) {
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) throw Error(ErrorKind::Io, "out of memory for zlib");
    struct End {
        z_stream* z;
        ~End() { inflateEnd(z); }
    } end{&z};
    std::vector<uint8_t> in(64u << 10), scratch(64u << 10);
    uint64_t read = 0, produced = 0;
    while (produced < s.u_end) {
        if (z.avail_in == 0) {
            if (read == s.length) malformed("a source stream ends early");
            const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), s.length - read));
            device.read(s.offset + read, in.data(), n);
            read += n;
            z.next_in = in.data();
            z.avail_in = static_cast<uInt>(n);
        }
        // Bytes before u_begin go to scratch, the rest straight to their place in out.
        uint8_t* dst;
        uint64_t room;
        if (produced < s.u_begin) {
            dst = scratch.data();
            room = std::min<uint64_t>(scratch.size(), s.u_begin - produced);
        } else {
            const size_t at = out.size();
            room = std::min<uint64_t>(64u << 10, s.u_end - produced);
            out.resize(at + static_cast<size_t>(room));
            dst = out.data() + at;
        }
        z.next_out = dst;
        z.avail_out = static_cast<uInt>(room);
        const int rc = inflate(&z, Z_NO_FLUSH);
        const uint64_t got = room - z.avail_out;
        if (produced >= s.u_begin) out.resize(out.size() - static_cast<size_t>(room - got));
        produced += got;
        if (rc == Z_STREAM_END && produced < s.u_end) malformed("a source stream ends early");
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && got == 0 && z.avail_in == 0))
            malformed(std::string("a source stream does not decompress: ") +
                      (z.msg ? z.msg : "zlib error"));
    }
}

// Appends the decompressed bytes [u_begin, u_end) of the zstd frame at source bytes
// [offset, offset + length) to `out`.
void unzstd_range(hal::BlockDevice& device, const Source& s, std::vector<uint8_t>& out) {
    std::vector<uint8_t> frame(static_cast<size_t>(s.length));
    device.read(s.offset, frame.data(), frame.size());
    const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxZstdFrameU)
        malformed("a source zstd frame has no usable content size");
    if (s.u_end > size) malformed("source range beyond its zstd frame");
    std::vector<uint8_t> u(static_cast<size_t>(size));
    const size_t n = ZSTD_decompress(u.data(), u.size(), frame.data(), frame.size());
    if (ZSTD_isError(n) || n != size) malformed("a source zstd frame does not decompress");
    out.insert(out.end(), u.begin() + static_cast<ptrdiff_t>(s.u_begin),
               u.begin() + static_cast<ptrdiff_t>(s.u_end));
}

// Writes one zstd frame segment: the next `length` U bytes compressed again; returns `length`.
uint64_t write_zstd_frame(deflate::ByteReader& plan, const uint8_t* u, uint64_t u_left,
                          ZstdFrameMaker& maker, deflate::BitWriter& bits) {
    const int level = static_cast<int>(plan.varint(64, "zstd level"));
    const uint64_t version = plan.varint(UINT32_MAX, "libzstd version");
    const uint64_t length = plan.varint(std::min(u_left, kMaxZstdFrameU), "zstd frame length");
    if (version != ZSTD_versionNumber())
        throw Error(ErrorKind::Unsupported,
                    "deflate diff blob: a zstd frame was made with libzstd " +
                        std::to_string(version) + " and this agent has " +
                        std::to_string(ZSTD_versionNumber()) +
                        ", which may compress differently (publish the delta with "
                        "--no-zstd-frames for this agent)");
    if (bits.position() % 8 != 0) malformed("a zstd frame starts inside a byte");
    const std::vector<uint8_t>& frame = maker.make(u, static_cast<size_t>(length), level);
    bits.bytes(frame.data(), frame.size());
    return length;
}

} // namespace

void apply_deflate_diff(const uint8_t* blob, size_t blob_size, hal::BlockDevice& source,
                        const std::vector<bundle::Extent>& allowed, uint8_t* out, size_t out_size) {
    deflate::ByteReader in(blob + sizeof(format::kMagicDeflate),
                           blob_size - sizeof(format::kMagicDeflate), "deflate diff blob");
    if (in.varint() != out_size) malformed("output size does not match the operation");
    const uint64_t u_size = in.varint(format::kMaxDeflateU, "decompressed size");
    const uint64_t origin = in.varint(UINT64_MAX / 2, "source origin");
    const uint64_t count = in.varint(format::kMaxDeflateSources, "source count");
    AllowedRanges ranges(allowed);
    std::vector<Source> sources;
    uint64_t taken = 0;
    for (uint64_t i = 0; i < count; ++i) {
        Source s{};
        s.kind = static_cast<format::SourceKind>(in.varint(2, "source kind"));
        s.offset = in.varint();
        s.length = in.varint();
        if (s.offset > source.size() || s.length > source.size() - s.offset || s.length == 0)
            malformed("a source lies outside the source image");
        if (!ranges.contains(s.offset, s.length))
            malformed("a source lies outside the operation's source extents");
        if (s.kind != format::SourceKind::Raw) {
            s.u_begin = in.varint();
            s.u_end = in.varint();
            if (s.u_begin >= s.u_end) malformed("empty source range");
            // Deflate expands at most 1032:1: a range past that cannot exist (and would only
            // burn time decompressing).
            if (s.kind == format::SourceKind::Stream && s.u_end / 1032 > s.length)
                malformed("source range beyond its stream");
            if (s.kind == format::SourceKind::ZstdFrame &&
                (s.u_end > kMaxZstdFrameU || s.length > ZSTD_compressBound(kMaxZstdFrameU)))
                malformed("a source zstd frame larger than a frame may be");
        } else {
            s.u_begin = 0;
            s.u_end = s.length;
        }
        if (s.u_end - s.u_begin > format::kMaxDeflateSource - taken)
            malformed("sources larger than allowed");
        taken += s.u_end - s.u_begin;
        sources.push_back(s);
    }
    const uint64_t diff_length = in.varint(in.left(), "diff length");
    const uint8_t* diff = in.bytes(static_cast<size_t>(diff_length));
    if (diff_length < 8 || (std::memcmp(diff, format::kMagic, 8) != 0 &&
                            std::memcmp(diff, format::kMagicArm64, 8) != 0 &&
                            std::memcmp(diff, format::kMagicFlags, 8) != 0))
        malformed("inner diff is not a plain Diff blob");
    const uint64_t plan_limit = std::min<uint64_t>(32ull << 20, 4 * (out_size + u_size) + 65536);
    const uint64_t plan_raw = in.varint(plan_limit, "plan size");
    const uint64_t plan_packed = in.varint();
    if (plan_packed != in.left()) malformed("plan length does not match the blob size");
    const uint8_t* plan_src = in.bytes(static_cast<size_t>(plan_packed));

    // The sources, decompressed where they are streams.
    std::vector<uint8_t> old;
    old.reserve(static_cast<size_t>(taken));
    for (const Source& s : sources) {
        if (s.kind == format::SourceKind::Raw) {
            const size_t at = old.size();
            old.resize(at + static_cast<size_t>(s.length));
            source.read(s.offset, old.data() + at, static_cast<size_t>(s.length));
        } else if (s.kind == format::SourceKind::Stream) {
            inflate_range(source, s, old);
        } else {
            unzstd_range(source, s, old);
        }
    }
    // The op's decompressed bytes.
    std::vector<uint8_t> u(static_cast<size_t>(u_size));
    {
        MemorySource memory(origin, old.data(), old.size());
        std::vector<bundle::Extent> all;
        if (!old.empty()) all.push_back({origin, old.size()});
        apply_diff(diff, static_cast<size_t>(diff_length), memory, all, u.data(), u.size());
    }
    std::vector<uint8_t>().swap(old);

    std::string plan(static_cast<size_t>(plan_raw), '\0');
    if (plan_raw > 0 || plan_packed > 0) {
        const size_t n = ZSTD_decompress(plan.data(), plan.size(), plan_src, plan_packed);
        if (ZSTD_isError(n) || n != plan_raw) malformed("plan does not decode");
    }
    deflate::ByteReader p(reinterpret_cast<const uint8_t*>(plan.data()), plan.size(),
                          "deflate diff plan");
    deflate::BitWriter bits(out, out_size);
    const uint64_t segments = p.varint(format::kMaxDeflateSegments, "segment count");
    uint64_t at = 0; // next U byte
    bool open_stream = false;
    std::unique_ptr<ZstdFrameMaker> zstd_frames; // made at the first zstd segment
    for (uint64_t i = 0; i < segments; ++i) {
        if (open_stream) malformed("a segment follows an unfinished stream");
        const auto kind = static_cast<format::SegmentKind>(p.varint(2, "segment kind"));
        if (kind == format::SegmentKind::Raw) {
            const uint64_t n = p.varint(u_size - at, "raw segment length");
            bits.bytes(u.data() + at, static_cast<size_t>(n));
            at += n;
        } else if (kind == format::SegmentKind::ZstdFrame) {
            if (!zstd_frames) zstd_frames = std::make_unique<ZstdFrameMaker>();
            at += write_zstd_frame(p, u.data() + at, u_size - at, *zstd_frames, bits);
        } else {
            if (bits.position() % 8 != 0) malformed("a piece starts inside a byte");
            const deflate::PieceHeader h = deflate::read_piece_header(p, u_size - at);
            open_stream = !deflate::write_piece(h, p, u.data() + at, bits);
            at += h.lead_in + h.u_items;
        }
    }
    if (!p.at_end()) malformed("trailing bytes in the plan");
    if (at != u_size) malformed("the plan does not use all the decompressed bytes");
    const size_t written = open_stream ? bits.finish_whole_bytes() : bits.finish();
    if (written != out_size) malformed("the plan writes the wrong number of bytes");
}

} // namespace ota::delta
