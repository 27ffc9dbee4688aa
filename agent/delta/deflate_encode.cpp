#include "agent/delta/deflate_encode.h"

#include "agent/common/error.h"
#include "agent/deflate/stream_locator.h"
#include "agent/deflate/varint.h"
#include "agent/delta/deflate_diff_format.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_choice.h"
#include "agent/delta/each_index.h"
#include "agent/delta/memory_source.h"
#include "agent/delta/zstd_frame_locator.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <type_traits>

namespace ota::delta {

namespace {

using deflate::Cut;
using deflate::StreamModel;

// Runs of streams closer than this are one region (zip members and their local headers).
constexpr uint64_t kMaxRawGap = 4096;
// Decompressed bytes a piece needs at least to be worth its own op start (its lead-in is 32 KiB).
constexpr uint64_t kMinPieceU = 64u << 10;
// Regions of fewer compressed bytes stay in the plain ops: an op of their own costs more header
// than describing them saves.
constexpr uint64_t kMinRegion = 16u << 10;
// Streams decompressing to more than this are left to the plain ops.
constexpr uint64_t kMaxStreamU = 512ull << 20;

// An op that makes zstd frames again also holds a compression context (2.8 MiB at level 15 for
// 128 KiB blocks): it takes fewer decompressed bytes, so the applier stays within its memory.
constexpr uint64_t kMaxZstdOpU = 1ull << 20;

// Old streams decompressing to more than this in total are paired by name only.
constexpr uint64_t kMaxOldStreamsU = 1ull << 30;

uint64_t bytes_hash(const uint8_t* p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// Runs of one byte value (zero padding) are found everywhere: useless to align or pair by.
bool uniform(const uint8_t* p, uint64_t n) {
    for (uint64_t i = 1; i < n; ++i)
        if (p[i] != p[0]) return false;
    return true;
}

// The decompressed bytes of a raw deflate stream, exactly as the applier gets them (zlib).
std::optional<std::vector<uint8_t>> inflate_all(const uint8_t* data, uint64_t size,
                                                uint64_t u_size) {
    std::vector<uint8_t> out(static_cast<size_t>(u_size));
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) return std::nullopt;
    z.next_in = const_cast<Bytef*>(data);
    z.avail_in = static_cast<uInt>(std::min<uint64_t>(size, UINT32_MAX));
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    const bool ok = rc == Z_STREAM_END && z.total_out == u_size;
    inflateEnd(&z);
    if (!ok) return std::nullopt;
    return out;
}

// Where the bytes of a new stream sit in its old counterpart: 32-byte strings of the old bytes
// at every 32nd position, looked up from sampled positions of the new bytes.
class Aligner {
public:
    explicit Aligner(const std::vector<uint8_t>& old) : old_(old) {
        for (uint64_t p = 0; p + kKey <= old.size(); p += kStride)
            if (!uniform(old.data() + p, kKey))
                keys_.push_back({bytes_hash(old.data() + p, kKey), p});
        std::sort(keys_.begin(), keys_.end());
    }

    // The (old position - new position) that explains new[begin, end) best: the offsets of
    // sampled strings found in the old bytes, and "not moved", each scored by how many sampled
    // strings of the range sit at that offset in the old bytes. (A median of the offsets alone
    // goes astray where most of the range is zeros or repeats found anywhere.)
    int64_t offset(const std::vector<uint8_t>& nw, uint64_t begin, uint64_t end) const {
        std::map<int64_t, unsigned> votes;
        for (uint64_t q = begin; q + kStride + kKey <= end; q += 16 * kStride) {
            for (uint64_t j = q; j < q + kStride; ++j) {
                if (uniform(nw.data() + j, kKey)) continue;
                const uint64_t h = bytes_hash(nw.data() + j, kKey);
                auto it =
                    std::lower_bound(keys_.begin(), keys_.end(), std::make_pair(h, uint64_t{0}));
                if (it != keys_.end() && it->first == h &&
                    std::memcmp(old_.data() + it->second, nw.data() + j, kKey) == 0) {
                    votes[static_cast<int64_t>(it->second) - static_cast<int64_t>(j)]++;
                    break;
                }
            }
        }
        std::vector<std::pair<unsigned, int64_t>> candidates;
        for (const auto& [off, n] : votes)
            candidates.push_back({n, off});
        std::sort(candidates.rbegin(), candidates.rend());
        candidates.resize(std::min<size_t>(candidates.size(), 4));
        candidates.push_back({0, 0});
        int64_t best = 0;
        uint64_t best_score = 0;
        for (const auto& c : candidates) {
            uint64_t score = 0;
            for (uint64_t q = begin; q + kKey <= end; q += 1024) {
                const int64_t o = static_cast<int64_t>(q) + c.second;
                if (o >= 0 && static_cast<uint64_t>(o) + kKey <= old_.size() &&
                    std::memcmp(old_.data() + o, nw.data() + q, kKey) == 0)
                    ++score;
            }
            if (score > best_score) {
                best_score = score;
                best = c.second;
            }
        }
        return best;
    }

private:
    static constexpr uint64_t kKey = 32, kStride = 32;
    const std::vector<uint8_t>& old_;
    std::vector<std::pair<uint64_t, uint64_t>> keys_;
};

struct NewStream {
    deflate::LocatedStream located;
    std::optional<StreamModel> model;
    deflate::MatcherChoice matcher;
    int pair = -1;          // index into old streams
    bool unchanged = false; // the same compressed bytes are in the old image
    bool zstd = false;      // a zstd frame (else a deflate stream)
    int zstd_level = 0;     // the level that makes the frame again exactly; 0: none
    std::vector<uint8_t> zstd_u;

    // Described bit-exactly, so an op can rebuild it from its decompressed bytes.
    bool described() const { return zstd ? zstd_level > 0 : model.has_value(); }
    const std::vector<uint8_t>& u() const { return zstd ? zstd_u : model->u; }
};

struct OldStream {
    deflate::LocatedStream located;
    bool zstd = false;
    std::vector<uint8_t> u;
    std::unique_ptr<Aligner> aligner;
};

// The decompressed bytes of a located deflate stream or zstd frame.
std::optional<std::vector<uint8_t>> decompress(const uint8_t* image,
                                               const deflate::LocatedStream& s, bool zstd) {
    if (zstd) return decompress_zstd_frame(image, {s.offset, s.length, s.u_size});
    return inflate_all(image + s.offset, s.length, s.u_size);
}

} // namespace

struct DeflateEncoder::Impl {
    const uint8_t* old;
    uint64_t old_size;
    const uint8_t* nw;
    uint64_t new_size;
    DeltaOptions options;
    std::vector<NewStream> news;
    std::vector<OldStream> olds;
    std::vector<DeflateOp> ops;
    DeflateSummary summary;

    void pair_streams();
    void find_zstd_levels();
    void plan();
    EncodedOp encode(size_t i) const;
    EncodedOp encode_op(const DeflateOp& op) const;
};

void DeflateEncoder::Impl::pair_streams() {
    // Streams whose compressed bytes are in the old image as they are: the plain ops copy them.
    std::map<std::pair<uint64_t, uint64_t>, std::vector<size_t>> old_by_hash;
    for (size_t j = 0; j < olds.size(); ++j)
        old_by_hash[{olds[j].located.length,
                     bytes_hash(old + olds[j].located.offset, olds[j].located.length)}]
            .push_back(j);
    for (auto& s : news) {
        auto it = old_by_hash.find(
            {s.located.length, bytes_hash(nw + s.located.offset, s.located.length)});
        if (it == old_by_hash.end()) continue;
        for (size_t j : it->second)
            if (std::memcmp(old + olds[j].located.offset, nw + s.located.offset,
                            s.located.length) == 0)
                s.unchanged = true;
    }
    // The same member name (zip, gzip FNAME), when it is unique in the old image.
    std::map<std::string, int> old_by_name;
    for (size_t j = 0; j < olds.size(); ++j) {
        const std::string& n = olds[j].located.name;
        if (n.empty()) continue;
        auto [it, inserted] = old_by_name.emplace(n, static_cast<int>(j));
        if (!inserted) it->second = -1; // ambiguous
    }
    for (auto& s : news) {
        if (s.unchanged || s.located.name.empty()) continue;
        auto it = old_by_name.find(s.located.name);
        if (it != old_by_name.end() && it->second >= 0) s.pair = it->second;
    }
    // Else the old stream most of whose sampled strings the new one's decompressed bytes contain.
    uint64_t total = 0;
    for (auto& o : olds)
        total += o.located.u_size;
    if (total > kMaxOldStreamsU) return;
    std::vector<std::pair<uint64_t, uint32_t>> keys; // (hash of 32 bytes, old stream)
    for (size_t j = 0; j < olds.size(); ++j) {
        auto u = decompress(old, olds[j].located, olds[j].zstd);
        if (!u) continue;
        // Only the keys are kept: the old streams a new one is paired with are decompressed
        // again later, so the others never sit in memory all at once.
        for (uint64_t p = 0; p + 32 <= u->size(); p += 64)
            if (!uniform(u->data() + p, 32))
                keys.push_back({bytes_hash(u->data() + p, 32), static_cast<uint32_t>(j)});
    }
    std::sort(keys.begin(), keys.end());
    for (auto& s : news) {
        if (s.unchanged || s.pair >= 0) continue;
        auto u = decompress(nw, s.located, s.zstd);
        if (!u || u->size() < 64) continue;
        std::map<uint32_t, unsigned> votes;
        unsigned samples = 0;
        const uint64_t step = std::max<uint64_t>(64, u->size() / 64);
        for (uint64_t q = 0; q + 64 + 32 <= u->size(); q += step, ++samples)
            for (uint64_t p = q; p < q + 64; ++p) {
                if (uniform(u->data() + p, 32)) continue;
                const uint64_t h = bytes_hash(u->data() + p, 32);
                auto it =
                    std::lower_bound(keys.begin(), keys.end(), std::make_pair(h, uint32_t{0}));
                if (it != keys.end() && it->first == h) {
                    votes[it->second]++;
                    break;
                }
            }
        unsigned best = 0;
        for (const auto& [j, n] : votes)
            if (n > best) {
                best = n;
                s.pair = static_cast<int>(j);
            }
        if (best < std::max(2u, samples / 5)) s.pair = -1; // too little in common
    }
}

namespace {

// Zstd frames of an image joined to its deflate streams, in image order; a frame overlapping a
// deflate stream (compressed bytes that look like both) is left out.
template <typename Stream>
void add_zstd_frames(const uint8_t* image, uint64_t size, std::vector<Stream>& streams) {
    std::vector<Stream> merged;
    size_t k = 0;
    uint64_t end = 0; // of the last stream kept
    auto take_deflate_until = [&](uint64_t offset) {
        while (k < streams.size() && streams[k].located.offset < offset) {
            end = streams[k].located.offset + streams[k].located.length;
            merged.push_back(std::move(streams[k++]));
        }
    };
    for (const LocatedZstdFrame& f : locate_zstd_frames(image, size)) {
        take_deflate_until(f.offset);
        if (f.offset < end) continue;
        if (k < streams.size() && streams[k].located.offset < f.offset + f.length) continue;
        Stream s{};
        s.located.offset = f.offset;
        s.located.length = f.length;
        s.located.u_size = f.u_size;
        s.located.wrapper_offset = f.offset;
        s.zstd = true;
        if constexpr (std::is_same_v<Stream, NewStream>) s.pair = -1;
        end = f.offset + f.length;
        merged.push_back(std::move(s));
    }
    take_deflate_until(UINT64_MAX);
    streams = std::move(merged);
}

} // namespace

// A paired, changed zstd frame is described by the level that makes it again exactly. The
// image's frames are usually all made at one level: found once (trying every level on the first
// few frames), then tried first on the others, which run on all cores.
void DeflateEncoder::Impl::find_zstd_levels() {
    std::vector<size_t> frames;
    for (size_t k = 0; k < news.size(); ++k)
        if (news[k].zstd && news[k].pair >= 0 && !news[k].unchanged) frames.push_back(k);
    auto find = [&](size_t k, int hint, bool thorough) {
        NewStream& s = news[k];
        auto u = decompress(nw, s.located, true);
        if (u)
            s.zstd_level =
                find_zstd_level(nw + s.located.offset, s.located.length, *u, hint, thorough);
        if (s.zstd_level > 0)
            s.zstd_u = std::move(*u);
        else
            s.pair = -1; // left to the plain ops
    };
    constexpr size_t kThoroughFrames = 4;
    int hint = 0;
    size_t i = 0;
    for (; i < frames.size() && hint == 0 && i < kThoroughFrames; ++i) {
        find(frames[i], 0, true);
        hint = news[frames[i]].zstd_level;
    }
    const unsigned threads = std::max(
        1u, options.threads ? options.threads : std::min(std::thread::hardware_concurrency(), 16u));
    const size_t first = i;
    each_index(frames.size() - first, threads,
               [&](size_t j) { find(frames[first + j], hint, false); });
}

void DeflateEncoder::Impl::plan() {
    const uint64_t u_budget = options.deflate_op_u;
    const uint64_t out_budget = options.op_size;
    size_t g = 0;
    while (g < news.size()) {
        // A region: changed streams with small gaps between them, at least one with an old
        // counterpart. Unchanged streams are left to the plain ops (they copy them).
        if (news[g].unchanged) {
            ++g;
            continue;
        }
        size_t h = g + 1;
        while (h < news.size() && !news[h].unchanged &&
               news[h].located.offset - (news[h - 1].located.offset + news[h - 1].located.length) <=
                   kMaxRawGap)
            ++h;
        bool any_pair = false;
        for (size_t k = g; k < h; ++k)
            any_pair = any_pair || (news[k].pair >= 0 && news[k].described());
        const uint64_t region_bytes =
            news[h - 1].located.offset + news[h - 1].located.length - news[g].located.offset;
        if (!any_pair || region_bytes < kMinRegion) {
            g = h;
            continue;
        }
        DeflateOp op;
        op.dst_offset = news[g].located.offset;
        uint64_t op_u = 0;
        auto close = [&](uint64_t end) {
            op.dst_length = end - op.dst_offset;
            ops.push_back(op);
            op = DeflateOp{};
            op.dst_offset = end;
            op_u = 0;
        };
        for (size_t k = g; k < h; ++k) {
            const NewStream& ns = news[k];
            const uint64_t start = ns.located.offset;
            if (k > g) {
                const uint64_t prev_end = news[k - 1].located.offset + news[k - 1].located.length;
                if (start > prev_end) {
                    if (op_u + (start - prev_end) > u_budget && !op.segments.empty())
                        close(prev_end);
                    op.segments.push_back(
                        {DeflateOp::Segment::Raw, prev_end, start - prev_end, 0, {}, {}});
                    op_u += start - prev_end;
                }
            }
            if (!ns.described()) { // carried as raw bytes
                op.segments.push_back(
                    {DeflateOp::Segment::Raw, start, ns.located.length, 0, {}, {}});
                op_u += ns.located.length;
                continue;
            }
            if (ns.zstd) { // a whole frame: ops end between frames
                const uint64_t end = start + ns.located.length;
                if (!op.segments.empty() &&
                    (op_u + ns.zstd_u.size() > std::min(u_budget, kMaxZstdOpU) ||
                     end - op.dst_offset > out_budget))
                    close(start);
                op.segments.push_back({DeflateOp::Segment::ZstdFrame, 0, 0, k, {}, {}});
                op_u += ns.zstd_u.size();
                continue;
            }
            const StreamModel& m = *ns.model;
            const Cut end_cut{m.blocks.size(), 0};
            Cut cur{0, 0};
            while (cur.block < m.blocks.size()) {
                const uint64_t cur_u = deflate::cut_u(m, cur), cur_bit = deflate::cut_bit(m, cur);
                const uint64_t lead = std::min<uint64_t>(deflate::kMaxLeadIn, cur_u);
                const uint64_t out_used = start + cur_bit / 8 - op.dst_offset;
                const uint64_t u_room = op_u + lead < u_budget ? u_budget - op_u - lead : 0;
                const uint64_t out_room = out_used < out_budget ? out_budget - out_used : 0;
                auto fits = [&](const Cut& c) {
                    return deflate::cut_u(m, c) - cur_u <= u_room &&
                           (deflate::cut_bit(m, c) - cur_bit) / 8 <= out_room;
                };
                // The farthest block boundary (or the stream's end) that fits.
                size_t lo = cur.block + 1, hi = m.blocks.size() + 1;
                while (lo < hi) {
                    const size_t mid = lo + (hi - lo) / 2;
                    if (fits(mid == m.blocks.size() ? end_cut : Cut{mid, 0}))
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                Cut next{lo - 1, 0};
                if (lo - 1 == cur.block) {
                    // No whole block fits: a cut inside the current block.
                    const auto& blk = m.blocks[cur.block];
                    size_t a = cur.item + 1, b = blk.count;
                    while (a < b) {
                        const size_t mid = a + (b - a) / 2;
                        if (fits(Cut{cur.block, mid}))
                            a = mid + 1;
                        else
                            b = mid;
                    }
                    next = Cut{cur.block, a - 1};
                    if (next.item == cur.item) {
                        if (!op.segments.empty()) { // (only at the stream's start)
                            close(start + cur_bit / 8);
                            continue;
                        }
                        // Nothing fits an empty op: take one block or one token anyway.
                        next = cur.item + 1 < blk.count ? Cut{cur.block, cur.item + 1}
                                                        : Cut{cur.block + 1, 0};
                        if (next.block == m.blocks.size()) next = end_cut;
                    }
                }
                // An op must end on a later byte than it starts.
                while (next.block < m.blocks.size() &&
                       start + deflate::cut_bit(m, next) / 8 <= op.dst_offset)
                    next = next.block + 1 < m.blocks.size() ? Cut{next.block + 1, 0} : end_cut;
                op.segments.push_back({DeflateOp::Segment::Piece, 0, 0, k, cur, next});
                op_u += lead + (deflate::cut_u(m, next) - cur_u);
                cur = next;
                if (cur.block < m.blocks.size()) {
                    close(start + deflate::cut_bit(m, cur) / 8);
                } else if (op_u + kMinPieceU > u_budget) {
                    close(start + ns.located.length);
                }
            }
        }
        const uint64_t region_end = news[h - 1].located.offset + news[h - 1].located.length;
        if (!op.segments.empty()) close(region_end);
        g = h;
    }
}

EncodedOp DeflateEncoder::Impl::encode(size_t i) const {
    try {
        return encode_op(ops[i]);
    } catch (const Error&) {
        return EncodedOp{}; // e.g. a piece the descriptions cannot carry: plain ops instead
    }
}

EncodedOp DeflateEncoder::Impl::encode_op(const DeflateOp& op) const {
    EncodedOp result;
    result.type = bundle::OpType::Diff;
    result.dst_offset = op.dst_offset;
    result.dst_length = op.dst_length;
    result.deflate = true;

    // The op's decompressed bytes and its plan.
    std::string plan;
    deflate::put_varint(plan, op.segments.size());
    std::vector<uint8_t> u;
    struct Piece {
        size_t stream;
        uint64_t u_begin, u_end; // in the new stream, lead-in included
        uint64_t op_u;           // where it starts in the op's bytes
    };
    std::vector<Piece> pieces;
    for (const auto& seg : op.segments) {
        if (seg.kind == DeflateOp::Segment::Raw) {
            deflate::put_varint(plan, static_cast<uint64_t>(format::SegmentKind::Raw));
            deflate::put_varint(plan, seg.raw_length);
            u.insert(u.end(), nw + seg.raw_offset, nw + seg.raw_offset + seg.raw_length);
            continue;
        }
        const NewStream& ns = news[seg.stream];
        if (seg.kind == DeflateOp::Segment::ZstdFrame) {
            deflate::put_varint(plan, static_cast<uint64_t>(format::SegmentKind::ZstdFrame));
            deflate::put_varint(plan, static_cast<uint64_t>(ns.zstd_level));
            deflate::put_varint(plan, ZSTD_versionNumber());
            deflate::put_varint(plan, ns.zstd_u.size());
            pieces.push_back({seg.stream, 0, ns.zstd_u.size(), u.size()});
            u.insert(u.end(), ns.zstd_u.begin(), ns.zstd_u.end());
            continue;
        }
        const auto d = deflate::describe_piece(*ns.model, seg.a, seg.b, ns.matcher);
        deflate::put_varint(plan, static_cast<uint64_t>(format::SegmentKind::Piece));
        plan += d.description;
        pieces.push_back({seg.stream, d.u_begin - d.lead_in, d.u_end, u.size()});
        u.insert(u.end(), ns.model->u.begin() + static_cast<ptrdiff_t>(d.u_begin - d.lead_in),
                 ns.model->u.begin() + static_cast<ptrdiff_t>(d.u_end));
    }
    if (u.size() > format::kMaxDeflateU) return EncodedOp{};

    // Sources: old decompressed bytes around each piece. One paired piece: a window at its own
    // position in the old stream (so the ARM64 filter sees the same coordinates on both sides);
    // several: the old streams one after the other.
    struct Src {
        size_t old;
        uint64_t begin, end;
    };
    std::vector<Src> srcs;
    uint64_t origin = 0, new_offset = 0;
    std::vector<const Piece*> paired;
    for (const Piece& p : pieces)
        if (news[p.stream].pair >= 0) paired.push_back(&p);
    uint64_t budget = options.deflate_source;
    for (const Piece* p : paired) {
        const OldStream& os = olds[static_cast<size_t>(news[p->stream].pair)];
        const uint64_t share = paired.size() == 1 ? budget : std::max<uint64_t>(budget / 2, 1);
        if (budget == 0) break;
        const uint64_t want = std::min<uint64_t>(share, os.u.size());
        if (want == 0) continue;
        uint64_t x = 0;
        if (want < os.u.size()) {
            const int64_t off = os.aligner->offset(news[p->stream].u(), p->u_begin, p->u_end);
            const int64_t centre = static_cast<int64_t>((p->u_begin + p->u_end) / 2) + off -
                                   static_cast<int64_t>(want / 2);
            x = static_cast<uint64_t>(
                std::clamp<int64_t>(centre, 0, static_cast<int64_t>(os.u.size() - want)));
        }
        if (paired.size() == 1) x &= ~uint64_t{4095};
        const uint64_t y = std::min<uint64_t>(x + want, os.u.size());
        srcs.push_back({static_cast<size_t>(news[p->stream].pair), x, y});
        budget -= y - x;
        if (paired.size() == 1) {
            origin = x;
            new_offset = p->u_begin - p->op_u; // op byte 0 in the new stream's coordinates
            if (p->op_u > p->u_begin) new_offset = 0;
        }
    }
    if (srcs.empty()) return EncodedOp{}; // nothing to diff against: the plain ops do as well
    std::vector<uint8_t> src;
    for (const Src& s : srcs)
        src.insert(src.end(), olds[s.old].u.begin() + static_cast<ptrdiff_t>(s.begin),
                   olds[s.old].u.begin() + static_cast<ptrdiff_t>(s.end));

    SuffixArray sa(src.data(), src.size());
    std::vector<uint8_t> filtered;
    std::unique_ptr<SuffixArray> filtered_sa;
    if (options.arm64_min_call_density > 0 && !src.empty() &&
        looks_like_arm64_code(src.data(), src.size(), options.arm64_min_call_density, origin)) {
        filtered = arm64_filtered_copy(src.data(), src.size(), origin);
        filtered_sa = std::make_unique<SuffixArray>(filtered.data(), filtered.size());
    }
    const EncodedDiff diff =
        best_diff(sa, filtered_sa.get(), u.data(), u.size(), new_offset, origin, options);
    if (diff.blob.empty()) return EncodedOp{};

    const std::string plan_z = zstd_compress(reinterpret_cast<const uint8_t*>(plan.data()),
                                             plan.size(), options.zstd_level);
    std::string& b = result.blob;
    b.assign(format::kMagicDeflate, sizeof(format::kMagicDeflate));
    deflate::put_varint(b, op.dst_length);
    deflate::put_varint(b, u.size());
    deflate::put_varint(b, origin);
    deflate::put_varint(b, srcs.size());
    for (const Src& s : srcs) {
        const auto& loc = olds[s.old].located;
        deflate::put_varint(b,
                            static_cast<uint64_t>(olds[s.old].zstd ? format::SourceKind::ZstdFrame
                                                                   : format::SourceKind::Stream));
        deflate::put_varint(b, loc.offset);
        deflate::put_varint(b, loc.length);
        deflate::put_varint(b, s.begin);
        deflate::put_varint(b, s.end);
        result.src_extents.push_back({loc.offset, loc.length});
    }
    deflate::put_varint(b, diff.blob.size());
    b += diff.blob;
    deflate::put_varint(b, plan.size());
    deflate::put_varint(b, plan_z.size());
    b += plan_z;
    result.src_extents = coalesce_extents(result.src_extents, options.max_extents);

    // Kept only if it rebuilds the op exactly, through the applier the agent runs.
    MemorySource image(0, old, static_cast<size_t>(old_size));
    std::vector<uint8_t> out(static_cast<size_t>(op.dst_length));
    apply_diff(reinterpret_cast<const uint8_t*>(b.data()), b.size(), image, result.src_extents,
               out.data(), out.size());
    if (std::memcmp(out.data(), nw + op.dst_offset, out.size()) != 0) return EncodedOp{};
    return result;
}

DeflateEncoder::DeflateEncoder(const uint8_t* old_image, uint64_t old_size,
                               const uint8_t* new_image, uint64_t new_size,
                               const DeltaOptions& options)
    : impl_(std::make_unique<Impl>()) {
    Impl& d = *impl_;
    d.old = old_image;
    d.old_size = old_size;
    d.nw = new_image;
    d.new_size = new_size;
    d.options = options;
    deflate::LocateOptions lo;
    lo.max_u_size = kMaxStreamU;
    for (auto& s : deflate::locate_deflate_streams(new_image, new_size, lo))
        d.news.push_back({s, std::nullopt, {}, -1, false, false, 0, {}});
    for (auto& s : deflate::locate_deflate_streams(old_image, old_size, lo))
        d.olds.push_back({s, false, {}, nullptr});
    if (options.zstd_frames) {
        add_zstd_frames(new_image, new_size, d.news);
        add_zstd_frames(old_image, old_size, d.olds);
    }
    d.summary.new_streams = d.news.size();
    d.summary.old_streams = d.olds.size();
    d.pair_streams();
    d.find_zstd_levels();
    std::vector<bool> needed(d.olds.size(), false);
    for (auto& s : d.news) {
        if (s.pair < 0) continue;
        if (s.zstd) {
            needed[static_cast<size_t>(s.pair)] = true;
            continue;
        }
        try {
            s.model = deflate::model_stream(new_image + s.located.offset,
                                            static_cast<size_t>(s.located.length), kMaxStreamU);
        } catch (const Error&) {
            s.pair = -1; // our parser refuses what zlib took: leave it to the plain ops
            continue;
        }
        s.matcher = deflate::choose_matcher(*s.model);
        needed[static_cast<size_t>(s.pair)] = true;
    }
    for (size_t j = 0; j < d.olds.size(); ++j) {
        auto& o = d.olds[j];
        if (!needed[j]) {
            std::vector<uint8_t>().swap(o.u);
            continue;
        }
        if (o.u.empty()) {
            auto u = decompress(old_image, o.located, o.zstd);
            if (!u) continue;
            o.u = std::move(*u);
        }
        o.aligner = std::make_unique<Aligner>(o.u);
    }
    for (auto& s : d.news) {
        if (s.pair >= 0 && !d.olds[static_cast<size_t>(s.pair)].aligner) s.pair = -1;
        if (s.zstd) d.summary.zstd_frames++;
        if (s.zstd && s.pair >= 0) d.summary.zstd_remade++;
        if (s.pair >= 0) {
            d.summary.paired++;
            d.summary.mispredicted += s.matcher.mispredicted;
            d.summary.tokens += s.matcher.sampled;
        }
    }
    // Streams we can describe but did not pair stay unmodelled unless they sit in a region with
    // a paired one (they are then carried as raw bytes of the op).
    d.plan();
}

DeflateEncoder::~DeflateEncoder() = default;

const std::vector<DeflateOp>& DeflateEncoder::ops() const {
    return impl_->ops;
}

EncodedOp DeflateEncoder::encode(size_t i) const {
    return impl_->encode(i);
}

const DeflateSummary& DeflateEncoder::summary() const {
    return impl_->summary;
}

} // namespace ota::delta
