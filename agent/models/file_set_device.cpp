#include "agent/models/file_set_device.h"

#include "agent/common/error.h"

#include <algorithm>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace ota::models {

namespace {

[[noreturn]] void malformed(const std::string& why) {
    throw Error(ErrorKind::Malformed, "model files: " + why);
}

void check_path(const std::string& path) {
    if (path.empty() || path.size() > bundle::kMaxFilePathLength) malformed("bad path length");
    if (path.front() == '/') malformed("absolute path " + path);
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        std::string part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..")
            malformed("path " + path + " has an empty, '.' or '..' component");
        start = end + 1;
    }
    if (path.find('\0') != std::string::npos) malformed("path with a NUL byte");
}

} // namespace

void check_file_layout(const std::vector<bundle::FileEntry>& files, uint64_t image_size) {
    if (files.empty()) malformed("a model bundle lists no files");
    if (files.size() > bundle::kMaxFiles) malformed("too many files");
    uint64_t expected = 0;
    std::set<std::string> seen;
    for (const auto& f : files) {
        check_path(f.path);
        if (!seen.insert(f.path).second) malformed("duplicate path " + f.path);
        if (f.offset != expected)
            malformed(f.path + " starts at " + std::to_string(f.offset) + ", expected " +
                      std::to_string(expected) + " (files must tile the image in order)");
        if (f.length > image_size - expected) malformed(f.path + " extends past the image");
        expected += f.length;
        if (f.mode & ~0777u) malformed(f.path + " has mode bits other than rwx");
    }
    if (expected != image_size)
        malformed("files cover " + std::to_string(expected) + " of " + std::to_string(image_size) +
                  " image bytes");
    // A file may not also be a directory of another ("a" and "a/b").
    for (const auto& p : seen) {
        auto it = seen.lower_bound(p + "/");
        if (it != seen.end() && it->rfind(p + "/", 0) == 0)
            malformed(p + " is both a file and a directory");
    }
}

FileSetDevice::FileSetDevice(std::string dir, std::vector<bundle::FileEntry> files, bool writable)
    : dir_(std::move(dir)), files_(std::move(files)), writable_(writable),
      dirty_(files_.size(), false) {
    for (const auto& f : files_)
        size_ += f.length;
}

std::unique_ptr<FileSetDevice> FileSetDevice::open(const std::string& dir,
                                                   std::vector<bundle::FileEntry> files) {
    std::unique_ptr<FileSetDevice> d(new FileSetDevice(dir, std::move(files), false));
    for (const auto& f : d->files_) {
        const std::string p = join_path(dir, f.path);
        if (!file_exists(p) || file_size(p) != f.length)
            throw Error(ErrorKind::SourceMismatch,
                        "installed model file " + p + " is missing or has the wrong size");
    }
    return d;
}

std::unique_ptr<FileSetDevice> FileSetDevice::create(const std::string& dir,
                                                     std::vector<bundle::FileEntry> files) {
    std::unique_ptr<FileSetDevice> d(new FileSetDevice(dir, std::move(files), true));
    make_directories(dir);
    for (const auto& f : d->files_) {
        const std::string p = join_path(dir, f.path);
        make_directories(parent_directory(p));
        UniqueFd fd = open_or_throw(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (::ftruncate(fd.get(), static_cast<off_t>(f.length)) != 0)
            throw Error(ErrorKind::Io, "cannot size " + p);
    }
    return d;
}

int FileSetDevice::fd_of(size_t index) {
    if (index != open_index_) {
        open_fd_ = UniqueFd();
        open_fd_ = open_or_throw(join_path(dir_, files_[index].path),
                                 (writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
        open_index_ = index;
    }
    return open_fd_.get();
}

template <class Fn> void FileSetDevice::for_range(uint64_t offset, size_t len, Fn&& fn) {
    if (offset > size_ || len > size_ - offset)
        throw Error(ErrorKind::Io, "access beyond the end of model " + dir_);
    // First file whose range ends after offset.
    auto it = std::upper_bound(
        files_.begin(), files_.end(), offset,
        [](uint64_t off, const bundle::FileEntry& f) { return off < f.offset + f.length; });
    size_t done = 0;
    while (done < len) {
        if (it == files_.end()) throw Error(ErrorKind::Io, "model layout gap in " + dir_);
        const uint64_t pos = offset + done;
        const uint64_t in_file = pos - it->offset;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, it->length - in_file));
        if (n > 0) fn(static_cast<size_t>(it - files_.begin()), in_file, done, n);
        done += n;
        ++it;
    }
}

void FileSetDevice::read(uint64_t offset, void* buf, size_t len) {
    for_range(offset, len, [&](size_t i, uint64_t in_file, size_t done, size_t n) {
        pread_all(fd_of(i), static_cast<uint8_t*>(buf) + done, n, in_file, files_[i].path);
    });
}

void FileSetDevice::write(uint64_t offset, const void* buf, size_t len) {
    if (!writable_) throw Error(ErrorKind::Io, "model " + dir_ + " is opened read-only");
    for_range(offset, len, [&](size_t i, uint64_t in_file, size_t done, size_t n) {
        pwrite_all(fd_of(i), static_cast<const uint8_t*>(buf) + done, n, in_file, files_[i].path);
        dirty_[i] = true;
    });
}

void FileSetDevice::sync() {
    for (size_t i = 0; i < files_.size(); ++i) {
        if (!dirty_[i]) continue;
        fsync_or_throw(fd_of(i), files_[i].path);
        dirty_[i] = false;
    }
}

} // namespace ota::models
