// Encoder side: finds the zstd frames inside an image (squashfs zstd blocks, .zst files) and the
// compression level that makes each again byte for byte (zstd_frame.h).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace ota::delta {

struct LocatedZstdFrame {
    uint64_t offset = 0; // first byte of the frame (its magic number)
    uint64_t length = 0; // the whole frame
    uint64_t u_size = 0; // decompressed bytes, from the frame header
};

// Frames in image order, not overlapping: a frame counts only when its header gives its content
// size (at most kMaxZstdFrameU) and it decompresses to exactly that size.
std::vector<LocatedZstdFrame> locate_zstd_frames(const uint8_t* image, uint64_t size,
                                                 uint64_t min_length = 64);

// The decompressed bytes of a located frame.
std::optional<std::vector<uint8_t>> decompress_zstd_frame(const uint8_t* image,
                                                          const LocatedZstdFrame& frame);

// Finds the level at which ZstdFrameMaker re-creates `frame` from `u` exactly. Tries `hint`
// first (the level the image's other frames were made at), then the levels tools use by default
// (mksquashfs 15, zstd 3, 19), then every other level when `thorough`. 0: none.
int find_zstd_level(const uint8_t* frame, uint64_t frame_length, const std::vector<uint8_t>& u,
                    int hint, bool thorough);

} // namespace ota::delta
