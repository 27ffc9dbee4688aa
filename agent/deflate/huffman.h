// Canonical Huffman codes of deflate (RFC 1951, 3.2.2): built from code lengths, used to decode
// symbols from a BitReader and to encode them back to exactly the same bits.
#pragma once
#include "agent/deflate/bit_reader.h"
#include "agent/deflate/bit_writer.h"

#include <cstdint>
#include <vector>

namespace ota::deflate {

inline constexpr unsigned kMaxCodeBits = 15;
inline constexpr unsigned kMaxSymbols = 288; // literal/length alphabet, the largest

class HuffmanCode {
public:
    // Builds the code for symbols [0, count) with the given bit lengths (0 = unused). Returns
    // false if the lengths are over-subscribed (no prefix code has them). An incomplete code is
    // accepted: bit patterns it leaves unused fail to decode. `decoding` builds the lookup table.
    bool build(const uint8_t* lengths, unsigned count, bool decoding);

    // The next symbol; throws Error(Malformed) on a bit pattern that is no code.
    unsigned decode(BitReader& in) const {
        uint16_t e = table_[in.peek(max_bits_)];
        if ((e & 15) == 0) invalid_code();
        in.consume(e & 15);
        return e >> 4;
    }
    // Writes the code of `symbol`; throws Error(Malformed) when the symbol has no code.
    void encode(BitWriter& out, unsigned symbol) const {
        if (symbol >= count_ || lengths_[symbol] == 0) invalid_symbol();
        out.bits(codes_[symbol], lengths_[symbol]);
    }
    unsigned length(unsigned symbol) const { return symbol < count_ ? lengths_[symbol] : 0; }

private:
    [[noreturn]] static void invalid_code();
    [[noreturn]] static void invalid_symbol();

    unsigned count_ = 0;
    unsigned max_bits_ = 0;
    uint8_t lengths_[kMaxSymbols] = {};
    uint16_t codes_[kMaxSymbols] = {}; // bit-reversed, ready to write least significant bit first
    // Indexed by the next max_bits_ input bits: symbol << 4 | code length (0: no such code).
    std::vector<uint16_t> table_ = std::vector<uint16_t>(1, 0);
};

} // namespace ota::deflate
