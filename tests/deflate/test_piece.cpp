// Pieces: a stream cut at token boundaries, each piece described and written back from its
// decompressed bytes alone; together they give the stream's exact bytes.
#include "agent/common/error.h"
#include "agent/deflate/piece.h"
#include "agent/deflate/stream_model.h"
#include "deflate_test_util.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::deflate;
using namespace ota::test;

namespace {

// Writes one piece from its description; returns its bytes.
std::string write_one(const StreamModel& m, const PieceDescription& d, size_t capacity) {
    ByteReader in(bytes_of(d.description), d.description.size(), "piece description");
    const PieceHeader h = read_piece_header(in, 1ull << 30);
    REQUIRE(h.lead_in == d.lead_in);
    REQUIRE(h.u_items == d.u_end - d.u_begin);
    std::string out(capacity, '\0');
    BitWriter bits(reinterpret_cast<uint8_t*>(out.data()), out.size());
    const bool ended = write_piece(h, in, m.u.data() + (d.u_begin - d.lead_in), bits);
    REQUIRE(in.at_end());
    REQUIRE(ended == d.ends_stream);
    out.resize(ended ? bits.finish() : bits.finish_whole_bytes());
    return out;
}

// Cuts the stream at `cuts` (sorted, after the start), checks every piece is exactly its bytes of
// the stream; returns the corrections the descriptions carry.
uint64_t check_pieces(const std::string& stream, std::vector<Cut> cuts,
                      const MatcherChoice* forced = nullptr) {
    const StreamModel m = model_stream(bytes_of(stream), stream.size(), 1ull << 30);
    REQUIRE(m.size == stream.size());
    const MatcherChoice matcher = forced ? *forced : choose_matcher(m);
    cuts.push_back(Cut{m.blocks.size(), 0});
    Cut from{0, 0};
    uint64_t corrections = 0;
    for (const Cut& to : cuts) {
        const uint64_t a = cut_bit(m, from), b = cut_bit(m, to);
        INFO("piece bits " << a << ".." << b);
        const PieceDescription d = describe_piece(m, from, to, matcher);
        const std::string bytes = write_one(m, d, stream.size());
        const size_t end = d.ends_stream ? stream.size() : static_cast<size_t>(b / 8);
        REQUIRE(bytes == stream.substr(a / 8, end - a / 8));
        corrections += d.corrections;
        from = to;
    }
    return corrections;
}

} // namespace

TEST_CASE("a whole stream is one piece") {
    const std::string data = sample_data(60000, 21);
    for (int level = 0; level <= 9; ++level) {
        INFO("level " << level);
        const uint64_t corrections = check_pieces(zlib_deflate(data, level), {});
        if (level > 0) REQUIRE(corrections == 0);
    }
    REQUIRE(check_pieces(gzip_body(gnu_gzip(data, 9)), {}) == 0);
    check_pieces(zlib_deflate(data, 6, -15, 8, Z_FIXED), {});
    check_pieces(zlib_deflate("", 6), {});
}

TEST_CASE("pieces cut at every block boundary and inside blocks rebuild the stream") {
    const std::string stream = zlib_deflate(sample_data(300000, 22), 9);
    const StreamModel m = model_stream(bytes_of(stream), stream.size(), 1ull << 30);
    REQUIRE(m.blocks.size() >= 3);
    std::vector<Cut> blocks, inside;
    for (size_t b = 1; b < m.blocks.size(); ++b)
        blocks.push_back({b, 0});
    for (size_t b = 0; b < m.blocks.size(); ++b)
        for (size_t i = 1; i < m.blocks[b].count; i += 997)
            inside.push_back({b, i});
    check_pieces(stream, blocks);
    // Inside blocks the descriptions repeat the block's header; the matcher starts over at
    // each cut, so a few tokens after it may need a correction.
    const uint64_t corrections = check_pieces(stream, inside);
    REQUIRE(corrections <= 2 * inside.size());
}

TEST_CASE("stored blocks are cut inside too") {
    const std::string stream = zlib_deflate(sample_data(150000, 23), 0);
    const StreamModel m = model_stream(bytes_of(stream), stream.size(), 1ull << 30);
    REQUIRE(m.blocks.size() >= 3);
    REQUIRE(m.blocks[0].header.type == BlockType::Stored);
    check_pieces(stream,
                 {{0, 1}, {0, m.blocks[0].count / 2}, {1, 0}, {1, 5}, {2, m.blocks[2].count - 1}});
}

TEST_CASE("without a matcher every token is listed, and it still rebuilds exactly") {
    const std::string stream = zlib_deflate(sample_data(60000, 24), 6);
    MatcherChoice none;
    const uint64_t corrections = check_pieces(stream, {{0, 100}}, &none);
    REQUIRE(corrections == parse_tokens(stream).tokens.size());
}

TEST_CASE("hostile piece descriptions are refused without reading outside their bytes") {
    const std::string stream = zlib_deflate(sample_data(12000, 25), 9);
    const StreamModel m = model_stream(bytes_of(stream), stream.size(), 1ull << 30);
    const PieceDescription good =
        describe_piece(m, Cut{0, 5}, Cut{m.blocks.size(), 0}, choose_matcher(m));
    const uint8_t* u = m.u.data() + (good.u_begin - good.lead_in);
    const size_t u_size = static_cast<size_t>(good.u_end - good.u_begin + good.lead_in);
    // The piece's bytes in a buffer of their own size, so reading past them is caught by ASan.
    const std::vector<uint8_t> own(u, u + u_size);
    auto attempt = [&](const std::string& desc) {
        ByteReader in(bytes_of(desc), desc.size(), "piece description");
        std::string out(stream.size(), '\0');
        BitWriter bits(reinterpret_cast<uint8_t*>(out.data()), out.size());
        const PieceHeader h = read_piece_header(in, u_size);
        if (h.lead_in + h.u_items > u_size) throw Error(ErrorKind::Malformed, "(checked)");
        write_piece(h, in, own.data(), bits);
    };
    attempt(good.description);
    for (size_t n = 0; n < good.description.size(); ++n) {
        INFO("truncated to " << n);
        REQUIRE_THROWS_AS(attempt(good.description.substr(0, n)), Error);
    }
    for (size_t i = 0; i < good.description.size(); ++i) {
        std::string bad = good.description;
        bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
        try {
            attempt(bad);
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::Malformed);
        }
    }
}
