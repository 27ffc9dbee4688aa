// Applier of Diff blobs (format in diff_format.h and docs/delta.md).
//
// Memory: besides the caller's output buffer and blob, we hold the decoded control stream and the
// smaller of the diff / extra streams. The larger one is decoded straight into the output buffer
// at the end where a single pass over the control entries can spread it into place without
// overwriting bytes it has not used yet (forward when extra sits at the tail, backward when diff
// sits at the head). A sparse-coded diff stream's coding (at most a quarter of the stream) is held
// while it expands. The old image is read through the device in small chunks.
#include "agent/common/error.h"
#include "agent/delta/allowed_ranges.h"
#include "agent/delta/deflate_diff.h"
#include "agent/delta/deflate_diff_format.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_format.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace ota::delta {

namespace {

[[noreturn]] void malformed(const std::string& what) {
    throw Error(ErrorKind::Malformed, "diff blob: " + what);
}

struct DctxDeleter {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Decodes one stream of exactly `raw` bytes into dst: a zstd frame, or in the flagged layout the
// bytes themselves when they are as many as the stream.
void decode_stream(ZSTD_DCtx* dctx, const uint8_t* src, uint64_t packed, uint8_t* dst, uint64_t raw,
                   const char* name, bool flagged) {
    if (packed == 0) {
        if (raw != 0) malformed(std::string(name) + " stream is missing");
        return;
    }
    if (flagged && packed == raw) {
        std::memcpy(dst, src, raw);
        return;
    }
    size_t n = ZSTD_decompressDCtx(dctx, dst, raw, src, packed);
    if (ZSTD_isError(n))
        malformed(std::string(name) + " stream does not decode: " + ZSTD_getErrorName(n));
    if (n != raw) malformed(std::string(name) + " stream has the wrong length");
}

struct Entry {
    int64_t seek;
    uint64_t diff_len;
    uint64_t extra_len;
};

// Reads a varint that ends just before `end` (used for the backward pass; the forward pass has
// already validated the stream, so this cannot run past `begin`).
uint64_t varint_before(const uint8_t*& end, const uint8_t* begin) {
    const uint8_t* start = end - 1;
    while (start > begin && (start[-1] & 0x80))
        --start;
    const uint8_t* p = start;
    uint64_t v = 0;
    if (!format::get_varint(p, end, v) || p != end) malformed("control stream is inconsistent");
    end = start;
    return v;
}

// Adds old[pos, pos+len) to dst[0, len), reading the device in bounded chunks.
void add_old(hal::BlockDevice& source, uint64_t pos, uint8_t* dst, uint64_t len,
             std::vector<uint8_t>& buf) {
    while (len > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, buf.size()));
        source.read(pos, buf.data(), n);
        const uint8_t* o = buf.data();
        for (size_t i = 0; i < n; ++i)
            dst[i] = static_cast<uint8_t>(dst[i] + o[i]);
        dst += n;
        pos += n;
        len -= n;
    }
}

// The same over the ARM64-filtered source: reads whole aligned words around [pos, pos+len) (the
// encoder listed them in the op's extents) and filters them at their source offsets first.
void add_old_filtered(hal::BlockDevice& source, uint64_t pos, uint8_t* dst, uint64_t len,
                      std::vector<uint8_t>& buf) {
    const uint64_t old_size = source.size();
    while (len > 0) {
        uint64_t n = std::min<uint64_t>(len, buf.size() - 8);
        uint64_t start = pos & ~uint64_t{3};
        uint64_t end = std::min<uint64_t>((pos + n + 3) & ~uint64_t{3}, old_size);
        source.read(start, buf.data(), static_cast<size_t>(end - start));
        format::arm64_filter(buf.data(), static_cast<size_t>(end - start), start, true);
        const uint8_t* o = buf.data() + (pos - start);
        for (size_t i = 0; i < n; ++i)
            dst[i] = static_cast<uint8_t>(dst[i] + o[i]);
        dst += n;
        pos += n;
        len -= n;
    }
}

// The source range a diff segment reads: whole words when the blob is filtered.
bundle::Extent segment_reads(uint64_t pos, uint64_t len, uint64_t old_size, bool filtered) {
    if (!filtered) return {pos, len};
    uint64_t start = pos & ~uint64_t{3};
    uint64_t end = std::min<uint64_t>((pos + len + 3) & ~uint64_t{3}, old_size);
    return {start, end - start};
}

constexpr size_t kReadChunk = 64 * 1024;

} // namespace

void apply_diff(const uint8_t* blob, size_t blob_size, hal::BlockDevice& source,
                const std::vector<bundle::Extent>& allowed, uint8_t* out, size_t out_size) {
    const uint8_t* p = blob;
    const uint8_t* end = blob + blob_size;
    if (blob_size < sizeof(format::kMagic)) malformed("bad magic");
    for (const auto& e : allowed)
        if (e.offset + e.length < e.offset) malformed("source extent overflows");
    if (std::memcmp(blob, format::kMagicDeflate, sizeof(format::kMagic)) == 0)
        return apply_deflate_diff(blob, blob_size, source, allowed, out, out_size);
    const bool flagged = std::memcmp(blob, format::kMagicFlags, sizeof(format::kMagic)) == 0;
    bool filtered = std::memcmp(blob, format::kMagicArm64, sizeof(format::kMagic)) == 0;
    if (!flagged && !filtered && std::memcmp(blob, format::kMagic, sizeof(format::kMagic)) != 0)
        malformed("bad magic");
    p += sizeof(format::kMagic);
    uint64_t flags = 0;
    if (flagged) {
        if (!format::get_varint(p, end, flags)) malformed("truncated header");
        if (flags & ~format::kKnownFlags) malformed("unknown flags (made by a newer publisher?)");
        filtered = flags & format::kFlagArm64;
    }
    const bool sparse = flags & format::kFlagSparseDiff;
    uint64_t filter_base = 0;
    if (filtered && !format::get_varint(p, end, filter_base)) malformed("truncated header");
    uint64_t f[8];
    for (auto& v : f)
        if (!format::get_varint(p, end, v)) malformed("truncated header");
    const uint64_t blob_out = f[0], ctrl_count = f[1], ctrl_raw = f[2], ctrl_packed = f[3],
                   diff_raw = f[4], diff_packed = f[5], extra_raw = f[6], extra_packed = f[7];
    uint64_t diff_coded = 0;
    if (sparse && !format::get_varint(p, end, diff_coded)) malformed("truncated header");
    if (blob_out != out_size) malformed("output size does not match the operation");
    if (diff_raw > out_size || extra_raw != out_size - diff_raw)
        malformed("stream sizes do not add up to the output size");
    if (ctrl_raw > out_size / format::kMaxCtrlDivisor + format::kCtrlSlack)
        malformed("control stream too large");
    if (ctrl_count > ctrl_raw / 3) malformed("too many control entries");
    if (diff_coded > diff_raw / format::kSparseDivisor + format::kSparseSlack)
        malformed("sparse diff stream too large");
    const uint64_t avail = static_cast<uint64_t>(end - p);
    if (ctrl_packed > avail || diff_packed > avail - ctrl_packed ||
        extra_packed != avail - ctrl_packed - diff_packed)
        malformed("stream lengths do not match the blob size");
    const uint8_t* ctrl_src = p;
    const uint8_t* diff_src = ctrl_src + ctrl_packed;
    const uint8_t* extra_src = diff_src + diff_packed;

    std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
    if (!dctx) throw Error(ErrorKind::Io, "out of memory for a zstd context");

    std::vector<uint8_t> ctrl(static_cast<size_t>(ctrl_raw));
    decode_stream(dctx.get(), ctrl_src, ctrl_packed, ctrl.data(), ctrl_raw, "control", flagged);

    // Pass 1: validate every entry and every source read before touching the output.
    AllowedRanges ranges(allowed);
    const uint64_t old_size = source.size();
    const uint8_t* c = ctrl.data();
    const uint8_t* cend = c + ctrl.size();
    uint64_t old_pos = 0, diff_sum = 0, extra_sum = 0;
    for (uint64_t i = 0; i < ctrl_count; ++i) {
        uint64_t zs, dl, el;
        if (!format::get_varint(c, cend, zs) || !format::get_varint(c, cend, dl) ||
            !format::get_varint(c, cend, el))
            malformed("control stream truncated");
        int64_t seek = format::zigzag_decode(zs);
        if (dl == 0 && el == 0) malformed("empty control entry");
        if (dl > diff_raw - diff_sum || el > extra_raw - extra_sum)
            malformed("control entries exceed the streams");
        diff_sum += dl;
        extra_sum += el;
        int64_t pos = 0;
        if (__builtin_add_overflow(static_cast<int64_t>(old_pos), seek, &pos) || pos < 0 ||
            static_cast<uint64_t>(pos) > old_size)
            malformed("seek outside the source image");
        if (dl > old_size - static_cast<uint64_t>(pos))
            malformed("diff segment beyond the end of the source image");
        const bundle::Extent reads =
            segment_reads(static_cast<uint64_t>(pos), dl, old_size, filtered);
        if (dl > 0 && !ranges.contains(reads.offset, reads.length))
            malformed("diff segment reads the source outside the operation's source extents");
        old_pos = static_cast<uint64_t>(pos) + dl;
    }
    if (c != cend) malformed("trailing bytes in the control stream");
    if (diff_sum != diff_raw || extra_sum != extra_raw)
        malformed("control entries do not cover the streams");

    // The diff stream into dst (diff_raw bytes), through its sparse coding when it has one.
    auto decode_diff = [&](uint8_t* dst) {
        if (!sparse)
            return decode_stream(dctx.get(), diff_src, diff_packed, dst, diff_raw, "diff", flagged);
        std::vector<uint8_t> coded(static_cast<size_t>(diff_coded));
        decode_stream(dctx.get(), diff_src, diff_packed, coded.data(), diff_coded, "diff", flagged);
        if (!format::sparse_expand(coded.data(), coded.data() + coded.size(), dst, diff_raw))
            malformed("sparse diff stream does not expand to its size");
    };

    std::vector<uint8_t> buf(kReadChunk);
    auto add_source = filtered ? add_old_filtered : add_old;
    if (diff_raw <= extra_raw) {
        // Extra decoded at the tail of out, diff held aside; spread forward.
        std::vector<uint8_t> diff(static_cast<size_t>(diff_raw));
        decode_diff(diff.data());
        uint8_t* extra_at = out + diff_raw;
        decode_stream(dctx.get(), extra_src, extra_packed, extra_at, extra_raw, "extra", flagged);
        dctx.reset();
        c = ctrl.data();
        uint64_t w = 0, d = 0, pos = 0;
        const uint8_t* e = extra_at;
        for (uint64_t i = 0; i < ctrl_count; ++i) {
            uint64_t zs, dl, el;
            format::get_varint(c, cend, zs);
            format::get_varint(c, cend, dl);
            format::get_varint(c, cend, el);
            pos = static_cast<uint64_t>(static_cast<int64_t>(pos) + format::zigzag_decode(zs));
            if (dl > 0) // (an empty stream has no buffer: memcpy needs a valid pointer)
                std::memcpy(out + w, diff.data() + d, dl); // ends at or before e: no overlap
            add_source(source, pos, out + w, dl, buf);
            w += dl;
            d += dl;
            pos += dl;
            std::memmove(out + w, e, el);
            w += el;
            e += el;
        }
    } else {
        // Diff decoded at the head of out, extra held aside; spread backward.
        std::vector<uint8_t> extra(static_cast<size_t>(extra_raw));
        decode_stream(dctx.get(), extra_src, extra_packed, extra.data(), extra_raw, "extra",
                      flagged);
        decode_diff(out);
        dctx.reset();
        const uint8_t* cb = ctrl.data();
        const uint8_t* ce = ctrl.data() + ctrl.size();
        uint64_t w = out_size, d = diff_raw, e = extra_raw, pos = old_pos;
        for (uint64_t i = 0; i < ctrl_count; ++i) {
            uint64_t el = varint_before(ce, cb);
            uint64_t dl = varint_before(ce, cb);
            int64_t seek = format::zigzag_decode(varint_before(ce, cb));
            w -= el;
            e -= el;
            if (el > 0) std::memcpy(out + w, extra.data() + e, el);
            w -= dl;
            d -= dl;
            pos -= dl;
            std::memmove(out + w, out + d, dl); // w >= d: unread diff bytes stay intact
            add_source(source, pos, out + w, dl, buf);
            pos = static_cast<uint64_t>(static_cast<int64_t>(pos) - seek);
        }
    }
    if (filtered) format::arm64_filter(out, out_size, filter_base, false);
}

} // namespace ota::delta
