#include "hal/block_device.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ota::hal {

namespace {

class FileBlockDevice : public BlockDevice {
public:
    FileBlockDevice(std::string path, UniqueFd fd, uint64_t size, uint64_t max_size, bool is_block)
        : path_(std::move(path)), fd_(std::move(fd)), size_(size), max_size_(max_size),
          is_block_(is_block) {}

    uint64_t size() const override { return size_; }
    const std::string& path() const override { return path_; }

    void read(uint64_t offset, void* buf, size_t len) override {
        if (offset > size_ || len > size_ - offset)
            throw Error(ErrorKind::Io, "read beyond the end of " + path_);
        pread_all(fd_.get(), buf, len, offset, path_);
    }

    void write(uint64_t offset, const void* buf, size_t len) override {
        uint64_t limit = std::max(size_, max_size_);
        if (offset > limit || len > limit - offset)
            throw Error(ErrorKind::Io, "write beyond the end of " + path_);
        pwrite_all(fd_.get(), buf, len, offset, path_);
        if (offset + len > size_) size_ = offset + len;
    }

    void sync() override {
        fsync_or_throw(fd_.get(), path_);
        if (is_block_) ::ioctl(fd_.get(), BLKFLSBUF, 0); // best effort: drop stale cached pages
    }

    void drop_cache() override {
        // The whole file: the page cache may hold it in large folios that a narrower range would
        // only partly cover, and those are kept. Only clean, unmapped pages are dropped (so after
        // sync()); a block device's buffer cache was also flushed by BLKFLSBUF in sync().
        ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
    }

private:
    std::string path_;
    UniqueFd fd_;
    uint64_t size_;
    uint64_t max_size_;
    bool is_block_;
};

} // namespace

std::unique_ptr<BlockDevice> open_block_device(const std::string& path, bool writable,
                                               uint64_t max_size) {
    UniqueFd fd = open_or_throw(path, writable ? O_RDWR : O_RDONLY);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + path);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    bool is_block = S_ISBLK(st.st_mode);
    if (is_block && ::ioctl(fd.get(), BLKGETSIZE64, &size) != 0)
        throw Error(ErrorKind::Io, "cannot read the size of block device " + path);
    return std::make_unique<FileBlockDevice>(path, std::move(fd), size, is_block ? 0 : max_size,
                                             is_block);
}

} // namespace ota::hal
