// A model version's files seen as one block device: the image a model bundle describes is the
// concatenation of its files, so the bundle installer writes (and reads back) a new version
// straight into its files, and a delta reads the installed version the same way. No staging image
// and no copy: memory and disk stay bounded by the model itself.
#pragma once
#include "agent/bundle/format.h"
#include "agent/common/fs.h"
#include "hal/block_device.h"

#include <string>
#include <vector>

namespace ota::models {

// Checks that `files` tile [0, image_size) exactly, in order, with safe relative paths (no "..",
// no leading '/', no empty or "." components, no duplicates). Throws Error(Malformed).
void check_file_layout(const std::vector<bundle::FileEntry>& files, uint64_t image_size);

class FileSetDevice : public hal::BlockDevice {
public:
    // Read-only over existing files in `dir`; each must exist with exactly its listed length.
    static std::unique_ptr<FileSetDevice> open(const std::string& dir,
                                               std::vector<bundle::FileEntry> files);
    // Creates (or reopens, for a resumed install) every file in `dir` with its length, so any
    // offset of the image can be written and read back.
    static std::unique_ptr<FileSetDevice> create(const std::string& dir,
                                                 std::vector<bundle::FileEntry> files);

    uint64_t size() const override { return size_; }
    void read(uint64_t offset, void* buf, size_t len) override;
    void write(uint64_t offset, const void* buf, size_t len) override;
    void sync() override;
    const std::string& path() const override { return dir_; }

private:
    FileSetDevice(std::string dir, std::vector<bundle::FileEntry> files, bool writable);
    template <class Fn> void for_range(uint64_t offset, size_t len, Fn&& fn);
    int fd_of(size_t index);

    std::string dir_;
    std::vector<bundle::FileEntry> files_;
    bool writable_;
    uint64_t size_ = 0;
    std::vector<bool> dirty_;
    // One open file at a time: a model can have thousands of files.
    size_t open_index_ = SIZE_MAX;
    UniqueFd open_fd_;
};

} // namespace ota::models
