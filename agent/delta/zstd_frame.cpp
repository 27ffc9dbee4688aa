// ZSTD_getCParams and the memory estimate are in zstd's experimental API (exported by the shared
// library); the frame format and the version check make them safe to use here.
#define ZSTD_STATIC_LINKING_ONLY
#include "agent/delta/zstd_frame.h"

#include "agent/common/error.h"

#include <string>

namespace ota::delta {

ZstdFrameMaker::ZstdFrameMaker() : cctx_(ZSTD_createCCtx()) {
    if (!cctx_) throw Error(ErrorKind::Io, "out of memory for a zstd context");
}

ZstdFrameMaker::~ZstdFrameMaker() {
    ZSTD_freeCCtx(cctx_);
}

const std::vector<uint8_t>& ZstdFrameMaker::make(const uint8_t* data, size_t size, int level) {
    if (level < 1 || level > ZSTD_maxCLevel())
        throw Error(ErrorKind::Malformed, "zstd frame: level " + std::to_string(level) +
                                              " is not a zstd compression level");
    if (size > kMaxZstdFrameU)
        throw Error(ErrorKind::Malformed, "zstd frame: larger than a frame may be");
    // The parameters ZSTD_compressCCtx picks for this level and size, and their memory.
    const ZSTD_compressionParameters params = ZSTD_getCParams(level, size, 0);
    if (ZSTD_estimateCCtxSize_usingCParams(params) > kMaxZstdFrameMemory)
        throw Error(ErrorKind::Malformed, "zstd frame: level " + std::to_string(level) +
                                              " needs more memory than an op may use");
    out_.resize(ZSTD_compressBound(size));
    const size_t n = ZSTD_compressCCtx(cctx_, out_.data(), out_.size(), data, size, level);
    if (ZSTD_isError(n))
        throw Error(ErrorKind::Malformed,
                    std::string("zstd frame: cannot compress: ") + ZSTD_getErrorName(n));
    out_.resize(n);
    return out_;
}

} // namespace ota::delta
