// bsdiff-class encoder: suffix-array matching with approximate (byte-wise difference) extension,
// written as separate control / diff / extra streams, each one zstd frame.
#include "agent/delta/diff_encode.h"

#include "agent/common/error.h"
#include "agent/delta/diff_format.h"

#include <divsufsort.h>
#include <divsufsort64.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace ota::delta {

namespace {

// Longer matches are found in pieces: this bounds the cost of one comparison in runs of zeros.
constexpr uint64_t kMaxCompare = 1u << 20;
// An exact run this long at the current alignment is taken as it is, without a search.
constexpr int64_t kMinAlignedRun = 32;

uint64_t match_length(const uint8_t* a, uint64_t alen, const uint8_t* b, uint64_t blen) {
    uint64_t n = std::min(alen, blen), i = 0;
    while (i + 8 <= n) {
        uint64_t x, y;
        std::memcpy(&x, a + i, 8);
        std::memcpy(&y, b + i, 8);
        if (x != y) return i + static_cast<uint64_t>(__builtin_ctzll(x ^ y) / 8);
        i += 8;
    }
    while (i < n && a[i] == b[i])
        ++i;
    return i;
}

template <typename Index>
uint64_t search(const Index* sa, const uint8_t* old, uint64_t n, const uint8_t* needle,
                uint64_t len, uint64_t* pos, uint64_t& compared) {
    if (n == 0 || len == 0) {
        *pos = 0;
        return 0;
    }
    len = std::min(len, kMaxCompare);
    // Binary search for the needle among the sorted suffixes. The suffixes between lo and hi
    // share at least min(lcp(lo), lcp(hi)) leading bytes with the needle, so each comparison
    // starts there instead of at byte 0: in long repeats (zeros, a file seen twice) a search
    // costs the match length once instead of once per step.
    auto suffix = [&](uint64_t i) { return static_cast<uint64_t>(sa[i]); };
    // Common prefix of suffix s and the needle, over the bytes memcmp would compare.
    auto lcp_from = [&](uint64_t s, uint64_t from) {
        const uint64_t m = match_length(old + s + from, std::min(n - s, len) - from, needle + from,
                                        std::min(n - s, len) - from);
        compared += m + 1;
        return from + m;
    };
    uint64_t lo = 0, hi = n - 1;
    uint64_t lcp_lo = lcp_from(suffix(lo), 0), lcp_hi = lcp_from(suffix(hi), 0);
    while (hi - lo >= 2) {
        const uint64_t mid = lo + (hi - lo) / 2;
        const uint64_t s = suffix(mid);
        const uint64_t m = lcp_from(s, std::min({lcp_lo, lcp_hi, std::min(n - s, len)}));
        // As memcmp(old + s, needle, min(n - s, len)) < 0 decides it.
        if (m < std::min(n - s, len) && old[s + m] < needle[m]) {
            lo = mid;
            lcp_lo = m;
        } else {
            hi = mid;
            lcp_hi = m;
        }
    }
    const uint64_t slo = suffix(lo), shi = suffix(hi);
    const uint64_t x = match_length(old + slo, n - slo, needle, len);
    const uint64_t y = match_length(old + shi, n - shi, needle, len);
    compared += x + y + 2;
    *pos = x >= y ? slo : shi;
    return std::max(x, y);
}

} // namespace

struct SuffixArray::Impl {
    // Not zero-filled first (divsufsort writes every entry): 4 or 8 bytes per old byte.
    std::unique_ptr<saidx_t[]> sa32;
    std::unique_ptr<saidx64_t[]> sa64;
};

SuffixArray::SuffixArray(const uint8_t* old, uint64_t old_size)
    : old_(old), old_size_(old_size), impl_(std::make_unique<Impl>()) {
    if (old_size == 0) return;
    if (old_size < (1ull << 31) - 1) {
        impl_->sa32.reset(new saidx_t[old_size]);
        if (divsufsort(old, impl_->sa32.get(), static_cast<saidx_t>(old_size)) != 0)
            throw Error(ErrorKind::Io, "suffix array construction failed");
    } else {
        impl_->sa64.reset(new saidx64_t[old_size]);
        if (divsufsort64(old, impl_->sa64.get(), static_cast<saidx64_t>(old_size)) != 0)
            throw Error(ErrorKind::Io, "suffix array construction failed");
    }
}

SuffixArray::~SuffixArray() = default;

uint64_t SuffixArray::longest_match(const uint8_t* needle, uint64_t len, uint64_t* pos,
                                    uint64_t* compared) const {
    uint64_t work = 0;
    uint64_t found = 0;
    *pos = 0;
    if (impl_->sa64)
        found = search(impl_->sa64.get(), old_, old_size_, needle, len, pos, work);
    else if (impl_->sa32)
        found = search(impl_->sa32.get(), old_, old_size_, needle, len, pos, work);
    if (compared) *compared += work;
    return found;
}

std::vector<bundle::Extent> coalesce_extents(std::vector<bundle::Extent> extents,
                                             size_t max_extents) {
    std::sort(extents.begin(), extents.end(),
              [](const auto& a, const auto& b) { return a.offset < b.offset; });
    std::vector<bundle::Extent> merged;
    for (const auto& e : extents) {
        if (e.length == 0) continue;
        if (!merged.empty() && e.offset <= merged.back().offset + merged.back().length) {
            uint64_t end =
                std::max(merged.back().offset + merged.back().length, e.offset + e.length);
            merged.back().length = end - merged.back().offset;
        } else {
            merged.push_back(e);
        }
    }
    if (max_extents == 0) max_extents = 1;
    while (merged.size() > max_extents) {
        // Join every gap not larger than the (size - max)-th smallest gap: few passes, no heap.
        std::vector<uint64_t> gaps;
        for (size_t i = 1; i < merged.size(); ++i)
            gaps.push_back(merged[i].offset - (merged[i - 1].offset + merged[i - 1].length));
        size_t excess = merged.size() - max_extents;
        std::nth_element(gaps.begin(), gaps.begin() + (excess - 1), gaps.end());
        uint64_t limit = gaps[excess - 1];
        std::vector<bundle::Extent> next;
        for (const auto& e : merged) {
            if (!next.empty() && e.offset - (next.back().offset + next.back().length) <= limit &&
                excess > 0) {
                next.back().length = e.offset + e.length - next.back().offset;
                --excess;
            } else {
                next.push_back(e);
            }
        }
        merged.swap(next);
    }
    return merged;
}

namespace {

// Compression contexts and output buffers, kept between frames and shared by the encoding
// threads (each op runs on a thread of its own): a fresh level-22 context zeroes tens of MiB of
// tables for every frame, and a fresh zero-filled output buffer of the worst-case size costs as
// much again; on small deltas the two were most of the encoding time.
struct Compressor {
    ZSTD_CCtx* cctx = nullptr;
    std::vector<char> out;
    ~Compressor() { ZSTD_freeCCtx(cctx); }
};

class CompressorPool {
public:
    std::unique_ptr<Compressor> take() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!free_.empty()) {
                auto c = std::move(free_.back());
                free_.pop_back();
                return c;
            }
        }
        auto c = std::make_unique<Compressor>();
        c->cctx = ZSTD_createCCtx();
        if (!c->cctx) throw Error(ErrorKind::Io, "out of memory for a zstd context");
        return c;
    }
    void give_back(std::unique_ptr<Compressor> c) {
        std::lock_guard<std::mutex> lock(mutex_);
        free_.push_back(std::move(c));
    }

private:
    std::mutex mutex_;
    std::vector<std::unique_ptr<Compressor>> free_;
};

CompressorPool& compressors() {
    static CompressorPool pool;
    return pool;
}

} // namespace

std::string zstd_compress(const uint8_t* data, size_t size, int level, const uint8_t* prefix,
                          size_t prefix_size) {
    std::unique_ptr<Compressor> c = compressors().take();
    ZSTD_CCtx* cctx = c->cctx;
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
    if (prefix_size > 0) {
        // The window must reach back over the whole prefix from the end of the data.
        unsigned wlog = 10;
        while (wlog < static_cast<unsigned>(bundle::kMaxWindowLog) &&
               (1ull << wlog) < prefix_size + size)
            ++wlog;
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, static_cast<int>(wlog));
        ZSTD_CCtx_refPrefix(cctx, prefix, prefix_size);
    }
    if (c->out.size() < ZSTD_compressBound(size)) c->out.resize(ZSTD_compressBound(size));
    const size_t n = ZSTD_compress2(cctx, c->out.data(), c->out.size(), data, size);
    if (ZSTD_isError(n)) throw Error(ErrorKind::Io, std::string("zstd: ") + ZSTD_getErrorName(n));
    std::string result(c->out.data(), n);
    compressors().give_back(std::move(c));
    return result;
}

std::vector<uint8_t> arm64_filtered_copy(const uint8_t* data, uint64_t size, uint64_t base) {
    std::vector<uint8_t> out(data, data + size);
    format::arm64_filter(out.data(), out.size(), base, true);
    return out;
}

double arm64_call_density(const uint8_t* data, uint64_t size, uint64_t base) {
    const uint64_t skip = (4 - base % 4) % 4;
    if (size < skip + 4) return 0;
    uint64_t calls = 0, words = 0;
    for (uint64_t i = skip; i + 4 <= size; i += 4, ++words)
        if ((data[i + 3] & 0xFC) == 0x94) ++calls;
    return static_cast<double>(calls) / static_cast<double>(words);
}

bool looks_like_arm64_code(const uint8_t* data, uint64_t size, double min_call_density,
                           uint64_t base) {
    constexpr uint32_t kRet = 0xd65f03c0; // RET (x30), little endian
    if (arm64_call_density(data, size, base) < min_call_density || size < 4) return false;
    uint64_t returns = 0;
    for (uint64_t i = (4 - base % 4) % 4; i + 4 <= size; i += 4) {
        uint32_t w = static_cast<uint32_t>(data[i]) | static_cast<uint32_t>(data[i + 1]) << 8 |
                     static_cast<uint32_t>(data[i + 2]) << 16 |
                     static_cast<uint32_t>(data[i + 3]) << 24;
        if (w == kRet) ++returns;
    }
    return returns * 2048 >= size / 4;
}

DiffStreams build_diff_streams(const SuffixArray& sa, const uint8_t* new_data, uint64_t new_size,
                               uint64_t new_offset, const DiffEncodeOptions& options) {
    std::vector<uint8_t> filtered_new;
    if (options.arm64_filter) filtered_new = arm64_filtered_copy(new_data, new_size, new_offset);
    const uint8_t* nw = options.arm64_filter ? filtered_new.data() : new_data;
    const uint8_t* old = sa.old();
    const int64_t oldsize = static_cast<int64_t>(sa.old_size());
    const int64_t newsize = static_cast<int64_t>(new_size);

    DiffStreams out;
    out.new_size = new_size;
    out.new_offset = new_offset;
    out.arm64_filter = options.arm64_filter;
    std::string& ctrl = out.ctrl;
    std::string& diff = out.diff;
    std::string& extra = out.extra;
    diff.reserve(new_size);
    uint64_t& ctrl_count = out.ctrl_count;
    int64_t old_cursor = 0;
    const int64_t origin = static_cast<int64_t>(options.old_origin);
    std::vector<bundle::Extent>& reads = out.reads;

    auto emit = [&](int64_t lastscan, int64_t lastpos, int64_t lenf, int64_t extra_len) {
        if (lenf == 0 && extra_len == 0) return;
        int64_t seek = lenf > 0 ? lastpos + origin - old_cursor : 0;
        format::put_varint(ctrl, format::zigzag_encode(seek));
        format::put_varint(ctrl, static_cast<uint64_t>(lenf));
        format::put_varint(ctrl, static_cast<uint64_t>(extra_len));
        ++ctrl_count;
        for (int64_t i = 0; i < lenf; ++i)
            diff.push_back(static_cast<char>(nw[lastscan + i] - old[lastpos + i]));
        extra.append(reinterpret_cast<const char*>(nw + lastscan + lenf),
                     static_cast<size_t>(extra_len));
        if (lenf > 0) {
            uint64_t start = static_cast<uint64_t>(lastpos + origin);
            uint64_t end = start + static_cast<uint64_t>(lenf);
            if (options.arm64_filter) { // the applier reads whole words to filter them
                start &= ~uint64_t{3};
                end = std::min<uint64_t>((end + 3) & ~uint64_t{3},
                                         sa.old_size() + options.old_origin);
            }
            reads.push_back({start, end - start});
            old_cursor = lastpos + origin + lenf;
        }
    };

    const int64_t slack = static_cast<int64_t>(options.min_match);
    int64_t scan = 0, len = 0, pos = 0;
    int64_t lastscan = 0;
    // Where the op's bytes would sit in the old image if nothing had moved.
    int64_t lastpos = std::clamp<int64_t>(static_cast<int64_t>(new_offset) - origin, 0, oldsize);
    int64_t lastoffset = lastpos;
    auto old_at = [&](int64_t i) { return i >= 0 && i < oldsize; };
    while (scan < newsize) {
        int64_t oldscore = 0;
        int64_t scsc;
        bool aligned_run = false;
        for (scsc = scan += len; scan < newsize; ++scan) {
            // Where the current alignment goes on matching exactly for a while, no match the
            // suffix array could find would code these bytes more cheaply: skip them without a
            // search. (In a long, nearly aligned run the search otherwise happens at every byte,
            // each one comparing up to kMaxCompare bytes.)
            if (old_at(scan + lastoffset)) {
                const int64_t run = static_cast<int64_t>(match_length(
                    old + scan + lastoffset, static_cast<uint64_t>(oldsize - (scan + lastoffset)),
                    nw + scan,
                    std::min<uint64_t>(new_size - static_cast<uint64_t>(scan), kMaxCompare)));
                out.compared += static_cast<uint64_t>(run) + 1;
                if (run >= kMinAlignedRun) {
                    len = run;
                    pos = scan + lastoffset;
                    aligned_run = true;
                    break;
                }
            }
            uint64_t p = 0;
            len = static_cast<int64_t>(
                sa.longest_match(nw + scan, new_size - scan, &p, &out.compared));
            pos = static_cast<int64_t>(p);
            for (; scsc < scan + len; ++scsc)
                if (old_at(scsc + lastoffset) && old[scsc + lastoffset] == nw[scsc]) ++oldscore;
            if ((len == oldscore && len != 0) || len > oldscore + slack) break;
            if (old_at(scan + lastoffset) && old[scan + lastoffset] == nw[scan]) --oldscore;
        }
        if (aligned_run) continue; // as a match the alignment explains: nothing to emit yet
        if (len != oldscore || scan == newsize) {
            // Extend the previous match forward and this one backward while at least half the
            // bytes agree, then split any overlap where the score is best.
            int64_t s = 0, sf = 0, lenf = 0;
            for (int64_t i = 0; lastscan + i < scan && lastpos + i < oldsize;) {
                if (old[lastpos + i] == nw[lastscan + i]) ++s;
                ++i;
                if (s * 2 - i > sf * 2 - lenf) {
                    sf = s;
                    lenf = i;
                }
            }
            int64_t lenb = 0;
            if (scan < newsize) {
                int64_t sb = 0;
                s = 0;
                for (int64_t i = 1; scan >= lastscan + i && pos >= i; ++i) {
                    if (old[pos - i] == nw[scan - i]) ++s;
                    if (s * 2 - i > sb * 2 - lenb) {
                        sb = s;
                        lenb = i;
                    }
                }
            }
            if (lastscan + lenf > scan - lenb) {
                int64_t overlap = (lastscan + lenf) - (scan - lenb);
                int64_t ss = 0, lens = 0;
                s = 0;
                for (int64_t i = 0; i < overlap; ++i) {
                    if (nw[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i]) ++s;
                    if (nw[scan - lenb + i] == old[pos - lenb + i]) --s;
                    if (s > ss) {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }
            emit(lastscan, lastpos, lenf, (scan - lenb) - (lastscan + lenf));
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }

    return out;
}

namespace {

// One stream as the blob holds it: `bytes` decode to `stored` bytes (the stream itself, or the
// sparse coding of the diff stream).
struct PackedStream {
    std::string bytes;
    uint64_t stored = 0;
};

std::string serialize(const DiffStreams& streams, bool flagged, uint64_t flags,
                      const PackedStream& ctrl, const PackedStream& diff,
                      const PackedStream& extra) {
    std::string b;
    if (flagged) {
        b.assign(format::kMagicFlags, sizeof(format::kMagicFlags));
        format::put_varint(b, flags);
    } else {
        b.assign(streams.arm64_filter ? format::kMagicArm64 : format::kMagic,
                 sizeof(format::kMagic));
    }
    if (streams.arm64_filter) format::put_varint(b, streams.new_offset);
    for (uint64_t v :
         {streams.new_size, streams.ctrl_count, ctrl.stored,
          static_cast<uint64_t>(ctrl.bytes.size()), static_cast<uint64_t>(streams.diff.size()),
          static_cast<uint64_t>(diff.bytes.size()), extra.stored,
          static_cast<uint64_t>(extra.bytes.size())})
        format::put_varint(b, v);
    if (flags & format::kFlagSparseDiff) format::put_varint(b, diff.stored);
    return b + ctrl.bytes + diff.bytes + extra.bytes;
}

} // namespace

EncodedDiff pack_diff(const DiffStreams& streams, int zstd_level, size_t max_extents,
                      bool flagged_layout) {
    EncodedDiff result;
    if (streams.ctrl.size() > streams.new_size / format::kMaxCtrlDivisor + format::kCtrlSlack)
        return result; // the applier would refuse it: caller falls back to another op
    auto compress = [&](const std::string& stream) {
        return PackedStream{stream.empty()
                                ? std::string()
                                : zstd_compress(reinterpret_cast<const uint8_t*>(stream.data()),
                                                stream.size(), zstd_level),
                            stream.size()};
    };
    // The flagged layout stores a stream as it is when zstd would not make it smaller (a frame
    // costs about a dozen bytes: more than a tiny control stream).
    auto as_is_if_smaller = [](const PackedStream& z, const std::string& stream) {
        return stream.size() <= z.bytes.size() ? PackedStream{stream, stream.size()} : z;
    };
    const PackedStream ctrl_z = compress(streams.ctrl), diff_z = compress(streams.diff),
                       extra_z = compress(streams.extra);
    result.blob = serialize(streams, false, 0, ctrl_z, diff_z, extra_z);
    result.src_extents = coalesce_extents(streams.reads, max_extents);
    if (!flagged_layout) return result;

    const uint64_t filter = streams.arm64_filter ? format::kFlagArm64 : 0;
    const PackedStream ctrl = as_is_if_smaller(ctrl_z, streams.ctrl),
                       extra = as_is_if_smaller(extra_z, streams.extra);
    std::vector<std::string> candidates;
    candidates.push_back(
        serialize(streams, true, filter, ctrl, as_is_if_smaller(diff_z, streams.diff), extra));
    // The sparse coding of the diff stream, where it is small enough for the applier and could
    // win: mostly where the op is a long run of unchanged, moved bytes. Where the coding is
    // larger than twice the zstd frame of the whole stream, its own frame would not come close
    // (and compressing it at the ultra levels costs encoder time on every big op).
    const std::string coded = format::sparse_encode(
        reinterpret_cast<const uint8_t*>(streams.diff.data()), streams.diff.size());
    if (!streams.diff.empty() &&
        coded.size() <= streams.diff.size() / format::kSparseDivisor + format::kSparseSlack &&
        coded.size() <= 2 * diff_z.bytes.size() + format::kSparseSlack)
        candidates.push_back(serialize(streams, true, filter | format::kFlagSparseDiff, ctrl,
                                       as_is_if_smaller(compress(coded), coded), extra));
    // The older layouts where they are as small: agents before the flagged layout read them.
    for (auto& c : candidates)
        if (c.size() < result.blob.size()) result.blob = std::move(c);
    return result;
}

DiffStreams unpack_diff(const std::string& blob, std::vector<bundle::Extent> reads) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(blob.data());
    const uint8_t* end = p + blob.size();
    auto fail = [] { throw Error(ErrorKind::Malformed, "diff blob to unpack is inconsistent"); };
    if (blob.size() < sizeof(format::kMagic)) fail();
    DiffStreams s;
    uint64_t flags = 0;
    const bool flagged = std::memcmp(p, format::kMagicFlags, sizeof(format::kMagic)) == 0;
    if (flagged) {
        p += sizeof(format::kMagic);
        if (!format::get_varint(p, end, flags)) fail();
    } else {
        if (std::memcmp(p, format::kMagicArm64, sizeof(format::kMagic)) == 0)
            flags = format::kFlagArm64;
        p += sizeof(format::kMagic);
    }
    s.arm64_filter = flags & format::kFlagArm64;
    if (s.arm64_filter && !format::get_varint(p, end, s.new_offset)) fail();
    uint64_t f[8];
    for (auto& v : f)
        if (!format::get_varint(p, end, v)) fail();
    uint64_t diff_coded = 0;
    const bool sparse = flags & format::kFlagSparseDiff;
    if (sparse && !format::get_varint(p, end, diff_coded)) fail();
    s.new_size = f[0];
    s.ctrl_count = f[1];
    std::string* streams[3] = {&s.ctrl, &s.diff, &s.extra};
    for (int i = 0; i < 3; ++i) {
        const uint64_t raw = f[2 + 2 * i], packed = f[3 + 2 * i];
        const uint64_t stored = sparse && i == 1 ? diff_coded : raw;
        if (packed > static_cast<uint64_t>(end - p)) fail();
        std::string decoded(stored, '\0');
        if (flagged && packed == stored) {
            decoded.assign(reinterpret_cast<const char*>(p), packed);
        } else if (packed > 0) {
            const size_t n = ZSTD_decompress(decoded.data(), stored, p, packed);
            if (ZSTD_isError(n) || n != stored) fail();
        }
        if (sparse && i == 1) {
            streams[i]->resize(raw);
            const auto* c = reinterpret_cast<const uint8_t*>(decoded.data());
            if (!format::sparse_expand(c, c + decoded.size(),
                                       reinterpret_cast<uint8_t*>(streams[i]->data()), raw))
                fail();
        } else {
            *streams[i] = std::move(decoded);
        }
        p += packed;
    }
    s.reads = std::move(reads);
    return s;
}

EncodedDiff encode_diff(const SuffixArray& sa, const uint8_t* new_data, uint64_t new_size,
                        uint64_t new_offset, const DiffEncodeOptions& options, size_t max_extents) {
    return pack_diff(build_diff_streams(sa, new_data, new_size, new_offset, options),
                     options.zstd_level, max_extents);
}

} // namespace ota::delta
