// Writes deflate bits back from the events puff.h reports: block headers exactly as they were
// coded, literals, matches, stored bytes and padding. Feeding it the events of a stream (and the
// same BitWriter position) gives back the stream's exact bytes.
#pragma once
#include "agent/deflate/bit_writer.h"
#include "agent/deflate/huffman.h"
#include "agent/deflate/puff.h"

namespace ota::deflate {

class DeflateWriter {
public:
    explicit DeflateWriter(BitWriter& out) : out_(out) {}

    // Writes a block's header; its codes are used until the next block. `continued`: the block
    // began earlier (its header is not written again, but its codes are needed).
    void block(const BlockHeader& header, bool continued = false);
    void literal(uint8_t byte) { litlen_.encode(out_, byte); }
    // length 3-258 (long_258: coded as symbol 284 with extra bits 31), distance 1-32768.
    void match(const Match& match);
    // Bytes of a stored block (after its header, so the writer is at a byte boundary).
    void stored(const uint8_t* data, size_t size) { out_.bytes(data, size); }
    void end_of_block() { litlen_.encode(out_, kEndOfBlockSymbol); }
    // The padding after the final block: the bits to the next byte boundary, given their value.
    void end_of_stream(unsigned pad_value);

private:
    static constexpr unsigned kEndOfBlockSymbol = 256;
    BitWriter& out_;
    HuffmanCode litlen_, dist_;
};

// Code lengths of a dynamic block header as coded, checked: what puff.h derives as
// BlockHeader::lengths. Throws Error(Malformed) when the header is inconsistent.
void derive_code_lengths(BlockHeader& header);

} // namespace ota::deflate
