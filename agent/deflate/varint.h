// LEB128 varints for descriptions: written to a string, read back with bounds checks.
#pragma once
#include "agent/common/error.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ota::deflate {

inline void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

// Reads from [p, end); every read past the end or out of its range throws Error(Malformed) with
// `what` naming the data being read.
class ByteReader {
public:
    ByteReader(const uint8_t* p, size_t size, const char* what)
        : p_(p), end_(p + size), what_(what) {}

    uint64_t varint() {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) fail("ends early");
            const uint8_t b = *p_++;
            if (shift == 63 && (b & 0x7e)) fail("has an oversized number");
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("has an oversized number");
    }
    // A varint that must be at most max.
    uint64_t varint(uint64_t max, const char* field) {
        const uint64_t v = varint();
        if (v > max) fail(std::string(field) + " out of range");
        return v;
    }
    const uint8_t* bytes(size_t n) {
        if (n > static_cast<size_t>(end_ - p_)) fail("ends early");
        const uint8_t* r = p_;
        p_ += n;
        return r;
    }
    bool at_end() const { return p_ == end_; }
    size_t left() const { return static_cast<size_t>(end_ - p_); }
    [[noreturn]] void fail(const std::string& why) const {
        throw Error(ErrorKind::Malformed, std::string(what_) + " " + why);
    }

private:
    const uint8_t* p_;
    const uint8_t* end_;
    const char* what_;
};

} // namespace ota::deflate
