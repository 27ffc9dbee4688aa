// libFuzzer target: the Diff blob decoder, against a real source file. It must reject hostile
// blobs with an error, never read outside the allowed extents or write past the output.
#include "agent/common/error.h"
#include "agent/delta/diff.h"
#include "hal/block_device.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace {
std::unique_ptr<ota::hal::BlockDevice> g_source;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    char path[] = "/tmp/ota-fuzz-source-XXXXXX";
    int fd = mkstemp(path);
    std::vector<uint8_t> content(1 << 16);
    for (size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<uint8_t>(i * 31 + (i >> 8));
    if (fd < 0 || write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        return 1;
    close(fd);
    g_source = ota::hal::open_block_device(path, false);
    unlink(path);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    // First two bytes choose the output size (bounded) and the allowed window.
    size_t out_size = (static_cast<size_t>(data[0]) << 8 | data[1]) % 8192;
    std::vector<ota::bundle::Extent> allowed{{1024, 32768}};
    std::vector<uint8_t> out(out_size);
    try {
        ota::delta::apply_diff(data + 2, size - 2, *g_source, allowed, out.data(), out.size());
    } catch (const ota::Error&) {
    }
    return 0;
}
