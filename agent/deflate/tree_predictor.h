// Predicts the dynamic block header that zlib and GNU gzip write for a block: their Huffman tree
// construction (a heap ordered by frequency, then depth; lengths limited to 15 / 7 bits by their
// overflow rule) and their run-length coding of the code lengths. A description then marks a
// block whose real header is the predicted one instead of carrying it.
#pragma once
#include "agent/deflate/puff.h"

#include <cstdint>

namespace ota::deflate {

// Symbol counts of one block: literal/length symbols 0-285 (the end-of-block symbol counts once),
// distance symbols 0-29.
struct SymbolCounts {
    uint32_t litlen[286] = {};
    uint32_t dist[30] = {};
};

// The header zlib would write for a dynamic block with these counts (lengths derived too).
BlockHeader predict_dynamic_header(const SymbolCounts& counts);

// Whether two dynamic headers code the same bits.
bool same_dynamic_header(const BlockHeader& a, const BlockHeader& b);

} // namespace ota::deflate
