// Writes a deflate bit stream (least significant bit first) into a caller's byte buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ota::deflate {

class BitWriter {
public:
    // Bytes go to out[0, capacity); writing more throws Error(Malformed).
    BitWriter(uint8_t* out, size_t capacity);

    // Appends the low n (<= 32) bits of v.
    void bits(uint32_t v, unsigned n) {
        buf_ |= static_cast<uint64_t>(v & ((uint64_t{1} << n) - 1)) << count_;
        count_ += n;
        if (count_ >= 32) flush32();
    }
    // Appends whole bytes; the stream must be at a byte boundary.
    void bytes(const uint8_t* src, size_t n);
    // Bits written so far.
    uint64_t position() const { return uint64_t{pos_} * 8 + count_; }
    // Writes out the last partial byte (its missing high bits as zero); returns the bytes written.
    size_t finish();
    // Drops the bits of a last partial byte (the next piece of the stream writes that byte);
    // returns the bytes written.
    size_t finish_whole_bytes();

private:
    void flush32();
    void put(uint8_t b);

    uint8_t* out_;
    size_t capacity_;
    size_t pos_ = 0;
    uint64_t buf_ = 0;
    unsigned count_ = 0;
};

} // namespace ota::deflate
