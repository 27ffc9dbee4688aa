#include "agent/deflate/huffman.h"

#include "agent/common/error.h"

#include <algorithm>

namespace ota::deflate {

namespace {

uint16_t reverse_bits(uint16_t code, unsigned length) {
    uint16_t r = 0;
    for (unsigned i = 0; i < length; ++i) {
        r = static_cast<uint16_t>((r << 1) | (code & 1));
        code >>= 1;
    }
    return r;
}

} // namespace

bool HuffmanCode::build(const uint8_t* lengths, unsigned count, bool decoding) {
    if (count > kMaxSymbols) return false;
    unsigned bl_count[kMaxCodeBits + 1] = {};
    max_bits_ = 0;
    for (unsigned s = 0; s < count; ++s) {
        if (lengths[s] > kMaxCodeBits) return false;
        bl_count[lengths[s]]++;
        max_bits_ = std::max<unsigned>(max_bits_, lengths[s]);
    }
    bl_count[0] = 0;
    // A prefix code exists only if no length is over-subscribed.
    int left = 1;
    for (unsigned len = 1; len <= kMaxCodeBits; ++len) {
        left = left * 2 - static_cast<int>(bl_count[len]);
        if (left < 0) return false;
    }
    uint16_t next_code[kMaxCodeBits + 1] = {};
    uint16_t code = 0;
    for (unsigned len = 1; len <= kMaxCodeBits; ++len) {
        code = static_cast<uint16_t>((code + bl_count[len - 1]) << 1);
        next_code[len] = code;
    }
    count_ = count;
    std::fill(lengths_, lengths_ + kMaxSymbols, 0);
    std::copy(lengths, lengths + count, lengths_);
    for (unsigned s = 0; s < count; ++s) {
        const unsigned len = lengths[s];
        codes_[s] = len ? reverse_bits(next_code[len]++, len) : 0;
    }
    if (!decoding) return true;
    table_.assign(size_t{1} << max_bits_, 0);
    for (unsigned s = 0; s < count; ++s) {
        const unsigned len = lengths[s];
        if (len == 0) continue;
        const uint16_t entry = static_cast<uint16_t>(s << 4 | len);
        for (size_t i = codes_[s]; i < table_.size(); i += size_t{1} << len)
            table_[i] = entry;
    }
    return true;
}

void HuffmanCode::invalid_code() {
    throw Error(ErrorKind::Malformed, "deflate stream has an invalid Huffman code");
}

void HuffmanCode::invalid_symbol() {
    throw Error(ErrorKind::Malformed, "deflate description uses a symbol without a code");
}

} // namespace ota::deflate
