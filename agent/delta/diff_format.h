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
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ota::delta::format {

inline constexpr char kMagic[8] = {'O', 'T', 'A', 'D', 'I', 'F', 'F', '1'};
// Bytes the applier needs besides its output buffer: the control stream is held decoded (bounded
// by kMaxCtrlPerOutput per output byte, plus a constant), and the smaller of the diff and extra
// streams (the other one is decoded straight into the output buffer).
inline constexpr uint64_t kCtrlSlack = 4096;
inline constexpr uint64_t kMaxCtrlDivisor = 2; // ctrl_raw <= out_size / 2 + kCtrlSlack
inline constexpr size_t kMaxVarintBytes = 10;

inline void put_varint(std::string &out, uint64_t v) {
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
inline bool get_varint(const uint8_t *&p, const uint8_t *end, uint64_t &v) {
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

} // namespace ota::delta::format
