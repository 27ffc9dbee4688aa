#include "agent/deflate/piece.h"

#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/huff.h"
#include "agent/deflate/tree_predictor.h"

#include <memory>
#include <vector>

namespace ota::deflate {

namespace {

enum BlockFlags : unsigned {
    kFinal = 1,
    kTypeShift = 1,
    kHeaderWritten = 8,
    kHeaderPredicted = 16,
    kEndsHere = 32,
};

void read_explicit_header(ByteReader& in, BlockHeader& h) {
    h.litlen_count = static_cast<uint16_t>(257 + in.varint(kMaxLitLenCodes - 257, "HLIT"));
    h.dist_count = static_cast<uint8_t>(1 + in.varint(kMaxDistCodes - 1, "HDIST"));
    h.clen_count = static_cast<uint8_t>(4 + in.varint(15, "HCLEN"));
    const uint8_t* cl = in.bytes(h.clen_count);
    for (unsigned i = 0; i < h.clen_count; ++i)
        h.clen_lengths[i] = cl[i];
    // Every code-length symbol codes at least one length.
    const uint64_t count = in.varint(288 + 32, "code-length symbol count");
    h.clen_symbols.resize(count);
    h.clen_extra.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
        h.clen_symbols[i] = static_cast<uint8_t>(in.varint(18, "code-length symbol"));
        h.clen_extra[i] = h.clen_symbols[i] >= 16
                              ? static_cast<uint8_t>(in.varint(127, "code-length extra bits"))
                              : 0;
    }
    derive_code_lengths(h);
}

// Produces a block's tokens: the predictor's, except where the description corrects it.
class TokenSource {
public:
    TokenSource(ByteReader& in, Lz77Predictor* predictor, uint64_t items)
        : in_(in), predictor_(predictor) {
        left_ = in.varint(items, "correction count");
        if (left_ > 0) gap_ = in.varint(items, "correction gap");
    }

    Token next() {
        Token t;
        if (left_ > 0 && gap_ == 0) {
            t.length = static_cast<uint16_t>(in_.varint(kLong258, "match length"));
            if (t.length == 1 || t.length == 2) in_.fail("has a match shorter than 3");
            if (t.length) t.distance = static_cast<uint16_t>(in_.varint(kWindowSize, "distance"));
            if (t.length && t.distance == 0) in_.fail("has a zero distance");
            if (--left_ > 0) gap_ = in_.varint(UINT32_MAX, "correction gap");
        } else {
            if (!predictor_) in_.fail("has a token without a correction or a predictor");
            t = predictor_->predict();
            if (left_ > 0) --gap_;
        }
        return t;
    }
    void finish() const {
        if (left_ != 0) in_.fail("has corrections past the block's tokens");
    }

private:
    ByteReader& in_;
    Lz77Predictor* predictor_;
    uint64_t left_ = 0;
    uint64_t gap_ = 0;
};

void count_symbols(const Token& t, const uint8_t* u, size_t pos, SymbolCounts& counts) {
    if (t.length == 0) {
        counts.litlen[u[pos]]++;
        return;
    }
    counts.litlen[257 + (t.length == kLong258 ? 27 : length_symbol_index(t.length))]++;
    counts.dist[distance_symbol(t.distance)]++;
}

} // namespace

void write_piece_header(std::string& out, const PieceHeader& h) {
    put_varint(out, h.lead_bits);
    put_varint(out, h.lead_value);
    put_varint(out, h.lead_in);
    put_varint(out, h.u_items);
    put_varint(out, static_cast<uint64_t>(h.mode));
    if (h.mode == MatcherMode::None) return;
    for (uint64_t v :
         {uint64_t{h.params.good}, uint64_t{h.params.lazy_len}, uint64_t{h.params.nice},
          uint64_t{h.params.chain}, uint64_t{h.params.hash_bits}, uint64_t{h.params.window_bits}})
        put_varint(out, v);
}

PieceHeader read_piece_header(ByteReader& in, uint64_t max_u) {
    PieceHeader h;
    h.lead_bits = static_cast<unsigned>(in.varint(7, "lead bit count"));
    h.lead_value = static_cast<unsigned>(in.varint((1u << h.lead_bits) - 1, "lead bits"));
    h.lead_in = in.varint(kMaxLeadIn, "lead-in");
    h.u_items = in.varint(max_u, "piece size");
    if (h.lead_in > max_u - h.u_items) in.fail("piece size out of range");
    h.mode = static_cast<MatcherMode>(in.varint(2, "matcher"));
    if (h.mode == MatcherMode::None) return h;
    h.params.lazy = h.mode == MatcherMode::Lazy;
    h.params.good = static_cast<uint16_t>(in.varint(258, "good length"));
    h.params.lazy_len = static_cast<uint16_t>(in.varint(258, "lazy length"));
    h.params.nice = static_cast<uint16_t>(in.varint(258, "nice length"));
    h.params.chain = static_cast<uint16_t>(in.varint(65535, "chain length"));
    h.params.hash_bits = static_cast<uint8_t>(in.varint(16, "hash bits"));
    h.params.window_bits = static_cast<uint8_t>(in.varint(15, "window bits"));
    if (h.params.chain == 0 || h.params.hash_bits < 8 || h.params.window_bits < 8)
        in.fail("matcher parameters out of range");
    return h;
}

bool write_piece(const PieceHeader& header, ByteReader& in, const uint8_t* u, BitWriter& out) {
    out.bits(header.lead_value, header.lead_bits);
    const size_t end = static_cast<size_t>(header.lead_in + header.u_items);
    size_t pos = static_cast<size_t>(header.lead_in);
    std::unique_ptr<Lz77Predictor> predictor;
    if (header.mode != MatcherMode::None)
        predictor = std::make_unique<Lz77Predictor>(u, end, pos, header.params);
    DeflateWriter w(out);
    std::vector<Token> buffered;
    const uint64_t blocks = in.varint(UINT32_MAX, "block count");
    if (blocks == 0) in.fail("has no block");
    bool stream_ended = false;
    for (uint64_t b = 0; b < blocks; ++b) {
        if (stream_ended) in.fail("has a block after the final one");
        const unsigned flags = static_cast<unsigned>(in.varint(63, "block flags"));
        BlockHeader h;
        h.final = flags & kFinal;
        const unsigned type = (flags >> kTypeShift) & 3;
        if (type == 3) in.fail("has an invalid block type");
        h.type = static_cast<BlockType>(type);
        const bool written = flags & kHeaderWritten, predicted = flags & kHeaderPredicted,
                   ends = flags & kEndsHere;
        if (b > 0 && !written) in.fail("continues a block that is not its first");
        if (b + 1 < blocks && !ends) in.fail("leaves a block open before the next");
        if (predicted && (h.type != BlockType::Dynamic || !written || !ends))
            in.fail("predicts a header it cannot");
        if (h.type == BlockType::Dynamic && !predicted) read_explicit_header(in, h);
        if (h.type == BlockType::Stored && written) {
            h.pad_value = static_cast<uint8_t>(in.varint(127, "stored padding"));
            h.stored_length = static_cast<uint16_t>(in.varint(65535, "stored length"));
        }
        const uint64_t items = in.varint(end - pos, "token count");
        if (h.type == BlockType::Stored) {
            if (written && (ends ? items != h.stored_length : items >= h.stored_length))
                in.fail("stored block length does not match");
            if (written && (h.pad_value >> ((8 - out.position() % 8) % 8)) != 0)
                in.fail("stored block padding does not fit");
            w.block(h, !written);
            w.stored(u + pos, static_cast<size_t>(items));
            for (uint64_t i = 0; i < items; ++i)
                if (predictor) predictor->advance_hinted(Token{});
            pos += static_cast<size_t>(items);
        } else {
            TokenSource tokens(in, predictor.get(), items);
            SymbolCounts counts;
            if (predicted) {
                if (items > kMaxPredictedBlockTokens)
                    in.fail("predicts the header of a huge block");
                buffered.clear();
            } else {
                w.block(h, !written);
            }
            size_t block_start = pos;
            for (uint64_t i = 0; i < items; ++i) {
                const Token t = tokens.next();
                const size_t span = token_span(t);
                if (span > end - pos) in.fail("has tokens past its bytes");
                if (t.distance > pos) in.fail("has a match before its window");
                if (predictor) predictor->advance(t);
                if (predicted) {
                    count_symbols(t, u, pos, counts);
                    buffered.push_back(t);
                } else if (t.length == 0) {
                    w.literal(u[pos]);
                } else {
                    w.match(Match{static_cast<uint16_t>(span), t.distance, t.length == kLong258});
                }
                pos += span;
            }
            tokens.finish();
            if (predicted) {
                counts.litlen[kEndOfBlock]++;
                h = predict_dynamic_header(counts);
                h.final = flags & kFinal;
                w.block(h);
                size_t p = block_start;
                for (const Token& t : buffered) {
                    const size_t span = token_span(t);
                    if (t.length == 0)
                        w.literal(u[p]);
                    else
                        w.match(
                            Match{static_cast<uint16_t>(span), t.distance, t.length == kLong258});
                    p += span;
                }
            }
            if (ends) w.end_of_block();
        }
        if (h.final && ends) stream_ended = true;
    }
    if (pos != end) in.fail("does not use all its bytes");
    if (stream_ended) w.end_of_stream(static_cast<unsigned>(in.varint(127, "end padding")));
    return stream_ended;
}

} // namespace ota::deflate
