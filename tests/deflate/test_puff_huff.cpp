// puff (deflate -> events) and huff (events -> deflate): every stream, whatever made it, comes
// back bit for bit; what is not deflate is refused.
#include "agent/common/error.h"
#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/huff.h"
#include "agent/deflate/puff.h"
#include "deflate_test_util.h"

#include <catch2/catch.hpp>

#include <cstring>

using namespace ota;
using namespace ota::deflate;
using namespace ota::test;

namespace {

// Parses `stream` and writes its events back; returns the bytes written and sets *u to the
// decompressed bytes (checked against zlib by the callers).
std::string rewrite(const std::string& stream, std::string* u = nullptr, size_t* used = nullptr) {
    std::string out(stream.size() + 16, '\0');
    BitWriter bits(reinterpret_cast<uint8_t*>(out.data()), out.size());
    struct Visitor : DeflateVisitor {
        DeflateWriter w;
        std::string u;
        explicit Visitor(BitWriter& b) : w(b) {}
        void block(const BlockHeader& h, uint64_t) override {
            BlockHeader copy = h; // the lengths are derived again from the coded header
            if (h.type == BlockType::Dynamic) {
                derive_code_lengths(copy);
                REQUIRE(std::memcmp(copy.lengths, h.lengths, sizeof(h.lengths)) == 0);
            }
            w.block(copy);
        }
        void literal(uint8_t b, uint64_t) override {
            u.push_back(static_cast<char>(b));
            w.literal(b);
        }
        void match(const Match& m, uint64_t) override {
            // puff does not check distances against the output (it keeps none): its users do.
            if (m.distance > u.size()) throw Error(ErrorKind::Malformed, "distance too far back");
            const size_t from = u.size() - m.distance;
            for (unsigned i = 0; i < m.length; ++i)
                u.push_back(u[from + i]);
            w.match(m);
        }
        void stored(const uint8_t* d, size_t n, uint64_t) override {
            u.append(reinterpret_cast<const char*>(d), n);
            w.stored(d, n);
        }
        void end_of_block(uint64_t) override { w.end_of_block(); }
        void end_of_stream(unsigned, unsigned value, uint64_t) override { w.end_of_stream(value); }
    } v(bits);
    const uint64_t end = parse_deflate(bytes_of(stream), stream.size(), 0, v);
    if (used) *used = static_cast<size_t>(end);
    out.resize(bits.finish());
    if (u) *u = v.u;
    return out;
}

void require_round_trip(const std::string& stream, const std::string& data) {
    std::string u;
    size_t used = 0;
    REQUIRE(rewrite(stream, &u, &used) == stream);
    REQUIRE(used == stream.size());
    REQUIRE(u == data);
}

} // namespace

TEST_CASE("zlib streams of every level, window and memory size round trip exactly") {
    const std::string data = sample_data(80000);
    for (int level = 0; level <= 9; ++level)
        for (int window : {9, 12, 15})
            for (int mem : {1, 8, 9}) {
                INFO("level " << level << " window " << window << " memLevel " << mem);
                require_round_trip(zlib_deflate(data, level, -window, mem), data);
            }
}

TEST_CASE("stored, fixed-Huffman, run-length and Huffman-only streams round trip") {
    const std::string data = sample_data(100000, 7);
    for (int strategy : {Z_FIXED, Z_RLE, Z_HUFFMAN_ONLY, Z_FILTERED}) {
        INFO("strategy " << strategy);
        const std::string s = zlib_deflate(data, 6, -15, 8, strategy);
        require_round_trip(s, data);
        if (strategy == Z_FIXED) {
            REQUIRE((s[0] & 6) == 2); // first block: fixed codes
        }
    }
    const std::string stored = zlib_deflate(data, 0);
    REQUIRE((stored[0] & 6) == 0);
    REQUIRE(parse_tokens(stored).blocks >= 2); // stored blocks hold at most 64 KiB
    require_round_trip(stored, data);
}

TEST_CASE("empty and tiny inputs round trip") {
    for (int level = 0; level <= 9; ++level) {
        INFO("level " << level);
        require_round_trip(zlib_deflate("", level), "");
        require_round_trip(zlib_deflate("a", level), "a");
        require_round_trip(zlib_deflate(std::string(70000, 'x'), level), std::string(70000, 'x'));
    }
}

TEST_CASE("GNU gzip -1, -6 and -9 and concatenated members round trip") {
    const std::string data = sample_data(200000, 3);
    std::string both;
    for (int level : {1, 6, 9}) {
        INFO("gzip -" << level);
        const std::string member = gnu_gzip(data, level);
        require_round_trip(gzip_body(member), data);
        both += member;
    }
    // Three members one after the other: each is its own stream, found where the previous ends.
    size_t at = 0;
    for (int i = 0; i < 3; ++i) {
        const std::string rest = both.substr(at + 10);
        size_t used = 0;
        std::string u;
        const std::string again = rewrite(rest, &u, &used);
        REQUIRE(again == rest.substr(0, used));
        REQUIRE(u == data);
        at += 10 + used + 8;
    }
    REQUIRE(at == both.size());
}

TEST_CASE("7-Zip's deflate streams round trip") {
    TempDir dir;
    const std::string data = sample_data(200000, 5);
    write_all_file(dir.file("data"), data);
    REQUIRE(run_command("cd " + dir.path() + " && 7z a -tgzip -mx=9 data.gz data >/dev/null") == 0);
    const std::string member = read_all(dir.file("data.gz"));
    // 7-Zip stores the file name: skip the header up to the end of FNAME.
    REQUIRE((member[3] & 8) != 0);
    const size_t body = member.find('\0', 10) + 1;
    require_round_trip(member.substr(body, member.size() - body - 8), data);
}

TEST_CASE("unusual but valid codings come back exactly") {
    // Written with the writer itself: padding bits that are not zero before a stored block and
    // after the final block, the length 258 coded as symbol 284 + 31, and a dynamic header whose
    // zero run crosses from the literal/length lengths into the distance lengths.
    std::string out(256, '\0');
    BitWriter bits(reinterpret_cast<uint8_t*>(out.data()), out.size());
    DeflateWriter w(bits);
    BlockHeader fixed;
    fixed.type = BlockType::Fixed;
    w.block(fixed);
    w.literal('a');
    w.match(Match{258, 1, true});
    w.match(Match{258, 1, false});
    w.end_of_block();
    BlockHeader stored;
    stored.type = BlockType::Stored;
    stored.stored_length = 3;
    const unsigned pad = static_cast<unsigned>((8 - (bits.position() + 3) % 8) % 8);
    REQUIRE(pad > 0);
    stored.pad_value = static_cast<uint8_t>(0x55 & ((1u << pad) - 1));
    w.block(stored);
    const uint8_t abc[3] = {'a', 'b', 'c'};
    w.stored(abc, 3);
    // Dynamic: 'a' (97) and end-of-block (256) get 1 bit each; symbol 257 and the two distance
    // codes are unused, and their zero run crosses from one alphabet into the other.
    BlockHeader dyn;
    dyn.type = BlockType::Dynamic;
    dyn.final = true;
    dyn.litlen_count = 258;
    dyn.dist_count = 2;
    dyn.clen_count = 18;
    // Code-length code (order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1): 18 -> 1 bit,
    // 17 and 1 -> 2 bits.
    dyn.clen_lengths[1] = 2;
    dyn.clen_lengths[2] = 1;
    dyn.clen_lengths[17] = 2;
    dyn.clen_symbols = {18, 1, 18, 18, 1, 17};
    dyn.clen_extra = {86, 0, 127, 9, 0, 0}; // 97 zeros, 1, 138 + 20 zeros, 1, 3 zeros
    derive_code_lengths(dyn);
    REQUIRE(dyn.lengths[97] == 1);
    REQUIRE(dyn.lengths[256] == 1);
    w.block(dyn);
    w.literal('a');
    w.end_of_block();
    w.end_of_stream(0x5);
    out.resize(bits.finish());
    // zlib agrees it is valid deflate.
    REQUIRE(zlib_inflate(out) == "a" + std::string(516, 'a') + "abca");
    std::string u;
    REQUIRE(rewrite(out, &u) == out);
    REQUIRE(u == "a" + std::string(516, 'a') + "abca");
}

TEST_CASE("what is not deflate is refused") {
    const std::string good = zlib_deflate(sample_data(20000), 6);
    SECTION("every truncation") {
        for (size_t n = 0; n < good.size(); n += 1 + n / 64) {
            INFO("length " << n);
            REQUIRE_THROWS_AS(rewrite(good.substr(0, n)), Error);
        }
    }
    SECTION("invalid block type, bad stored length, bad symbols") {
        REQUIRE_THROWS_AS(rewrite(std::string("\x07\0\0\0", 4)), Error);          // BTYPE 3
        REQUIRE_THROWS_AS(rewrite(std::string("\x01\x03\0\x03\0xyz", 8)), Error); // NLEN
        // A fixed block using literal/length symbol 286 (11000110 in 8 bits).
        std::string out(8, '\0');
        BitWriter b(reinterpret_cast<uint8_t*>(out.data()), out.size());
        b.bits(1, 1);
        b.bits(1, 2);
        b.bits(0x63, 8); // 0xc6 reversed
        out.resize(b.finish());
        REQUIRE_THROWS_AS(rewrite(out), Error);
    }
    SECTION("byte flips give an error or a stream that still rewrites exactly") {
        for (size_t i = 0; i < good.size(); i += 7) {
            std::string bad = good;
            bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
            try {
                size_t used = 0;
                const std::string again = rewrite(bad, nullptr, &used);
                REQUIRE(again == bad.substr(0, used));
            } catch (const Error& e) {
                REQUIRE(e.kind() == ErrorKind::Malformed);
            }
        }
    }
}
