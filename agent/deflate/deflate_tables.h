// The fixed tables of the deflate format (RFC 1951, 3.2.5 - 3.2.7).
#pragma once
#include <cstdint>

namespace ota::deflate {

inline constexpr unsigned kEndOfBlock = 256;
inline constexpr unsigned kMaxLitLenCodes = 286; // symbols 286, 287 never occur in valid data
inline constexpr unsigned kMaxDistCodes = 30;    // distance symbols 30, 31 never occur either
inline constexpr unsigned kWindowSize = 32768;

// Length symbols 257..285: base length and extra bits.
inline constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                             15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                             67, 83, 99, 115, 131, 163, 195, 227, 258};
inline constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                             2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
// Distance symbols 0..29.
inline constexpr uint16_t kDistBase[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
inline constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                           6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// The order in which a dynamic block lists the code lengths of the code-length alphabet.
inline constexpr uint8_t kCodeLengthOrder[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                 11, 4,  12, 3, 13, 2, 14, 1, 15};

// The length symbol (as index 0-28 of symbols 257-285) and distance symbol coding a value, by
// table lookup (distances above 256 share a symbol per 128).
struct SymbolTables {
    uint8_t length_index[259] = {};
    uint8_t distance_low[256] = {};  // by distance - 1, below 256
    uint8_t distance_high[256] = {}; // by (distance - 1) >> 7, from 256 on
    SymbolTables() {
        for (unsigned i = 0; i < 29; ++i)
            for (unsigned len = kLengthBase[i];
                 len < kLengthBase[i] + (1u << kLengthExtra[i]) && len <= 258; ++len)
                length_index[len] = static_cast<uint8_t>(i);
        for (unsigned s = 0; s < 30; ++s)
            for (unsigned d = kDistBase[s]; d < kDistBase[s] + (1u << kDistExtra[s]); ++d) {
                if (d - 1 < 256)
                    distance_low[d - 1] = static_cast<uint8_t>(s);
                else
                    distance_high[(d - 1) >> 7] = static_cast<uint8_t>(s);
            }
    }
};
inline const SymbolTables& symbol_tables() {
    static const SymbolTables tables;
    return tables;
}
inline unsigned length_symbol_index(unsigned length) {
    return symbol_tables().length_index[length];
}
inline unsigned distance_symbol(unsigned distance) {
    return distance - 1 < 256 ? symbol_tables().distance_low[distance - 1]
                              : symbol_tables().distance_high[(distance - 1) >> 7];
}

// Code lengths of the fixed Huffman codes (block type 1).
inline void fixed_litlen_lengths(uint8_t (&lengths)[288]) {
    for (unsigned s = 0; s < 288; ++s)
        lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
}
inline void fixed_dist_lengths(uint8_t (&lengths)[32]) {
    for (auto& l : lengths)
        l = 5;
}

} // namespace ota::deflate
