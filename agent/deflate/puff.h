// Parses a deflate stream (RFC 1951) into the exact events that make up its bits: block headers as
// coded (including how a dynamic block's code lengths were run-length coded), literals, matches
// (with the one length that has two codings), stored bytes and padding bits. Nothing is
// decompressed here: a match is reported as (length, distance), so parsing needs no window and can
// start at any block boundary.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ota::deflate {

enum class BlockType : uint8_t { Stored = 0, Fixed = 1, Dynamic = 2 };

struct BlockHeader {
    bool final = false;
    BlockType type = BlockType::Stored;
    // Stored: the bits skipped to reach the byte boundary (0-7 of them, usually zero) and LEN.
    uint8_t pad_bits = 0;
    uint8_t pad_value = 0;
    uint16_t stored_length = 0;
    // Dynamic: HLIT + 257, HDIST + 1, HCLEN + 4 as counts; the code-length code lengths in the
    // order they are stored; the code-length symbols (0-18) with the extra bits of 16/17/18.
    uint16_t litlen_count = 0;
    uint8_t dist_count = 0;
    uint8_t clen_count = 0;
    uint8_t clen_lengths[19] = {};
    std::vector<uint8_t> clen_symbols;
    std::vector<uint8_t> clen_extra;
    // Derived (not coded separately): the literal/length then distance code lengths.
    uint8_t lengths[288 + 32] = {};
};

struct Match {
    uint16_t length = 0;   // 3-258
    uint16_t distance = 0; // 1-32768
    // Length 258 coded as symbol 284 with extra bits 31 instead of symbol 285 (valid, rare).
    bool long_258 = false;
};

// Receives the events of a stream in order; `bit` is where the event's bits start. Setting
// `stop` makes the parser return after the current event.
class DeflateVisitor {
public:
    virtual ~DeflateVisitor() = default;
    virtual void block(const BlockHeader& header, uint64_t bit) = 0;
    virtual void literal(uint8_t byte, uint64_t bit) = 0;
    virtual void match(const Match& match, uint64_t bit) = 0;
    virtual void stored(const uint8_t* data, size_t size, uint64_t bit) = 0;
    virtual void end_of_block(uint64_t bit) = 0;
    // After the final block: the bits up to the next byte boundary (0-7), usually zero.
    virtual void end_of_stream(unsigned pad_bits, unsigned pad_value, uint64_t bit) = 0;
    bool stop = false;
};

// Parses from data bit `bit_offset` (a block start) to the end of the final block and its padding;
// returns the byte offset just past the stream (or where the visitor stopped, in bits, when
// `stopped_at` is given). Throws Error(Malformed) on anything that is not valid deflate.
uint64_t parse_deflate(const uint8_t* data, size_t size, uint64_t bit_offset,
                       DeflateVisitor& visitor, uint64_t* stopped_at = nullptr);

} // namespace ota::deflate
