#include "agent/deflate/tree_predictor.h"

#include "agent/deflate/deflate_tables.h"
#include "agent/deflate/huff.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace ota::deflate {

namespace {

// One Huffman tree as zlib builds it: leaves 0..elems-1, internal nodes after them.
class TreeBuilder {
public:
    // Returns the code lengths of leaves 0..elems-1 in `lengths`; the largest leaf with a code
    // (after zlib's rule that a tree has at least two codes) is returned.
    int build(const uint32_t* counts, int elems, int max_length, uint8_t* lengths) {
        const int nodes = 2 * elems + 1;
        freq_.assign(nodes, 0);
        depth_.assign(nodes, 0);
        dad_.assign(nodes, 0);
        len_.assign(nodes, 0);
        heap_.assign(nodes + 1, 0);
        heap_len_ = 0;
        heap_max_ = nodes;
        int max_code = -1;
        for (int n = 0; n < elems; ++n) {
            if (counts[n] != 0) {
                heap_[++heap_len_] = max_code = n;
                freq_[n] = counts[n];
            }
        }
        // At least two codes, so that every code is at least one bit long.
        while (heap_len_ < 2) {
            const int node = heap_[++heap_len_] = max_code < 2 ? ++max_code : 0;
            freq_[node] = 1;
            depth_[node] = 0;
        }
        for (int n = heap_len_ / 2; n >= 1; --n)
            down_heap(n);
        int node = elems;
        do {
            const int n = heap_[1];
            heap_[1] = heap_[heap_len_--];
            down_heap(1);
            const int m = heap_[1];
            heap_[--heap_max_] = n;
            heap_[--heap_max_] = m;
            freq_[node] = freq_[n] + freq_[m];
            depth_[node] = static_cast<uint8_t>(std::max(depth_[n], depth_[m]) + 1);
            dad_[n] = dad_[m] = node;
            heap_[1] = node++;
            down_heap(1);
        } while (heap_len_ >= 2);
        heap_[--heap_max_] = heap_[1];
        bit_lengths(max_code, max_length, nodes);
        for (int n = 0; n < elems; ++n)
            lengths[n] = n <= max_code ? static_cast<uint8_t>(len_[n]) : 0;
        return max_code;
    }

private:
    bool smaller(int n, int m) const {
        return freq_[n] < freq_[m] || (freq_[n] == freq_[m] && depth_[n] <= depth_[m]);
    }

    void down_heap(int k) {
        const int v = heap_[k];
        int j = k << 1;
        while (j <= heap_len_) {
            if (j < heap_len_ && smaller(heap_[j + 1], heap_[j])) ++j;
            if (smaller(v, heap_[j])) break;
            heap_[k] = heap_[j];
            k = j;
            j <<= 1;
        }
        heap_[k] = v;
    }

    // Depth of every leaf, limited to max_length the way zlib does it: overflowing leaves are
    // moved up and lengths are handed out again in order of frequency.
    void bit_lengths(int max_code, int max_length, int heap_size) {
        int bl_count[16] = {};
        len_[heap_[heap_max_]] = 0;
        int overflow = 0;
        for (int h = heap_max_ + 1; h < heap_size; ++h) {
            const int n = heap_[h];
            int bits = len_[dad_[n]] + 1;
            if (bits > max_length) {
                bits = max_length;
                ++overflow;
            }
            len_[n] = bits;
            if (n > max_code) continue; // internal node
            bl_count[bits]++;
        }
        if (overflow == 0) return;
        do {
            int bits = max_length - 1;
            while (bl_count[bits] == 0)
                --bits;
            bl_count[bits]--;
            bl_count[bits + 1] += 2;
            bl_count[max_length]--;
            overflow -= 2;
        } while (overflow > 0);
        int h = heap_size;
        for (int bits = max_length; bits != 0; --bits) {
            int n = bl_count[bits];
            while (n != 0) {
                const int m = heap_[--h];
                if (m > max_code) continue;
                len_[m] = bits;
                --n;
            }
        }
    }

    std::vector<uint32_t> freq_;
    std::vector<uint8_t> depth_;
    std::vector<int> dad_, len_, heap_;
    int heap_len_ = 0, heap_max_ = 0;
};

// zlib's run-length coding of code lengths[0..count): calls emit(symbol, extra) per code.
template <class Emit> void run_length_code(const uint8_t* lengths, int count, Emit&& emit) {
    int prevlen = -1, nextlen = lengths[0], run = 0;
    int max_run = nextlen == 0 ? 138 : 7, min_run = nextlen == 0 ? 3 : 4;
    for (int n = 0; n < count; ++n) {
        const int curlen = nextlen;
        nextlen = n + 1 < count ? lengths[n + 1] : -1;
        if (++run < max_run && curlen == nextlen) continue;
        if (run < min_run) {
            for (int i = 0; i < run; ++i)
                emit(curlen, 0);
        } else if (curlen != 0) {
            if (curlen != prevlen) {
                emit(curlen, 0);
                --run;
            }
            emit(16, run - 3);
        } else if (run <= 10) {
            emit(17, run - 3);
        } else {
            emit(18, run - 11);
        }
        run = 0;
        prevlen = curlen;
        if (nextlen == 0) {
            max_run = 138;
            min_run = 3;
        } else if (curlen == nextlen) {
            max_run = 6;
            min_run = 3;
        } else {
            max_run = 7;
            min_run = 4;
        }
    }
}

} // namespace

BlockHeader predict_dynamic_header(const SymbolCounts& counts) {
    TreeBuilder tb;
    BlockHeader h;
    h.type = BlockType::Dynamic;
    uint8_t ll[286] = {}, dl[30] = {};
    const int lmax = tb.build(counts.litlen, 286, 15, ll);
    const int dmax = tb.build(counts.dist, 30, 15, dl);
    h.litlen_count = static_cast<uint16_t>(lmax + 1);
    h.dist_count = static_cast<uint8_t>(dmax + 1);
    uint32_t clen_counts[19] = {};
    auto count_symbol = [&](int sym, int) { clen_counts[sym]++; };
    run_length_code(ll, h.litlen_count, count_symbol);
    run_length_code(dl, h.dist_count, count_symbol);
    uint8_t clen_by_symbol[19] = {};
    tb.build(clen_counts, 19, 7, clen_by_symbol);
    int last = 18;
    while (last > 3 && clen_by_symbol[kCodeLengthOrder[last]] == 0)
        --last;
    h.clen_count = static_cast<uint8_t>(last + 1);
    for (int i = 0; i < h.clen_count; ++i)
        h.clen_lengths[i] = clen_by_symbol[kCodeLengthOrder[i]];
    auto record = [&](int sym, int extra) {
        h.clen_symbols.push_back(static_cast<uint8_t>(sym));
        h.clen_extra.push_back(static_cast<uint8_t>(extra));
    };
    run_length_code(ll, h.litlen_count, record);
    run_length_code(dl, h.dist_count, record);
    derive_code_lengths(h);
    return h;
}

bool same_dynamic_header(const BlockHeader& a, const BlockHeader& b) {
    return a.type == BlockType::Dynamic && b.type == BlockType::Dynamic &&
           a.litlen_count == b.litlen_count && a.dist_count == b.dist_count &&
           a.clen_count == b.clen_count &&
           std::memcmp(a.clen_lengths, b.clen_lengths, a.clen_count) == 0 &&
           a.clen_symbols == b.clen_symbols && a.clen_extra == b.clen_extra;
}

} // namespace ota::deflate
