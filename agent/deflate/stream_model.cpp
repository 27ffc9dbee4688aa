#include "agent/deflate/stream_model.h"

#include "agent/common/error.h"
#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/tree_predictor.h"
#include "agent/deflate/varint.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace ota::deflate {

namespace {

class ModelBuilder : public DeflateVisitor {
public:
    ModelBuilder(StreamModel& s, uint64_t max_u) : s_(s), max_u_(max_u) {}

    void block(const BlockHeader& h, uint64_t bit) override {
        StreamModel::Block b;
        b.header = h;
        b.bit = bit;
        b.u_start = s_.u.size();
        b.first = s_.items.size();
        s_.blocks.push_back(std::move(b));
    }
    void literal(uint8_t byte, uint64_t bit) override {
        add(Token{}, bit);
        s_.u.push_back(byte);
    }
    void match(const Match& m, uint64_t bit) override {
        if (m.distance > s_.u.size())
            throw Error(ErrorKind::Malformed, "deflate stream: distance too far back");
        add(Token{m.long_258 ? kLong258 : m.length, m.distance}, bit);
        const size_t from = s_.u.size() - m.distance;
        for (unsigned i = 0; i < m.length; ++i)
            s_.u.push_back(s_.u[from + i]);
    }
    void stored(const uint8_t* data, size_t size, uint64_t bit) override {
        for (size_t i = 0; i < size; ++i) {
            add(Token{}, bit + 8 * i);
            s_.u.push_back(data[i]);
        }
    }
    void end_of_block(uint64_t) override {
        auto& b = s_.blocks.back();
        b.count = s_.items.size() - b.first;
    }
    void end_of_stream(unsigned, unsigned pad_value, uint64_t bit) override {
        s_.end_bit = bit;
        s_.pad_value = pad_value;
    }

private:
    void add(const Token& t, uint64_t bit) {
        if (s_.u.size() + token_span(t) > max_u_)
            throw Error(ErrorKind::TooLarge, "deflate stream decompresses to too much");
        s_.items.push_back(t);
        s_.item_bit.push_back(bit);
        s_.item_u.push_back(s_.u.size());
    }
    StreamModel& s_;
    uint64_t max_u_;
};

} // namespace

StreamModel model_stream(const uint8_t* data, size_t size, uint64_t max_u) {
    StreamModel s;
    s.data = data;
    ModelBuilder b(s, max_u);
    s.size = parse_deflate(data, size, 0, b);
    // Stored blocks end without an end-of-block code: their count is set here.
    for (auto& blk : s.blocks)
        if (blk.header.type == BlockType::Stored) blk.count = blk.header.stored_length;
    return s;
}

uint64_t cut_bit(const StreamModel& s, const Cut& c) {
    if (c.block >= s.blocks.size()) return s.size * 8;
    const auto& b = s.blocks[c.block];
    return c.item == 0 ? b.bit : s.item_bit[b.first + c.item];
}

uint64_t cut_u(const StreamModel& s, const Cut& c) {
    if (c.block >= s.blocks.size()) return s.u.size();
    const auto& b = s.blocks[c.block];
    return c.item == 0 ? b.u_start : s.item_u[b.first + c.item];
}

MatcherChoice choose_matcher(const StreamModel& s, size_t sample_tokens) {
    MatcherChoice best;
    // Stored blocks have no parse to predict: a stream of only those needs no matcher.
    bool compressed = false;
    for (const auto& b : s.blocks)
        compressed = compressed || b.header.type != BlockType::Stored;
    if (!compressed) return best;
    best.mispredicted = UINT64_MAX;
    const size_t n = std::min(sample_tokens, s.items.size());
    const uint64_t u_end = n < s.items.size() ? s.item_u[n] : s.u.size();
    for (int level = 1; level <= 9; ++level) {
        MatcherParams p = matcher_params_for_level(level);
        Lz77Predictor pred(s.u.data(), static_cast<size_t>(u_end), 0, p);
        uint64_t miss = 0;
        for (size_t i = 0; i < n && miss < best.mispredicted; ++i) {
            if (pred.predict() != s.items[i]) ++miss;
            pred.advance(s.items[i]);
        }
        if (miss < best.mispredicted) {
            best.mode = p.lazy ? MatcherMode::Lazy : MatcherMode::Greedy;
            best.params = p;
            best.mispredicted = miss;
        }
        if (miss == 0) break;
    }
    best.sampled = n;
    return best;
}

PieceDescription describe_piece(const StreamModel& s, const Cut& a, const Cut& b,
                                const MatcherChoice& matcher) {
    const uint64_t bit_a = cut_bit(s, a), bit_b = cut_bit(s, b);
    if (bit_a >= bit_b) throw Error(ErrorKind::Malformed, "deflate piece: empty or reversed cut");
    PieceDescription d;
    d.u_begin = cut_u(s, a);
    d.u_end = cut_u(s, b);
    d.lead_in = std::min<uint64_t>(kMaxLeadIn, d.u_begin);
    PieceHeader h;
    h.lead_bits = static_cast<unsigned>(bit_a % 8);
    h.lead_value = s.data[bit_a / 8] & ((1u << h.lead_bits) - 1);
    h.lead_in = d.lead_in;
    h.u_items = d.u_end - d.u_begin;
    h.mode = matcher.mode;
    h.params = matcher.params;
    write_piece_header(d.description, h);
    std::string& out = d.description;

    const uint8_t* u = s.u.data() + (d.u_begin - d.lead_in);
    const size_t u_size = static_cast<size_t>(d.u_end - (d.u_begin - d.lead_in));
    std::unique_ptr<Lz77Predictor> pred;
    if (h.mode != MatcherMode::None)
        pred = std::make_unique<Lz77Predictor>(u, u_size, static_cast<size_t>(d.lead_in), h.params);

    const size_t last = b.item == 0 ? b.block - 1 : b.block;
    put_varint(out, last - a.block + 1);
    for (size_t k = a.block; k <= last; ++k) {
        const auto& blk = s.blocks[k];
        const size_t from = k == a.block ? a.item : 0;
        const size_t to = k == b.block ? b.item : blk.count;
        const bool written = !(k == a.block && a.item > 0);
        const bool ends = to == blk.count;
        const BlockHeader& hd = blk.header;
        bool predicted = false;
        if (hd.type == BlockType::Dynamic && written && ends &&
            blk.count <= kMaxPredictedBlockTokens) {
            SymbolCounts counts;
            for (size_t i = blk.first; i < blk.first + blk.count; ++i) {
                const Token& t = s.items[i];
                if (t.length == 0) {
                    counts.litlen[s.u[s.item_u[i]]]++;
                } else {
                    counts.litlen[257 +
                                  (t.length == kLong258 ? 27 : length_symbol_index(t.length))]++;
                    counts.dist[distance_symbol(t.distance)]++;
                }
            }
            counts.litlen[kEndOfBlock]++;
            predicted = same_dynamic_header(predict_dynamic_header(counts), hd);
        }
        unsigned flags = (hd.final ? 1u : 0u) | static_cast<unsigned>(hd.type) << 1 |
                         (written ? 8u : 0u) | (predicted ? 16u : 0u) | (ends ? 32u : 0u);
        put_varint(out, flags);
        if (hd.type == BlockType::Dynamic && !predicted) {
            put_varint(out, hd.litlen_count - 257u);
            put_varint(out, hd.dist_count - 1u);
            put_varint(out, hd.clen_count - 4u);
            out.append(reinterpret_cast<const char*>(hd.clen_lengths), hd.clen_count);
            put_varint(out, hd.clen_symbols.size());
            for (size_t i = 0; i < hd.clen_symbols.size(); ++i) {
                put_varint(out, hd.clen_symbols[i]);
                if (hd.clen_symbols[i] >= 16) put_varint(out, hd.clen_extra[i]);
            }
        }
        if (hd.type == BlockType::Stored && written) {
            put_varint(out, hd.pad_value);
            put_varint(out, hd.stored_length);
        }
        put_varint(out, to - from);
        if (hd.type == BlockType::Stored) {
            if (pred)
                for (size_t i = from; i < to; ++i)
                    pred->advance_hinted(Token{});
            continue;
        }
        std::string corrections;
        uint64_t count = 0, gap = 0;
        for (size_t i = blk.first + from; i < blk.first + to; ++i) {
            const Token& t = s.items[i];
            if (pred && pred->predict() == t) {
                ++gap;
            } else {
                put_varint(corrections, gap);
                put_varint(corrections, t.length);
                if (t.length) put_varint(corrections, t.distance);
                gap = 0;
                ++count;
            }
            if (pred) pred->advance(t);
        }
        put_varint(out, count);
        out += corrections;
        d.corrections += count;
    }
    d.ends_stream = b.block >= s.blocks.size();
    if (d.ends_stream) put_varint(out, s.pad_value);
    return d;
}

} // namespace ota::deflate
