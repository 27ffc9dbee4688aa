#include "agent/deflate/bit_writer.h"

#include "agent/common/error.h"

#include <cstring>

namespace ota::deflate {

namespace {

[[noreturn]] void overflow() {
    throw Error(ErrorKind::Malformed, "deflate output is larger than declared");
}

} // namespace

BitWriter::BitWriter(uint8_t* out, size_t capacity) : out_(out), capacity_(capacity) {}

void BitWriter::put(uint8_t b) {
    if (pos_ >= capacity_) overflow();
    out_[pos_++] = b;
}

void BitWriter::flush32() {
    while (count_ >= 8) {
        put(static_cast<uint8_t>(buf_));
        buf_ >>= 8;
        count_ -= 8;
    }
}

void BitWriter::bytes(const uint8_t* src, size_t n) {
    flush32();
    if (count_ != 0) throw Error(ErrorKind::Malformed, "deflate: stored bytes not byte-aligned");
    if (n > capacity_ - pos_) overflow();
    std::memcpy(out_ + pos_, src, n);
    pos_ += n;
}

size_t BitWriter::finish() {
    flush32();
    if (count_ > 0) {
        put(static_cast<uint8_t>(buf_));
        buf_ = 0;
        count_ = 0;
    }
    return pos_;
}

size_t BitWriter::finish_whole_bytes() {
    flush32();
    buf_ = 0;
    count_ = 0;
    return pos_;
}

} // namespace ota::deflate
