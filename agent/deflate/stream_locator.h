// Encoder side: finds the deflate streams inside an image: gzip members (a kernel's Image.gz,
// initramfs, any .gz file in a file system), zip / apk / jar members stored with method 8, and
// zlib streams. A candidate counts only when it decompresses and its wrapper's check (CRC-32 and
// size for gzip and zip, Adler-32 for zlib) matches, so random bytes that look like a header are
// not taken for a stream.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ota::deflate {

enum class Wrapper { Gzip, Zip, Zlib };

struct LocatedStream {
    uint64_t offset = 0;         // first byte of the deflate data in the image
    uint64_t length = 0;         // deflate bytes, up to and including the final block's padding
    uint64_t u_size = 0;         // decompressed bytes
    uint64_t wrapper_offset = 0; // first byte of its wrapper (gzip / zip / zlib header)
    Wrapper wrapper = Wrapper::Gzip;
    std::string name; // zip member name or gzip FNAME, when there is one
    unsigned window_bits = 15;
};

struct LocateOptions {
    uint64_t min_length = 64;         // smaller streams are not worth a description
    uint64_t max_u_size = 1ull << 30; // streams decompressing to more are skipped
    bool zlib = true;                 // look for zlib headers too (0x78 xx)
};

// Streams in image order, not overlapping.
std::vector<LocatedStream> locate_deflate_streams(const uint8_t* image, uint64_t size,
                                                  const LocateOptions& options = {});

} // namespace ota::deflate
