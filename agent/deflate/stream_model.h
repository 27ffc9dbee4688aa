// Encoder side: a whole deflate stream parsed into its decompressed bytes and its exact parse
// (blocks, tokens and where each starts, in bits), so it can be cut into pieces at token
// boundaries and each piece described (piece.h).
#pragma once
#include "agent/deflate/lz77_predictor.h"
#include "agent/deflate/piece.h"
#include "agent/deflate/puff.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ota::deflate {

struct StreamModel {
    struct Block {
        BlockHeader header;
        uint64_t bit = 0;     // where its header starts
        uint64_t u_start = 0; // U position of its first byte
        size_t first = 0;     // its tokens: items[first, first + count)
        size_t count = 0;
    };
    const uint8_t* data = nullptr; // the compressed stream (not owned)
    uint64_t size = 0;             // its length in bytes, padding included
    std::vector<uint8_t> u;        // decompressed
    std::vector<Block> blocks;
    std::vector<Token> items;       // tokens (stored bytes as literals)
    std::vector<uint64_t> item_bit; // where each token starts
    std::vector<uint64_t> item_u;   // U position of each token
    uint64_t end_bit = 0;           // after the final end-of-block code
    unsigned pad_value = 0;         // the padding bits after it
};

// Parses the deflate stream at data[0, size) (it may end before size). Throws Error(Malformed)
// when it is not valid deflate, decompresses to more than max_u bytes, or has a match reaching
// before its start.
StreamModel model_stream(const uint8_t* data, size_t size, uint64_t max_u);

// A token boundary: before token `item` of block `block` (item 0: before the block's header);
// block == blocks.size() is the end of the stream (after its padding).
struct Cut {
    size_t block = 0;
    size_t item = 0;
};
uint64_t cut_bit(const StreamModel& s, const Cut& c);
uint64_t cut_u(const StreamModel& s, const Cut& c);

// The matcher (mode and parameters) that predicts the stream's parse best, judged on its first
// `sample_tokens` tokens: zlib's / gzip's levels 1-9 with the window the stream needs.
struct MatcherChoice {
    MatcherMode mode = MatcherMode::None;
    MatcherParams params;
    uint64_t mispredicted = 0; // in the sample
    uint64_t sampled = 0;
};
MatcherChoice choose_matcher(const StreamModel& s, size_t sample_tokens = 1u << 18);

struct PieceDescription {
    std::string description; // piece header + body (piece.h)
    uint64_t u_begin = 0;    // U bytes [u_begin - lead_in, u_end) make the piece's U buffer
    uint64_t u_end = 0;
    uint64_t lead_in = 0;
    uint64_t corrections = 0;
    bool ends_stream = false;
};

// Describes the bits between cuts a < b.
PieceDescription describe_piece(const StreamModel& s, const Cut& a, const Cut& b,
                                const MatcherChoice& matcher);

} // namespace ota::deflate
