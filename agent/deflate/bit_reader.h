// Reads a deflate bit stream: bits are packed least significant first (RFC 1951, 3.1.1).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ota::deflate {

class BitReader {
public:
    // Reads data[0, size) starting at bit `bit_offset`.
    BitReader(const uint8_t* data, size_t size, uint64_t bit_offset = 0);

    // The next n (<= 32) bits as an integer, first bit in bit 0. Throws Error(Malformed) when the
    // data ends first.
    uint32_t bits(unsigned n) {
        uint32_t v = peek(n);
        consume(n);
        return v;
    }
    // The next n (<= 32) bits without consuming them; bits past the end read as zero (consume()
    // refuses them).
    uint32_t peek(unsigned n) {
        if (count_ < n) refill();
        return static_cast<uint32_t>(buf_ & ((uint64_t{1} << n) - 1));
    }
    void consume(unsigned n) {
        if (count_ < n) refill();
        if (n > real_) past_end();
        buf_ >>= n;
        count_ -= n;
        real_ -= n;
    }
    // Bits consumed since the start of data (not of bit_offset).
    uint64_t position() const { return uint64_t{next_} * 8 - real_; }
    uint64_t bits_left() const { return (size_ - next_) * 8 + real_; }
    // Bits up to the next byte boundary (0-7 of them).
    unsigned bits_to_byte_boundary() const {
        return static_cast<unsigned>((8 - position() % 8) % 8);
    }
    // Continues at data bit `bit_offset` (at most the end of the data).
    void seek(uint64_t bit_offset);

private:
    void refill();
    [[noreturn]] static void past_end();

    const uint8_t* data_;
    size_t size_;
    size_t next_ = 0;    // next byte to load into buf_
    uint64_t buf_ = 0;   // loaded bits, next one in bit 0
    unsigned count_ = 0; // bits in buf_, including zero padding past the end
    unsigned real_ = 0;  // of those, bits that come from data (the rest: zeros past the end)
};

} // namespace ota::deflate
