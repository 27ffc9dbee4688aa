// The layout of a Diff blob (docs/delta.md), shared by the applier and the encoder.
//
//   magic "OTADIFF1"
//   varint out_size, ctrl_count,
//          ctrl_raw, ctrl_packed, diff_raw, diff_packed, extra_raw, extra_packed
//   ctrl_packed bytes   zstd frame: ctrl_count entries of (zigzag varint seek, varint diff_len,
//                       varint extra_len)
//   diff_packed bytes   zstd frame: diff_raw bytes, new - old byte by byte over every diff segment
//   extra_packed bytes  zstd frame: extra_raw bytes copied verbatim
//
// An entry moves the old position by `seek`, then writes diff_len bytes of old + diff, then
// extra_len bytes of extra. diff_raw + extra_raw == out_size. A packed size of 0 means the stream
// is empty (its raw size must be 0 too).
//
// Magic "OTADIFF2" is the same layout with one more varint, filter_base, right after the magic:
// the diff was computed between the ARM64-filtered old image and the filtered op output (see
// arm64_filter below and docs/delta.md); filter_base is the op's offset in the new image.
//
// Magic "OTADIFF4" is followed by a varint of flags: kFlagArm64 (then filter_base, as for
// OTADIFF2) and kFlagSparseDiff (then, after the eight sizes, varint diff_coded: the diff stream's
// zstd frame holds diff_coded bytes of the sparse coding below, which expand to diff_raw bytes).
// In this layout a stream whose packed size equals its decoded size is those bytes as they are,
// not a zstd frame (the encoder keeps a frame only when it is smaller).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ota::delta::format {

inline constexpr char kMagic[8] = {'O', 'T', 'A', 'D', 'I', 'F', 'F', '1'};
inline constexpr char kMagicArm64[8] = {'O', 'T', 'A', 'D', 'I', 'F', 'F', '2'};
inline constexpr char kMagicFlags[8] = {'O', 'T', 'A', 'D', 'I', 'F', 'F', '4'};
inline constexpr uint64_t kFlagArm64 = 1;
inline constexpr uint64_t kFlagSparseDiff = 2;
inline constexpr uint64_t kKnownFlags = kFlagArm64 | kFlagSparseDiff;
// The sparse coding may hold at most diff_raw / kSparseDivisor + kSparseSlack bytes: the applier
// holds it beside its other buffers.
inline constexpr uint64_t kSparseDivisor = 4;
inline constexpr uint64_t kSparseSlack = 64;
// Bytes the applier needs besides its output buffer: the control stream is held decoded (bounded
// by kMaxCtrlPerOutput per output byte, plus a constant), and the smaller of the diff and extra
// streams (the other one is decoded straight into the output buffer).
inline constexpr uint64_t kCtrlSlack = 4096;
inline constexpr uint64_t kMaxCtrlDivisor = 2; // ctrl_raw <= out_size / 2 + kCtrlSlack
inline constexpr size_t kMaxVarintBytes = 10;

inline void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

inline uint64_t zigzag_encode(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

inline int64_t zigzag_decode(uint64_t v) {
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Reads a varint from [*p, end); returns false on truncation or more than 64 bits.
inline bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end) return false;
        uint8_t b = *p++;
        if (shift == 63 && (b & 0x7e)) return false;
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

// The sparse coding of a diff stream, which is mostly zeros where old and new agree: runs of
// (varint zeros, varint literal_len, literal_len bytes). zstd spends a few bytes on every 128 KiB
// block even when it is all zeros; a run here costs one varint however long it is.
inline std::string sparse_encode(const uint8_t* dense, size_t size) {
    constexpr size_t kMinZeroRun = 8; // shorter runs of zeros stay inside the literal
    std::string out;
    size_t i = 0;
    while (i < size) {
        size_t zeros = 0;
        while (i + zeros < size && dense[i + zeros] == 0)
            ++zeros;
        size_t lit = i + zeros, lit_end = lit;
        while (lit_end < size) {
            if (dense[lit_end] != 0) {
                ++lit_end;
                continue;
            }
            size_t run = 0;
            while (lit_end + run < size && dense[lit_end + run] == 0 && run < kMinZeroRun)
                ++run;
            if (run >= kMinZeroRun || lit_end + run == size) break;
            lit_end += run;
        }
        put_varint(out, zeros);
        put_varint(out, lit_end - lit);
        out.append(reinterpret_cast<const char*>(dense + lit), lit_end - lit);
        i = lit_end;
    }
    return out;
}

// Expands a sparse coding into exactly dense_size bytes at dst; false if it does not.
inline bool sparse_expand(const uint8_t* p, const uint8_t* end, uint8_t* dst, uint64_t dense_size) {
    uint64_t w = 0;
    while (p != end) {
        uint64_t zeros = 0, lit = 0;
        if (!get_varint(p, end, zeros) || !get_varint(p, end, lit)) return false;
        if (zeros + lit == 0 || zeros > dense_size - w || lit > dense_size - w - zeros ||
            lit > static_cast<uint64_t>(end - p))
            return false;
        if (zeros > 0) std::memset(dst + w, 0, zeros);
        w += zeros;
        if (lit > 0) std::memcpy(dst + w, p, lit);
        w += lit;
        p += lit;
    }
    return w == dense_size;
}

// The ARM64 branch filter (like xz's BCJ filters): the PC-relative immediates of BL (imm26, in
// words) and ADRP (imm21, in 4 KiB pages) become absolute targets, so a call or page reference
// whose target did not move reads the same in old and new even when the instruction moved. `data`
// holds bytes at image offset `base`; only whole 4-byte words at 4-aligned image offsets are
// touched. The map is a bijection on each word (opcode bits are kept), so unfilter undoes it.
inline uint32_t arm64_filter_word(uint32_t w, uint64_t at, bool forward) {
    if ((w & 0xFC000000u) == 0x94000000u) { // BL
        uint32_t d = static_cast<uint32_t>(at >> 2);
        uint32_t imm = forward ? w + d : w - d;
        return (w & 0xFC000000u) | (imm & 0x03FFFFFFu);
    }
    if ((w & 0x9F000000u) == 0x90000000u) { // ADRP
        uint32_t imm = ((w >> 29) & 3u) | (((w >> 5) & 0x7FFFFu) << 2);
        uint32_t d = static_cast<uint32_t>(at >> 12);
        imm = (forward ? imm + d : imm - d) & 0x1FFFFFu;
        return (w & 0x9F00001Fu) | ((imm & 3u) << 29) | ((imm >> 2) << 5);
    }
    return w;
}

inline void arm64_filter(uint8_t* data, size_t size, uint64_t base, bool forward) {
    size_t i = static_cast<size_t>((4 - (base & 3)) & 3);
    for (; i + 4 <= size; i += 4) {
        uint32_t w = static_cast<uint32_t>(data[i]) | static_cast<uint32_t>(data[i + 1]) << 8 |
                     static_cast<uint32_t>(data[i + 2]) << 16 |
                     static_cast<uint32_t>(data[i + 3]) << 24;
        w = arm64_filter_word(w, base + i, forward);
        data[i] = static_cast<uint8_t>(w);
        data[i + 1] = static_cast<uint8_t>(w >> 8);
        data[i + 2] = static_cast<uint8_t>(w >> 16);
        data[i + 3] = static_cast<uint8_t>(w >> 24);
    }
}

} // namespace ota::delta::format
