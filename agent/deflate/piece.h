// A piece: the bits of one deflate stream between two token boundaries, described so that it can
// be written back exactly from its decompressed bytes (U). The description holds block headers
// (or a mark that the zlib-style header predicted from the block's symbols is the real one), the
// number of tokens per block, and only those tokens where the real parse differs from what the
// LZ77 predictor (lz77_predictor.h) predicts; literals come from U.
//
// Description layout (all varints):
//   lead_bits (0-7), lead_value      bits of the piece's first byte that precede its first token
//                                    (the end of the token before it), written as they are
//   lead_in (<= 32768), u_items      U bytes before the first token (the predictor's window) and
//                                    U bytes the piece's tokens produce; the piece's U buffer is
//                                    lead_in + u_items bytes
//   matcher                          0 (no predictor: every token is listed), 1 greedy, 2 lazy;
//                                    then good, lazy_len, nice, chain, hash_bits, window_bits
//   block_count (>= 1), then per block:
//     flags                          bit 0 final, bits 1-2 type, bit 3 header written here,
//                                    bit 4 header predicted, bit 5 block ends in this piece
//     dynamic, not predicted: litlen_count - 257, dist_count - 1, clen_count - 4,
//                             clen_count code-length code lengths, symbol count,
//                             symbols (each followed by its extra bits if 16-18)
//     stored, header written: pad_value, LEN
//     items                          tokens (stored: bytes) of the block in this piece
//     not stored: corrections count, then per correction: tokens predicted since the previous
//                 one, length (0 literal, 3-258, 259 = 258 coded as symbol 284 + 31), distance
//   if the last block is final and ends here: the end-of-stream padding value
//
// The piece starts at a byte boundary of the output; its last partial byte, if the stream goes on
// in a next piece, is not written (the next piece writes it as its lead bits).
#pragma once
#include "agent/deflate/bit_writer.h"
#include "agent/deflate/lz77_predictor.h"
#include "agent/deflate/varint.h"

#include <cstdint>
#include <string>

namespace ota::deflate {

inline constexpr uint64_t kMaxLeadIn = 32768;
// Blocks whose header is predicted are buffered (their symbol counts come first): at most this
// many tokens each.
inline constexpr uint64_t kMaxPredictedBlockTokens = 1u << 16;

enum class MatcherMode : uint8_t { None = 0, Greedy = 1, Lazy = 2 };

struct PieceHeader {
    unsigned lead_bits = 0;
    unsigned lead_value = 0;
    uint64_t lead_in = 0;
    uint64_t u_items = 0;
    MatcherMode mode = MatcherMode::None;
    MatcherParams params;
};

void write_piece_header(std::string& out, const PieceHeader& h);
// Reads a piece header; u_items is refused above max_u.
PieceHeader read_piece_header(ByteReader& in, uint64_t max_u);

// Writes the piece's bits from its description (after its header) and its U bytes
// (u[0, lead_in + u_items)). Returns true when the piece ends its stream (then the output is at a
// byte boundary). Throws Error(Malformed) on any inconsistency.
bool write_piece(const PieceHeader& header, ByteReader& description, const uint8_t* u,
                 BitWriter& out);

// The literal/length code of a token in descriptions: 0 literal, 3-258 a match, 259 the length
// 258 coded as symbol 284 with extra bits 31.
inline constexpr uint16_t kLong258 = 259;

} // namespace ota::deflate
