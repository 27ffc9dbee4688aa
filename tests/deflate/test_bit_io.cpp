// The bit reader and writer: least-significant-bit-first packing, bounds, seeking.
#include "agent/common/error.h"
#include "agent/deflate/bit_reader.h"
#include "agent/deflate/bit_writer.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace ota;
using namespace ota::deflate;

TEST_CASE("bit fields written are read back in order") {
    std::vector<std::pair<uint32_t, unsigned>> fields;
    uint64_t x = 12345;
    for (int i = 0; i < 5000; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const unsigned n = static_cast<unsigned>(x >> 59); // 0-31
        const uint32_t v = static_cast<uint32_t>(x >> 7) & ((uint64_t{1} << n) - 1);
        fields.push_back({v, n});
    }
    fields.push_back({0xffffffffu, 32});
    std::vector<uint8_t> buf(30000);
    BitWriter w(buf.data(), buf.size());
    uint64_t total = 0;
    for (const auto& [v, n] : fields) {
        w.bits(v, n);
        total += n;
        REQUIRE(w.position() == total);
    }
    const size_t bytes = w.finish();
    REQUIRE(bytes == (total + 7) / 8);

    BitReader r(buf.data(), bytes);
    for (const auto& [v, n] : fields)
        REQUIRE(r.bits(n) == v);
    REQUIRE(r.position() == total);
    REQUIRE(r.bits_left() == bytes * 8 - total);
}

TEST_CASE("the first bit of a byte is its least significant one") {
    const uint8_t data[2] = {0xb4, 0x01}; // 1011 0100, 0000 0001
    BitReader r(data, 2);
    REQUIRE(r.bits(1) == 0);
    REQUIRE(r.bits(2) == 2);
    REQUIRE(r.bits(5) == 0x16);
    REQUIRE(r.bits_to_byte_boundary() == 0);
    REQUIRE(r.bits(1) == 1);
    REQUIRE(r.bits_to_byte_boundary() == 7);
    BitReader at(data, 2, 2);
    REQUIRE(at.position() == 2);
    REQUIRE(at.bits(6) == 0x2d);
    at.seek(9);
    REQUIRE(at.bits(7) == 0);
}

TEST_CASE("reading past the end is refused, peeking is not") {
    const uint8_t data[2] = {0xff, 0xff};
    BitReader r(data, 2);
    REQUIRE(r.peek(32) == 0xffff); // zeros past the end
    REQUIRE(r.bits(12) == 0xfff);
    REQUIRE_THROWS_AS(r.bits(5), Error);
    BitReader r2(data, 2);
    REQUIRE(r2.bits(16) == 0xffff);
    REQUIRE_THROWS_AS(r2.consume(1), Error);
    REQUIRE_THROWS_AS(BitReader(data, 2, 17), Error);
}

TEST_CASE("the writer stays inside its buffer and aligned for bytes") {
    std::vector<uint8_t> buf(2);
    BitWriter w(buf.data(), buf.size());
    w.bits(0x3, 2);
    const uint8_t raw[1] = {0};
    REQUIRE_THROWS_AS(w.bytes(raw, 1), Error); // not at a byte boundary
    w.bits(0, 6);
    w.bytes(raw, 1);
    w.bits(0x1ff, 9);
    REQUIRE_THROWS_AS(w.finish(), Error); // a third byte does not fit

    std::vector<uint8_t> buf2(2, 0xee);
    BitWriter w2(buf2.data(), buf2.size());
    w2.bits(0x1abc, 13);
    REQUIRE(w2.finish_whole_bytes() == 1); // the partial second byte is dropped
    REQUIRE(buf2[0] == 0xbc);
    REQUIRE(buf2[1] == 0xee);
}
