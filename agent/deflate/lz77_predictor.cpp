#include "agent/deflate/lz77_predictor.h"

#include "agent/common/error.h"

#include <algorithm>
#include <cstring>

namespace ota::deflate {

namespace {

constexpr unsigned kMinMatch = 3;
constexpr unsigned kMaxMatch = 258;
constexpr size_t kMinLookahead = kMaxMatch + kMinMatch + 1;
// A 3-byte match further back than this is not worth it (lazy matcher only).
constexpr size_t kTooFar = 4096;

size_t common_prefix(const uint8_t* a, const uint8_t* b, size_t max) {
    size_t n = 0;
    while (n + 8 <= max) {
        uint64_t x, y;
        std::memcpy(&x, a + n, 8);
        std::memcpy(&y, b + n, 8);
        if (x != y) return n + static_cast<size_t>(__builtin_ctzll(x ^ y) / 8);
        n += 8;
    }
    while (n < max && a[n] == b[n])
        ++n;
    return n;
}

} // namespace

MatcherParams matcher_params_for_level(int level) {
    // good, lazy, nice, chain: the configuration table zlib and gzip share.
    static const uint16_t table[10][4] = {
        {0, 0, 0, 0},         {4, 4, 8, 4},        {4, 5, 16, 8},     {4, 6, 32, 32},
        {4, 4, 16, 16},       {8, 16, 32, 32},     {8, 16, 128, 128}, {8, 32, 128, 256},
        {32, 128, 258, 1024}, {32, 258, 258, 4096}};
    if (level < 1 || level > 9) throw Error(ErrorKind::Config, "deflate level must be 1-9");
    MatcherParams p;
    p.lazy = level >= 4;
    p.good = table[level][0];
    p.lazy_len = table[level][1];
    p.nice = table[level][2];
    p.chain = table[level][3];
    return p;
}

Lz77Predictor::Lz77Predictor(const uint8_t* data, size_t size, size_t start,
                             const MatcherParams& params)
    : data_(data), size_(size), params_(params), pos_(start) {
    if (params.window_bits < 8 || params.window_bits > 15 || params.hash_bits < 8 ||
        params.hash_bits > 16 || params.chain == 0)
        throw Error(ErrorKind::Malformed, "deflate matcher parameters out of range");
    if (size > UINT32_MAX || start > size)
        throw Error(ErrorKind::Malformed, "deflate matcher input too large");
    const size_t wsize = size_t{1} << params.window_bits;
    wmask_ = wsize - 1;
    max_dist_ = wsize - kMinLookahead;
    hash_mask_ = (uint32_t{1} << params.hash_bits) - 1;
    hash_shift_ = (params.hash_bits + kMinMatch - 1) / kMinMatch;
    head_.assign(size_t{1} << params.hash_bits, 0);
    prev_.assign(wsize, 0);
    const size_t warm = start > wsize ? start - wsize : 0;
    inserted_ = warm;
    for (size_t p = warm; p < start; ++p)
        insert(p);
    state_.at = start;
}

void Lz77Predictor::insert(size_t p) {
    // zlib inserts only positions with a whole 3-byte string ahead (lookahead >= MIN_MATCH).
    if (p + kMinMatch > size_) return;
    const uint32_t h =
        ((((uint32_t{data_[p]} << hash_shift_) ^ data_[p + 1]) << hash_shift_) ^ data_[p + 2]) &
        hash_mask_;
    prev_[p & wmask_] = head_[h];
    head_[h] = static_cast<uint32_t>(p);
    if (p >= inserted_) inserted_ = p + 1;
}

size_t Lz77Predictor::insert_for_search(size_t p) {
    if (p + kMinMatch > size_) return 0;
    // Entered already (the lazy matcher looked one position ahead before a prediction was
    // rejected): the chain it started is the head it had then.
    if (p < inserted_) return prev_[p & wmask_];
    const uint32_t h =
        ((((uint32_t{data_[p]} << hash_shift_) ^ data_[p + 1]) << hash_shift_) ^ data_[p + 2]) &
        hash_mask_;
    const size_t head = head_[h];
    insert(p);
    return head;
}

uint16_t Lz77Predictor::longest_match(size_t p, size_t cur, unsigned prev_length,
                                      size_t* match_pos) const {
    unsigned chain = params_.chain;
    if (prev_length >= params_.good) chain >>= 2;
    const size_t lookahead = size_ - p;
    const size_t nice = std::min<size_t>(params_.nice, lookahead);
    const size_t max_len = std::min<size_t>(kMaxMatch, lookahead);
    size_t best = prev_length;
    const size_t limit = p > max_dist_ ? p - max_dist_ : 0;
    do {
        const size_t len = common_prefix(data_ + cur, data_ + p, max_len);
        if (len > best) {
            *match_pos = cur;
            best = len;
            if (len >= nice) break;
        }
        cur = prev_[cur & wmask_];
    } while (cur > limit && --chain != 0);
    return static_cast<uint16_t>(std::min(best, lookahead));
}

Token Lz77Predictor::run_lazy() {
    State s = state_;
    for (;;) {
        if (s.at >= size_) {
            // Only a pending literal can remain (a pending match was emitted before reaching here).
            next_ = s;
            next_.pending = false;
            return Token{};
        }
        const size_t head = insert_for_search(s.at);
        const unsigned prev_length = s.pending ? s.length : kMinMatch - 1;
        const size_t prev_pos = s.match_pos;
        unsigned length = kMinMatch - 1;
        size_t match_pos = prev_pos;
        if (head != 0 && prev_length < params_.lazy_len && s.at - head <= max_dist_) {
            length = longest_match(s.at, head, prev_length, &match_pos);
            if (length == kMinMatch && s.at - match_pos > kTooFar) length = kMinMatch - 1;
        }
        if (s.pending && prev_length >= kMinMatch && length <= prev_length) {
            // The match at at - 1 is kept; every position it covers goes into the chains (when
            // advance() accepts it: a rejected prediction must not insert positions ahead).
            const size_t start = s.at - 1;
            next_.at = start + prev_length;
            next_.pending = false;
            next_.length = kMinMatch - 1;
            next_.match_pos = match_pos;
            return Token{static_cast<uint16_t>(prev_length),
                         static_cast<uint16_t>(start - prev_pos)};
        }
        if (s.pending) {
            next_.at = s.at + 1;
            next_.pending = true;
            next_.length = static_cast<uint16_t>(length);
            next_.match_pos = match_pos;
            return Token{};
        }
        s.pending = true;
        s.length = static_cast<uint16_t>(length);
        s.match_pos = match_pos;
        s.at++;
    }
}

Token Lz77Predictor::run_greedy() {
    const size_t at = state_.at;
    const size_t head = insert_for_search(at);
    size_t match_pos = 0;
    unsigned length = 0;
    if (head != 0 && at - head <= max_dist_)
        length = longest_match(at, head, kMinMatch - 1, &match_pos);
    Token t;
    if (length >= kMinMatch)
        t = Token{static_cast<uint16_t>(length), static_cast<uint16_t>(at - match_pos)};
    next_.at = at + (t.length ? t.length : 1);
    return t;
}

Token Lz77Predictor::predict() {
    if (!predicted_valid_) {
        predicted_ = params_.lazy ? run_lazy() : run_greedy();
        predicted_valid_ = true;
    }
    return predicted_;
}

void Lz77Predictor::follow(const Token& t) {
    const size_t len = token_span(t);
    if (params_.lazy) {
        // As after a match the matcher made: every covered position is in the chains and the
        // lazy evaluation starts afresh after the token.
        for (size_t q = inserted_; q < pos_ + len; ++q)
            insert(q);
        state_ = State{};
        state_.at = pos_ + len;
        return;
    }
    // Greedy: the token's first position is in the chains (predict() inserted it); the rest of a
    // match only when it is short and not at the very end, as zlib does.
    if (t.length && len <= params_.lazy_len && size_ - pos_ - len >= kMinMatch)
        for (size_t q = pos_ + 1; q < pos_ + len; ++q)
            insert(q);
    state_.at = pos_ + len;
}

void Lz77Predictor::follow_entering(const Token& t) {
    if (!params_.lazy) insert_for_search(pos_);
    follow(t);
}

void Lz77Predictor::advance(const Token& actual) {
    const Token predicted = predict();
    if (actual == predicted && params_.lazy) {
        for (size_t q = inserted_; q < next_.at; ++q)
            insert(q);
        state_ = next_;
    } else {
        follow(actual);
    }
    pos_ += token_span(actual);
    predicted_valid_ = false;
}

} // namespace ota::deflate
