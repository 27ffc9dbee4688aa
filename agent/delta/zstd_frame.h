// Re-creating a zstd frame exactly from its decompressed bytes (squashfs zstd blocks, any frame
// made by ZSTD_compress at a plain level): the deflate Diff blob's zstd segments. The encoder
// keeps a frame only if this very function gives back its bytes, and names the libzstd version
// it used; the applier refuses a frame named for another version, whose output may differ.
#pragma once
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ota::delta {

// Frames larger than this (decompressed) are not re-created: squashfs blocks are at most 1 MiB.
inline constexpr uint64_t kMaxZstdFrameU = 4ull << 20;
// Compression state the applier may allocate for one frame (level and size decide it).
inline constexpr uint64_t kMaxZstdFrameMemory = 12ull << 20;

class ZstdFrameMaker {
public:
    ZstdFrameMaker();
    ~ZstdFrameMaker();
    ZstdFrameMaker(const ZstdFrameMaker&) = delete;
    ZstdFrameMaker& operator=(const ZstdFrameMaker&) = delete;

    // Bytes `data` compressed as ZSTD_compressCCtx(level) does (content size in the header, no
    // checksum). Throws Error(Malformed) for a level or size outside the bounds above.
    const std::vector<uint8_t>& make(const uint8_t* data, size_t size, int level);

private:
    ZSTD_CCtx* cctx_;
    std::vector<uint8_t> out_;
};

} // namespace ota::delta
