#include "agent/deflate/huff.h"

#include "agent/common/error.h"
#include "agent/deflate/deflate_tables.h"

#include <algorithm>
#include <string>

namespace ota::deflate {

namespace {

[[noreturn]] void malformed(const std::string& what) {
    throw Error(ErrorKind::Malformed, "deflate description: " + what);
}

} // namespace

void derive_code_lengths(BlockHeader& h) {
    if (h.litlen_count < 257 || h.litlen_count > kMaxLitLenCodes || h.dist_count < 1 ||
        h.dist_count > kMaxDistCodes || h.clen_count < 4 || h.clen_count > 19)
        malformed("code counts out of range");
    if (h.clen_symbols.size() != h.clen_extra.size()) malformed("code-length extras do not match");
    const unsigned total = h.litlen_count + h.dist_count;
    std::fill(h.lengths, h.lengths + 320, 0);
    unsigned n = 0;
    for (size_t i = 0; i < h.clen_symbols.size(); ++i) {
        const unsigned sym = h.clen_symbols[i], extra = h.clen_extra[i];
        unsigned repeat = 1;
        uint8_t value = static_cast<uint8_t>(sym);
        if (sym > 18) malformed("code-length symbol out of range");
        if (sym < 16 && extra != 0) malformed("extra bits on a plain code length");
        if (sym == 16) {
            if (n == 0 || extra > 3) malformed("bad repeat of a code length");
            value = h.lengths[n - 1];
            repeat = 3 + extra;
        } else if (sym == 17) {
            if (extra > 7) malformed("bad zero run");
            value = 0;
            repeat = 3 + extra;
        } else if (sym == 18) {
            if (extra > 127) malformed("bad zero run");
            value = 0;
            repeat = 11 + extra;
        }
        if (n + repeat > total) malformed("code lengths run past the codes");
        std::fill(h.lengths + n, h.lengths + n + repeat, value);
        n += repeat;
    }
    if (n != total) malformed("code lengths do not cover the codes");
}

void DeflateWriter::block(const BlockHeader& h, bool continued) {
    if (!continued) {
        out_.bits(h.final ? 1 : 0, 1);
        out_.bits(static_cast<uint32_t>(h.type), 2);
    }
    switch (h.type) {
    case BlockType::Stored:
        if (!continued) {
            const unsigned pad = static_cast<unsigned>((8 - out_.position() % 8) % 8);
            out_.bits(h.pad_value, pad);
            out_.bits(h.stored_length, 16);
            out_.bits(~uint32_t{h.stored_length} & 0xffff, 16);
        }
        return;
    case BlockType::Fixed: {
        uint8_t l[288], d[32];
        fixed_litlen_lengths(l);
        fixed_dist_lengths(d);
        litlen_.build(l, 288, false);
        dist_.build(d, 32, false);
        return;
    }
    case BlockType::Dynamic: {
        uint8_t clen_by_symbol[19] = {};
        for (unsigned i = 0; i < h.clen_count; ++i) {
            if (h.clen_lengths[i] > 7) malformed("code-length code length out of range");
            clen_by_symbol[kCodeLengthOrder[i]] = h.clen_lengths[i];
        }
        HuffmanCode clen;
        if (!clen.build(clen_by_symbol, 19, false)) malformed("over-subscribed code-length code");
        if (!litlen_.build(h.lengths, h.litlen_count, false) ||
            !dist_.build(h.lengths + h.litlen_count, h.dist_count, false))
            malformed("over-subscribed code");
        if (continued) return;
        out_.bits(h.litlen_count - 257u, 5);
        out_.bits(h.dist_count - 1u, 5);
        out_.bits(h.clen_count - 4u, 4);
        for (unsigned i = 0; i < h.clen_count; ++i)
            out_.bits(h.clen_lengths[i], 3);
        for (size_t i = 0; i < h.clen_symbols.size(); ++i) {
            const unsigned sym = h.clen_symbols[i];
            clen.encode(out_, sym);
            if (sym == 16) out_.bits(h.clen_extra[i], 2);
            if (sym == 17) out_.bits(h.clen_extra[i], 3);
            if (sym == 18) out_.bits(h.clen_extra[i], 7);
        }
        return;
    }
    }
    malformed("invalid block type");
}

void DeflateWriter::match(const Match& m) {
    if (m.length < 3 || m.length > 258 || m.distance < 1 || m.distance > kWindowSize)
        malformed("match out of range");
    unsigned li, extra;
    if (m.long_258) {
        if (m.length != 258) malformed("only length 258 has a second coding");
        li = 27;
        extra = 31;
    } else {
        li = length_symbol_index(m.length);
        extra = m.length - kLengthBase[li];
    }
    litlen_.encode(out_, 257 + li);
    out_.bits(extra, kLengthExtra[li]);
    const unsigned ds = distance_symbol(m.distance);
    dist_.encode(out_, ds);
    out_.bits(m.distance - kDistBase[ds], kDistExtra[ds]);
}

void DeflateWriter::end_of_stream(unsigned pad_value) {
    const unsigned pad = static_cast<unsigned>((8 - out_.position() % 8) % 8);
    if (pad_value >> pad) malformed("padding value does not fit the padding");
    out_.bits(pad_value, pad);
}

} // namespace ota::deflate
