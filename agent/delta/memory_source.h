// A read-only BlockDevice over bytes in memory placed at a position (`origin`): the source of the
// Diff inside a deflate blob, which reads decompressed old bytes instead of the slot itself (and
// the encoder's view of a mapped old image when it checks its own blobs).
#pragma once
#include "agent/common/error.h"
#include "hal/block_device.h"

#include <cstring>
#include <string>

namespace ota::delta {

class MemorySource : public hal::BlockDevice {
public:
    MemorySource(uint64_t origin, const uint8_t* data, size_t size)
        : origin_(origin), data_(data), size_(size) {}
    uint64_t size() const override { return origin_ + size_; }
    void read(uint64_t offset, void* buf, size_t len) override {
        if (offset < origin_ || offset - origin_ > size_ || len > size_ - (offset - origin_))
            throw Error(ErrorKind::Malformed, "read outside the bytes in memory");
        if (len) std::memcpy(buf, data_ + (offset - origin_), len);
    }
    void write(uint64_t, const void*, size_t) override {
        throw Error(ErrorKind::Io, "deflate diff source is read-only");
    }
    void sync() override {}
    const std::string& path() const override { return path_; }

private:
    uint64_t origin_;
    const uint8_t* data_;
    size_t size_;
    std::string path_ = "(decompressed source)";
};

} // namespace ota::delta
