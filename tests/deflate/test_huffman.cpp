// Canonical Huffman codes: construction from lengths, decoding and encoding the same bits.
#include "agent/common/error.h"
#include "agent/deflate/huffman.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace ota;
using namespace ota::deflate;

TEST_CASE("codes are the canonical ones of RFC 1951") {
    // RFC 1951 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give 010 011 100 101 110 00 1110 1111.
    const uint8_t lengths[8] = {3, 3, 3, 3, 3, 2, 4, 4};
    HuffmanCode code;
    REQUIRE(code.build(lengths, 8, true));
    const char* expected[8] = {"010", "011", "100", "101", "110", "00", "1110", "1111"};
    for (unsigned s = 0; s < 8; ++s) {
        std::vector<uint8_t> buf(4);
        BitWriter w(buf.data(), buf.size());
        code.encode(w, s);
        REQUIRE(w.position() == lengths[s]);
        w.finish();
        // Huffman codes are packed starting with their most significant bit.
        std::string bits;
        for (unsigned i = 0; i < lengths[s]; ++i)
            bits += (buf[0] >> i) & 1 ? '1' : '0';
        REQUIRE(bits == expected[s]);
        BitReader r(buf.data(), 1);
        REQUIRE(code.decode(r) == s);
        REQUIRE(r.position() == lengths[s]);
    }
}

TEST_CASE("random symbols round trip through a code") {
    uint8_t lengths[288]; // the fixed literal/length code: 7, 8 and 9 bits
    for (unsigned s = 0; s < 288; ++s)
        lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    HuffmanCode code;
    REQUIRE(code.build(lengths, 288, true));
    std::vector<unsigned> symbols;
    uint64_t x = 99;
    for (int i = 0; i < 4000; ++i) {
        x = x * 6364136223846793005ull + 1;
        symbols.push_back(static_cast<unsigned>((x >> 33) % 288));
    }
    std::vector<uint8_t> buf(4000 * 2);
    BitWriter w(buf.data(), buf.size());
    for (unsigned s : symbols)
        code.encode(w, s);
    const size_t n = w.finish();
    BitReader r(buf.data(), n);
    for (unsigned s : symbols)
        REQUIRE(code.decode(r) == s);
}

TEST_CASE("over-subscribed lengths are refused, incomplete ones decode what they code") {
    const uint8_t over[3] = {1, 1, 1};
    HuffmanCode code;
    REQUIRE_FALSE(code.build(over, 3, true));
    const uint8_t too_long[2] = {16, 1};
    REQUIRE_FALSE(code.build(too_long, 2, true));

    const uint8_t single[4] = {0, 1, 0, 0}; // one code: bit 0; bit 1 codes nothing
    REQUIRE(code.build(single, 4, true));
    const uint8_t zero[1] = {0x00}, one[1] = {0x01};
    BitReader r0(zero, 1), r1(one, 1);
    REQUIRE(code.decode(r0) == 1);
    REQUIRE_THROWS_AS(code.decode(r1), Error);
    std::vector<uint8_t> buf(1);
    BitWriter w(buf.data(), 1);
    REQUIRE_THROWS_AS(code.encode(w, 0), Error); // no code for symbol 0
    REQUIRE_THROWS_AS(code.encode(w, 7), Error); // outside the alphabet

    const uint8_t none[3] = {0, 0, 0};
    REQUIRE(code.build(none, 3, true));
    BitReader r2(zero, 1);
    REQUIRE_THROWS_AS(code.decode(r2), Error);
}
