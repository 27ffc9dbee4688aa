#include "agent/deflate/puff.h"

#include "agent/common/error.h"
#include "agent/deflate/bit_reader.h"
#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/huffman.h"

#include <algorithm>
#include <string>

namespace ota::deflate {

namespace {

[[noreturn]] void malformed(const std::string& what) {
    throw Error(ErrorKind::Malformed, "deflate stream: " + what);
}

// Reads a dynamic block's header after BFINAL/BTYPE into h and builds its two codes.
void read_dynamic_header(BitReader& in, BlockHeader& h, HuffmanCode& litlen, HuffmanCode& dist) {
    h.litlen_count = static_cast<uint16_t>(in.bits(5) + 257);
    h.dist_count = static_cast<uint8_t>(in.bits(5) + 1);
    h.clen_count = static_cast<uint8_t>(in.bits(4) + 4);
    if (h.litlen_count > kMaxLitLenCodes || h.dist_count > kMaxDistCodes)
        malformed("too many length or distance codes");
    uint8_t clen_by_symbol[19] = {};
    std::fill(h.clen_lengths, h.clen_lengths + 19, 0);
    for (unsigned i = 0; i < h.clen_count; ++i) {
        h.clen_lengths[i] = static_cast<uint8_t>(in.bits(3));
        clen_by_symbol[kCodeLengthOrder[i]] = h.clen_lengths[i];
    }
    HuffmanCode clen;
    if (!clen.build(clen_by_symbol, 19, true)) malformed("over-subscribed code-length code");
    const unsigned total = h.litlen_count + h.dist_count;
    h.clen_symbols.clear();
    h.clen_extra.clear();
    std::fill(h.lengths, h.lengths + 320, 0);
    for (unsigned n = 0; n < total;) {
        const unsigned sym = clen.decode(in);
        unsigned extra = 0, repeat = 1;
        uint8_t value = static_cast<uint8_t>(sym);
        if (sym == 16) {
            if (n == 0) malformed("repeat of a code length with none before");
            value = h.lengths[n - 1];
            extra = in.bits(2);
            repeat = 3 + extra;
        } else if (sym == 17) {
            value = 0;
            extra = in.bits(3);
            repeat = 3 + extra;
        } else if (sym == 18) {
            value = 0;
            extra = in.bits(7);
            repeat = 11 + extra;
        }
        if (n + repeat > total) malformed("code lengths run past the codes");
        std::fill(h.lengths + n, h.lengths + n + repeat, value);
        n += repeat;
        h.clen_symbols.push_back(static_cast<uint8_t>(sym));
        h.clen_extra.push_back(static_cast<uint8_t>(extra));
    }
    if (h.lengths[kEndOfBlock] == 0) malformed("no code for the end of a block");
    if (!litlen.build(h.lengths, h.litlen_count, true)) malformed("over-subscribed length code");
    if (!dist.build(h.lengths + h.litlen_count, h.dist_count, true))
        malformed("over-subscribed distance code");
}

} // namespace

uint64_t parse_deflate(const uint8_t* data, size_t size, uint64_t bit_offset,
                       DeflateVisitor& visitor, uint64_t* stopped_at) {
    BitReader in(data, size, bit_offset);
    HuffmanCode litlen, dist;
    BlockHeader h;
    auto stop_here = [&] {
        if (!stopped_at) malformed("the visitor stopped without a stop position");
        *stopped_at = in.position();
        return in.position();
    };
    for (bool final = false; !final;) {
        const uint64_t block_bit = in.position();
        final = in.bits(1) != 0;
        const unsigned type = in.bits(2);
        h.final = final;
        if (type == 0) {
            h.type = BlockType::Stored;
            h.pad_bits = static_cast<uint8_t>(in.bits_to_byte_boundary());
            h.pad_value = static_cast<uint8_t>(in.bits(h.pad_bits));
            const unsigned len = in.bits(16);
            const unsigned nlen = in.bits(16);
            if (len != (~nlen & 0xffff)) malformed("stored block length check fails");
            h.stored_length = static_cast<uint16_t>(len);
            visitor.block(h, block_bit);
            if (visitor.stop) return stop_here();
            const uint64_t at = in.position();
            if (len > in.bits_left() / 8) malformed("stored block runs past the data");
            // The stream is byte-aligned here: the bytes are handed over in place.
            visitor.stored(data + at / 8, len, at);
            in.seek(at + uint64_t{len} * 8);
            if (visitor.stop) return stop_here();
            continue;
        }
        if (type == 3) malformed("invalid block type");
        if (type == 1) {
            h.type = BlockType::Fixed;
            uint8_t l[288], d[32];
            fixed_litlen_lengths(l);
            fixed_dist_lengths(d);
            litlen.build(l, 288, true);
            dist.build(d, 32, true);
        } else {
            h.type = BlockType::Dynamic;
            read_dynamic_header(in, h, litlen, dist);
        }
        visitor.block(h, block_bit);
        if (visitor.stop) return stop_here();
        for (;;) {
            const uint64_t bit = in.position();
            const unsigned sym = litlen.decode(in);
            if (sym < 256) {
                visitor.literal(static_cast<uint8_t>(sym), bit);
            } else if (sym == kEndOfBlock) {
                visitor.end_of_block(bit);
                if (visitor.stop) return stop_here();
                break;
            } else {
                const unsigned li = sym - 257;
                if (li >= 29) malformed("invalid length symbol");
                Match m;
                const unsigned extra = in.bits(kLengthExtra[li]);
                m.length = static_cast<uint16_t>(kLengthBase[li] + extra);
                m.long_258 = li == 27 && extra == 31;
                const unsigned ds = dist.decode(in);
                if (ds >= kMaxDistCodes) malformed("invalid distance symbol");
                m.distance = static_cast<uint16_t>(kDistBase[ds] + in.bits(kDistExtra[ds]));
                visitor.match(m, bit);
            }
            if (visitor.stop) return stop_here();
        }
    }
    const unsigned pad = in.bits_to_byte_boundary();
    const uint64_t bit = in.position();
    visitor.end_of_stream(pad, in.bits(pad), bit);
    if (stopped_at) *stopped_at = in.position();
    return in.position() / 8;
}

} // namespace ota::deflate
