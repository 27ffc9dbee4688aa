// Encoder side of the Diff operation (publisher and tests only; never linked into the agent).
#pragma once
#include "agent/bundle/format.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ota::delta {

// A suffix array over the whole old image (libdivsufsort), used to find the longest match of any
// position of the new image. Memory: 4 bytes per old byte (8 above 2 GiB) plus the image itself,
// which the caller keeps alive. Building it takes O(n log n) time.
class SuffixArray {
public:
    SuffixArray(const uint8_t* old, uint64_t old_size);
    ~SuffixArray();
    SuffixArray(const SuffixArray&) = delete;
    SuffixArray& operator=(const SuffixArray&) = delete;

    const uint8_t* old() const { return old_; }
    uint64_t old_size() const { return old_size_; }
    // Longest prefix of needle[0, len) that occurs in old, capped at max_match; returns its length
    // and sets *pos to one place where it occurs. Adds the bytes it compared to *compared.
    uint64_t longest_match(const uint8_t* needle, uint64_t len, uint64_t* pos,
                           uint64_t* compared = nullptr) const;

private:
    struct Impl;
    const uint8_t* old_;
    uint64_t old_size_;
    std::unique_ptr<Impl> impl_;
};

struct DiffEncodeOptions {
    int zstd_level = 19;
    // Shorter approximate matches cost more control bytes than they save.
    uint64_t min_match = 8;
    // Diff the ARM64-filtered images (diff_format.h): `sa` must then be built over the filtered
    // old image (arm64_filtered_copy, at base old_origin), and the blob says so (OTADIFF2, or
    // OTADIFF4 with the filter flag).
    bool arm64_filter = false;
    // Source position of the suffix array's first byte: the blob's reads are at old_origin +
    // the position in `sa` (a multiple of 4 with arm64_filter, so whole words stay whole).
    uint64_t old_origin = 0;
};

// A copy of data[0, size) (at image offset base) with the ARM64 branch filter applied.
std::vector<uint8_t> arm64_filtered_copy(const uint8_t* data, uint64_t size, uint64_t base);

// Fraction of 4-aligned words that are BL instructions: about 1/64 in random data, several times
// more in ARM64 code. `base` is data's offset in its image: words are aligned in the image.
double arm64_call_density(const uint8_t* data, uint64_t size, uint64_t base = 0);

// Whether data looks like ARM64 code worth the branch filter: BL density of at least
// min_call_density, and plain RET instructions at least every 2048 words. Float weights can have
// as many BL look-alikes as code (a model file measured 3.8 %), but never the exact RET word.
bool looks_like_arm64_code(const uint8_t* data, uint64_t size, double min_call_density,
                           uint64_t base = 0);

struct EncodedDiff {
    std::string blob;                        // the Diff blob (diff_format.h)
    std::vector<bundle::Extent> src_extents; // every old range the blob reads, sorted, merged
};

// The uncompressed control / difference / extra streams of one op's Diff, before zstd.
struct DiffStreams {
    std::string ctrl, diff, extra;
    uint64_t ctrl_count = 0;
    uint64_t new_size = 0;
    uint64_t new_offset = 0;
    bool arm64_filter = false;
    std::vector<bundle::Extent> reads; // old ranges read, in control order
    uint64_t compared = 0;             // bytes the matcher compared: its work, for tests
};

// Matching only: the streams of new_data (one operation's output) against the whole old image.
DiffStreams build_diff_streams(const SuffixArray& sa, const uint8_t* new_data, uint64_t new_size,
                               uint64_t new_offset, const DiffEncodeOptions& options);

// Compresses the streams at zstd_level into a Diff blob; src_extents are merged down to at most
// max_extents ranges (joining the closest neighbours first). An empty blob means the applier
// would refuse it (too many control entries for the output). With `flagged`, the flagged layout
// (OTADIFF4) is made instead where it is smaller.
EncodedDiff pack_diff(const DiffStreams& streams, int zstd_level, size_t max_extents = 16,
                      bool flagged = true);

// The streams of a packed Diff blob back (reads as given: the blob does not hold them).
DiffStreams unpack_diff(const std::string& blob, std::vector<bundle::Extent> reads);

// build_diff_streams + pack_diff at options.zstd_level.
EncodedDiff encode_diff(const SuffixArray& sa, const uint8_t* new_data, uint64_t new_size,
                        uint64_t new_offset, const DiffEncodeOptions& options,
                        size_t max_extents = 16);

// Compresses data as one zstd frame (the Zstd op), optionally with a prefix dictionary (ZstdPatch).
std::string zstd_compress(const uint8_t* data, size_t size, int level,
                          const uint8_t* prefix = nullptr, size_t prefix_size = 0);

// Merges sorted-or-not extents (touching ones joined), then joins the closest neighbours until at
// most max_extents remain.
std::vector<bundle::Extent> coalesce_extents(std::vector<bundle::Extent> extents,
                                             size_t max_extents);

} // namespace ota::delta
