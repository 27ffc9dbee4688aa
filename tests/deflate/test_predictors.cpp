// The LZ77 and Huffman-tree predictors reproduce what zlib and GNU gzip chose, so descriptions of
// their streams carry (almost) nothing but block sizes.
#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/lz77_predictor.h"
#include "agent/deflate/tree_predictor.h"
#include "deflate_test_util.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::deflate;
using namespace ota::test;

namespace {

// Tokens of `parsed` the predictor gets wrong, predicting from position `start` (with the window
// before it) to the end.
size_t mispredicted(const ParsedTokens& parsed, const MatcherParams& params,
                    size_t start_token = 0) {
    size_t start = 0;
    for (size_t i = 0; i < start_token; ++i)
        start += token_span(parsed.tokens[i]);
    Lz77Predictor p(bytes_of(parsed.u), parsed.u.size(), start, params);
    size_t miss = 0;
    for (size_t i = start_token; i < parsed.tokens.size(); ++i) {
        if (p.predict() != parsed.tokens[i]) ++miss;
        p.advance(parsed.tokens[i]);
    }
    REQUIRE(p.position() == parsed.u.size());
    return miss;
}

MatcherParams params(int level, int window_bits = 15, int mem_level = 8) {
    MatcherParams p = matcher_params_for_level(level);
    p.window_bits = static_cast<uint8_t>(window_bits);
    p.hash_bits = static_cast<uint8_t>(mem_level + 7);
    return p;
}

} // namespace

TEST_CASE("the matcher predicts zlib's parse at every level and window size") {
    // memLevel 8 is zlib's default, 9 its largest hash; the smallest ones (a 256-entry hash
    // table at memLevel 1) differ in a few places, which cost a correction each.
    const std::string data = sample_data(60000, 11);
    for (int level = 1; level <= 9; ++level)
        for (int window : {9, 12, 15})
            for (int mem : {1, 8, 9}) {
                INFO("level " << level << " window " << window << " memLevel " << mem);
                const ParsedTokens t = parse_tokens(zlib_deflate(data, level, -window, mem));
                REQUIRE(t.u == data);
                const size_t miss = mispredicted(t, params(level, window, mem));
                if (mem >= 8)
                    REQUIRE(miss == 0);
                else
                    REQUIRE(miss < t.tokens.size() / 200);
            }
}

TEST_CASE("the matcher predicts GNU gzip's parse") {
    const std::string data = sample_data(200000, 12);
    for (int level : {1, 6, 9}) {
        INFO("gzip -" << level);
        const ParsedTokens t = parse_tokens(gzip_body(gnu_gzip(data, level)));
        REQUIRE(mispredicted(t, params(level)) == 0);
    }
}

TEST_CASE("started inside a stream with its window, the matcher is right within a few tokens") {
    const ParsedTokens t = parse_tokens(zlib_deflate(sample_data(150000, 13), 9));
    for (size_t start : {size_t{1000}, t.tokens.size() / 2, t.tokens.size() - 50}) {
        INFO("from token " << start);
        REQUIRE(mispredicted(t, params(9), start) <= 2);
    }
}

TEST_CASE("a wrong prediction costs one correction, not the rest of the stream") {
    // Level 6 predictions of a level 9 stream differ in places; each is followed back into
    // the real parse, so the misses stay a small fraction.
    const ParsedTokens t = parse_tokens(zlib_deflate(sample_data(150000, 14), 9));
    const size_t miss = mispredicted(t, params(6));
    REQUIRE(miss > 0);
    REQUIRE(miss < t.tokens.size() / 10);
}

TEST_CASE("the predicted dynamic headers are zlib's and gzip's") {
    struct Check : DeflateVisitor {
        SymbolCounts counts;
        BlockHeader header;
        size_t dynamic = 0, predicted = 0;
        void block(const BlockHeader& h, uint64_t) override {
            header = h;
            counts = SymbolCounts{};
        }
        void literal(uint8_t b, uint64_t) override { counts.litlen[b]++; }
        void match(const Match& m, uint64_t) override {
            counts.litlen[257 + length_symbol_index(m.length)]++;
            counts.dist[distance_symbol(m.distance)]++;
        }
        void stored(const uint8_t*, size_t, uint64_t) override {}
        void end_of_block(uint64_t) override {
            if (header.type != BlockType::Dynamic) return;
            counts.litlen[256]++;
            ++dynamic;
            if (same_dynamic_header(predict_dynamic_header(counts), header)) ++predicted;
        }
        void end_of_stream(unsigned, unsigned, uint64_t) override {}
    };
    const std::string data = sample_data(400000, 15);
    std::vector<std::string> streams;
    for (int level = 1; level <= 9; ++level)
        streams.push_back(zlib_deflate(data, level));
    streams.push_back(zlib_deflate(data.substr(0, 3000), 9));   // few symbols
    streams.push_back(zlib_deflate(std::string(5000, 'z'), 9)); // no literals but one
    for (int level : {1, 6, 9})
        streams.push_back(gzip_body(gnu_gzip(data, level)));
    for (size_t i = 0; i < streams.size(); ++i) {
        INFO("stream " << i);
        Check c;
        parse_deflate(bytes_of(streams[i]), streams[i].size(), 0, c);
        REQUIRE(c.dynamic > 0);
        REQUIRE(c.predicted == c.dynamic);
    }
}
