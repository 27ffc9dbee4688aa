// A slot's storage: a raw block device (/dev/mmcblk0p2) or, for tests and the simulated ECU, an
// image file. The agent only ever writes the inactive slot through this interface.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace ota::hal {

class BlockDevice {
public:
    virtual ~BlockDevice() = default;
    virtual uint64_t size() const = 0;
    // Both throw ota::Error(Io) on failure or on access beyond size().
    virtual void read(uint64_t offset, void* buf, size_t len) = 0;
    virtual void write(uint64_t offset, const void* buf, size_t len) = 0;
    // Makes every write so far durable (fsync / BLKFLSBUF).
    virtual void sync() = 0;
    // Drops the cached copies of what sync() made durable, so that the next read() comes from the
    // storage itself: read-back verification then checks what the device holds, not what the page
    // cache remembers. Call it right after sync(). Best effort; storage without a cache has
    // nothing to drop.
    virtual void drop_cache() {}
    virtual const std::string& path() const = 0;
};

// Opens a block device or a regular file. For a regular file opened writable, size() is the
// file's current size and writes may extend it up to max_size (0 = no extension allowed).
std::unique_ptr<BlockDevice> open_block_device(const std::string& path, bool writable,
                                               uint64_t max_size = 0);

} // namespace ota::hal
