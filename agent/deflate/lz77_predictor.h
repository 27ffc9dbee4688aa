// Predicts the LZ77 parse that zlib's and GNU gzip's deflate produce (the same greedy / lazy
// hash-chain matcher, parameters by compression level), so a description of a deflate stream can
// carry only where the real parse differs. Our own code: the apply side must predict exactly what
// the encoder predicted, whatever zlib the device has.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ota::deflate {

struct MatcherParams {
    bool lazy = true;       // lazy evaluation (levels 4-9) or greedy (1-3)
    uint16_t good = 8;      // a previous match this long quarters the chain search
    uint16_t lazy_len = 16; // no search after a match this long (greedy: longest match whose
                            // positions are all inserted into the hash chains)
    uint16_t nice = 128;    // stop searching at a match this long
    uint16_t chain = 128;   // hash chain entries searched at most
    uint8_t hash_bits = 15; // zlib's memLevel + 7
    uint8_t window_bits = 15;
};

// zlib's / gzip's parameters of compression levels 1-9.
MatcherParams matcher_params_for_level(int level);

struct Token {
    // 0: a literal (the byte at the token's position); 3-258: a match; 259: a match of 258 coded
    // with symbol 284 and extra bits 31 (never predicted).
    uint16_t length = 0;
    uint16_t distance = 0; // for a match
    bool operator==(const Token& o) const { return length == o.length && distance == o.distance; }
    bool operator!=(const Token& o) const { return !(*this == o); }
};

// Bytes a token produces.
inline size_t token_span(const Token& t) {
    return t.length == 0 ? 1 : t.length > 258 ? 258 : t.length;
}

// Walks data[0, size) from `start` token by token. `data` must hold the window before start
// (data[start - 32 KiB, start) when start > 0: those positions are entered into the hash chains
// first) and everything up to size.
class Lz77Predictor {
public:
    Lz77Predictor(const uint8_t* data, size_t size, size_t start, const MatcherParams& params);

    // What the matcher would emit at the current position.
    Token predict();
    // Moves past `actual` (the real token here; the caller checked it fits in the data); when it
    // is not the prediction the matcher restarts its lazy evaluation after it, as after a match
    // it made itself.
    void advance(const Token& actual);
    // Moves past `actual` without asking the matcher (its prediction came from elsewhere).
    void advance_hinted(const Token& actual) {
        follow_entering(actual);
        pos_ += token_span(actual);
        predicted_valid_ = false;
    }
    size_t position() const { return pos_; }

private:
    // The matcher's state between two of its steps (zlib's strstart, match_available,
    // match_length, match_start).
    struct State {
        size_t at = 0;
        bool pending = false; // lazy: a match or literal at at - 1 still to be decided
        uint16_t length = 2;  // match found at at - 1 (when pending)
        size_t match_pos = 0;
    };
    void insert(size_t p);
    // Enters position p into the chains (if it has a whole string ahead); returns the previous
    // position with the same hash, where a search from p starts (0: none).
    size_t insert_for_search(size_t p);
    uint16_t longest_match(size_t p, size_t head, unsigned prev_length, size_t* match_pos) const;
    // Runs the matcher from state_ until it emits a token; next_ is the state after it.
    Token run_lazy();
    Token run_greedy();
    // The state after the real token `t` at pos_, when the matcher did not predict it.
    void follow(const Token& t);
    void follow_entering(const Token& t);

    const uint8_t* data_;
    size_t size_;
    MatcherParams params_;
    size_t wmask_, max_dist_;
    uint32_t hash_mask_;
    unsigned hash_shift_;
    std::vector<uint32_t> head_; // most recent position per hash (0: none, as in zlib)
    std::vector<uint32_t> prev_; // previous position of the same hash, per position mod window
    size_t pos_;                 // next position a token starts at
    size_t inserted_ = 0;        // lazy: positions below this are in the chains
    State state_, next_;
    Token predicted_{};
    bool predicted_valid_ = false;
};

} // namespace ota::deflate
