#include "agent/deflate/bit_reader.h"

#include "agent/common/error.h"

namespace ota::deflate {

BitReader::BitReader(const uint8_t* data, size_t size, uint64_t bit_offset)
    : data_(data), size_(size) {
    seek(bit_offset);
}

void BitReader::seek(uint64_t bit_offset) {
    if (bit_offset > uint64_t{size_} * 8) past_end();
    next_ = static_cast<size_t>(bit_offset / 8);
    buf_ = 0;
    count_ = 0;
    real_ = 0;
    const unsigned skip = static_cast<unsigned>(bit_offset % 8);
    if (skip) consume(skip);
}

void BitReader::refill() {
    while (count_ <= 56) {
        if (next_ < size_) {
            buf_ |= static_cast<uint64_t>(data_[next_++]) << count_;
            real_ += 8;
        }
        count_ += 8;
    }
}

void BitReader::past_end() {
    throw Error(ErrorKind::Malformed, "deflate stream ends early");
}

} // namespace ota::deflate
