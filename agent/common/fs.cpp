#include "fs.h"

#include "error.h"
#include "log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ota {

static Error io_error(const std::string& what) {
    return Error(ErrorKind::Io, what + ": " + std::strerror(errno));
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

UniqueFd open_or_throw(const std::string& path, int flags, int mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) throw io_error("cannot open " + path);
    return UniqueFd(fd);
}

void pread_all(int fd, void* buf, size_t size, uint64_t offset, const std::string& what) {
    auto* p = static_cast<uint8_t*>(buf);
    while (size > 0) {
        ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("read " + what);
        }
        if (n == 0) throw Error(ErrorKind::Io, "read " + what + ": unexpected end of file");
        p += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

void pwrite_all(int fd, const void* buf, size_t size, uint64_t offset, const std::string& what) {
    const auto* p = static_cast<const uint8_t*>(buf);
    while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("write " + what);
        }
        p += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

void write_all(int fd, const void* buf, size_t size, const std::string& what) {
    const auto* p = static_cast<const uint8_t*>(buf);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("write " + what);
        }
        p += n;
        size -= static_cast<size_t>(n);
    }
}

size_t read_full(int fd, void* buf, size_t size, const std::string& what) {
    auto* p = static_cast<uint8_t*>(buf);
    size_t total = 0;
    while (total < size) {
        ssize_t n = ::read(fd, p + total, size - total);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("read " + what);
        }
        if (n == 0) break;
        total += static_cast<size_t>(n);
    }
    return total;
}

void fsync_or_throw(int fd, const std::string& what) {
    if (::fsync(fd) != 0) throw io_error("fsync " + what);
}

// Reads the open file `fd` (named `path` in errors), refusing more than max_size bytes.
static std::string read_open_file(int fd, const std::string& path, uint64_t max_size) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("stat " + path);
    if (static_cast<uint64_t>(st.st_size) > max_size)
        throw Error(ErrorKind::TooLarge, path + " is " + std::to_string(st.st_size) +
                                             " bytes, more than the limit of " +
                                             std::to_string(max_size));
    std::string out;
    if (st.st_size == 0) {
        // procfs/sysfs files (/proc/cmdline) report size 0: read up to the limit instead.
        const uint64_t limit = std::min<uint64_t>(max_size, 1 << 20);
        out.resize(static_cast<size_t>(limit) + 1);
        size_t n = read_full(fd, out.data(), out.size(), path);
        if (n > limit)
            throw Error(ErrorKind::TooLarge,
                        path + " is more than the limit of " + std::to_string(limit) + " bytes");
        out.resize(n);
        return out;
    }
    out.resize(static_cast<size_t>(st.st_size));
    size_t n = read_full(fd, out.data(), out.size(), path);
    out.resize(n);
    return out;
}

std::string read_file(const std::string& path, uint64_t max_size) {
    UniqueFd fd = open_or_throw(path, O_RDONLY);
    return read_open_file(fd.get(), path, max_size);
}

std::string read_regular_file(const std::string& path, uint64_t max_size) {
    // O_NONBLOCK: opening a FIFO planted here must not wait for a writer.
    int raw = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (raw < 0) {
        if (errno == ELOOP)
            throw Error(ErrorKind::Io, path + " is a symbolic link; refusing to follow it");
        throw io_error("cannot open " + path);
    }
    UniqueFd fd(raw);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw io_error("stat " + path);
    if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::Io, path + " is not a regular file");
    return read_open_file(fd.get(), path, max_size);
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

uint64_t file_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw io_error("stat " + path);
    return static_cast<uint64_t>(st.st_size);
}

std::string parent_directory(const std::string& path) {
    auto pos = path.find_last_of('/');
    if (pos == std::string::npos) return ".";
    if (pos == 0) return "/";
    return path.substr(0, pos);
}

std::string join_path(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (a.back() == '/') return a + b;
    return a + "/" + b;
}

void fsync_directory(const std::string& dir) {
    UniqueFd fd = open_or_throw(dir, O_RDONLY | O_DIRECTORY);
    fsync_or_throw(fd.get(), "directory " + dir);
}

void fsync_path(const std::string& path) {
    UniqueFd fd = open_or_throw(path, O_RDONLY);
    fsync_or_throw(fd.get(), path);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
    const std::string tmp = path + ".tmp";
    {
        UniqueFd fd = open_or_throw(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        try {
            write_all(fd.get(), contents.data(), contents.size(), tmp);
            fsync_or_throw(fd.get(), tmp);
        } catch (...) {
            ::unlink(tmp.c_str()); // leave nothing half-written behind (e.g. on a full disk)
            throw;
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        Error e = io_error("rename " + tmp + " to " + path);
        ::unlink(tmp.c_str());
        throw e;
    }
    fsync_directory(parent_directory(path));
}

void make_directories(const std::string& path) {
    if (path.empty()) return;
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        partial = path.substr(0, pos);
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
            throw io_error("cannot create directory " + partial);
    }
}

void remove_file_durable(const std::string& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw io_error("cannot remove " + path);
    }
    fsync_directory(parent_directory(path));
}

void rename_durable(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) throw io_error("rename " + from + " to " + to);
    fsync_directory(parent_directory(to));
    if (parent_directory(from) != parent_directory(to)) fsync_directory(parent_directory(from));
}

DurableFile::DurableFile(std::string path, uint64_t max_size, Validator validate)
    : path_(std::move(path)), max_size_(max_size), validate_(std::move(validate)) {}

std::optional<std::string> DurableFile::read_valid(const std::string& file,
                                                   std::string* problem) const {
    problem->clear();
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
    try {
        std::string bytes = read_regular_file(file, max_size_);
        validate_(bytes);
        return bytes;
    } catch (const std::exception& e) {
        *problem = e.what();
        return std::nullopt;
    }
}

std::optional<DurableFile::Contents> DurableFile::load() const {
    std::string problem, backup_problem;
    if (auto bytes = read_valid(path_, &problem)) return Contents{std::move(*bytes), false};
    auto backup = read_valid(backup_path(), &backup_problem);
    if (backup) {
        LOG_WARN(path_ << (problem.empty() ? " is missing" : " is unusable (" + problem + ")")
                       << "; using its copy " << backup_path());
        return Contents{std::move(*backup), true};
    }
    if (problem.empty() && backup_problem.empty()) return std::nullopt; // neither exists
    throw Error(ErrorKind::Malformed,
                path_ + (problem.empty() ? " is missing" : " is unusable (" + problem + ")") +
                    ", and so is its copy " + backup_path() + " (" +
                    (backup_problem.empty() ? "missing" : backup_problem) +
                    "): restore one of them from a backup");
}

void DurableFile::store(const std::string& bytes) {
    validate_(bytes);
    // PATH first: it is what load() trusts, so a power cut before the copy is written leaves the
    // new contents in PATH and the previous ones in the copy, both usable.
    write_file_atomic(path_, bytes);
    write_file_atomic(backup_path(), bytes);
}

} // namespace ota
