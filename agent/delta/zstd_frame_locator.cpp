#include "agent/delta/zstd_frame_locator.h"

#include "agent/common/error.h"
#include "agent/delta/zstd_frame.h"

#include <zstd.h>

#include <cstring>

namespace ota::delta {

namespace {

constexpr uint8_t kFrameMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};

} // namespace

std::vector<LocatedZstdFrame> locate_zstd_frames(const uint8_t* image, uint64_t size,
                                                 uint64_t min_length) {
    std::vector<LocatedZstdFrame> frames;
    uint64_t at = 0;
    while (at + 4 <= size) {
        const void* hit = memmem(image + at, static_cast<size_t>(size - at), kFrameMagic, 4);
        if (!hit) break;
        const uint64_t p = static_cast<uint64_t>(static_cast<const uint8_t*>(hit) - image);
        at = p + 1;
        const unsigned long long u_size =
            ZSTD_getFrameContentSize(image + p, static_cast<size_t>(size - p));
        if (u_size == ZSTD_CONTENTSIZE_ERROR || u_size == ZSTD_CONTENTSIZE_UNKNOWN ||
            u_size > kMaxZstdFrameU)
            continue;
        const size_t length =
            ZSTD_findFrameCompressedSize(image + p, static_cast<size_t>(size - p));
        if (ZSTD_isError(length) || length < min_length) continue;
        LocatedZstdFrame f{p, length, u_size};
        if (!decompress_zstd_frame(image, f)) continue;
        frames.push_back(f);
        at = p + length;
    }
    return frames;
}

std::optional<std::vector<uint8_t>> decompress_zstd_frame(const uint8_t* image,
                                                          const LocatedZstdFrame& frame) {
    std::vector<uint8_t> u(static_cast<size_t>(frame.u_size));
    const size_t n = ZSTD_decompress(u.data(), u.size(), image + frame.offset,
                                     static_cast<size_t>(frame.length));
    if (ZSTD_isError(n) || n != frame.u_size) return std::nullopt;
    return u;
}

int find_zstd_level(const uint8_t* frame, uint64_t frame_length, const std::vector<uint8_t>& u,
                    int hint, bool thorough) {
    std::vector<int> levels;
    if (hint > 0) levels.push_back(hint);
    for (int l : {15, 3, 19})
        if (l != hint) levels.push_back(l);
    if (thorough)
        for (int l = 1; l <= ZSTD_maxCLevel(); ++l)
            if (l != hint && l != 15 && l != 3 && l != 19) levels.push_back(l);
    ZstdFrameMaker maker;
    for (int level : levels) {
        try {
            const std::vector<uint8_t>& made = maker.make(u.data(), u.size(), level);
            if (made.size() == frame_length && std::memcmp(made.data(), frame, made.size()) == 0)
                return level;
        } catch (const Error&) {
            // a level the applier would refuse (its memory): not a candidate
        }
    }
    return 0;
}

} // namespace ota::delta
