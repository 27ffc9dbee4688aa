#include "fs.h"

#include "error.h"
#include "log.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <dirent.h>
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

namespace {

// A temporary file younger than this may belong to a writer still at work in another process.
constexpr time_t kStaleTemporaryAgeSeconds = 60;

// Unique enough among the writers of one directory; O_EXCL guarantees the rest.
std::string temporary_suffix() {
    static std::atomic<uint64_t> counter{0};
    uint64_t x = static_cast<uint64_t>(::getpid()) << 32 ^ counter.fetch_add(1) ^
                 static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    // splitmix64 finaliser: spreads the bits so successive names differ everywhere.
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    static const char digits[] = "0123456789abcdef";
    std::string s(8, '0');
    for (auto& c : s) {
        c = digits[x & 15];
        x >>= 4;
    }
    return s;
}

// Removes PATH.tmp and PATH.tmp.* left by writers that died (a crash or power cut between
// creating the temporary file and renaming it), but none younger than a minute.
void remove_stale_temporaries(const std::string& path) {
    const std::string dir = parent_directory(path);
    const std::string prefix = path.substr(path.find_last_of('/') + 1) + ".tmp";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    const time_t now = ::time(nullptr);
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.compare(0, prefix.size(), prefix) != 0 ||
            (name.size() > prefix.size() && name[prefix.size()] != '.'))
            continue;
        const std::string leftover = join_path(dir, name);
        struct stat st {};
        if (::lstat(leftover.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
        if (st.st_mtime > now - kStaleTemporaryAgeSeconds) continue;
        if (::unlink(leftover.c_str()) == 0)
            LOG_INFO("removed " << leftover << ", left by an interrupted write");
    }
    ::closedir(d);
}

} // namespace

UniqueFd create_temporary_beside(const std::string& path, int mode, std::string* tmp_path) {
    remove_stale_temporaries(path);
    for (int attempt = 0;; ++attempt) {
        const std::string tmp = path + ".tmp." + temporary_suffix();
        int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            *tmp_path = tmp;
            return UniqueFd(fd);
        }
        if (errno != EEXIST || attempt == 100) throw io_error("cannot create " + tmp);
    }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
    std::string tmp;
    {
        UniqueFd fd = create_temporary_beside(path, 0644, &tmp);
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
        if (::mkdir(partial.c_str(), 0755) == 0) {
            // The new name is durable only once its parent is synced; without it a power cut
            // could take the folder and everything later stored in it.
            fsync_directory(parent_directory(partial));
        } else if (errno != EEXIST) {
            throw io_error("cannot create directory " + partial);
        }
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
        *problem = *e.what() ? e.what() : "unusable"; // never "": that means "does not exist"
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
