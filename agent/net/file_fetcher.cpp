#include "agent/net/file_fetcher.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ota::net {

namespace {

constexpr size_t kPiece = 256u << 10;

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Opens the regular file a URL names; NotFound for anything else.
UniqueFd open_source(const std::string& url, const std::string& path, uint64_t* size) {
    // O_NONBLOCK: a FIFO must not block the agent; regular files ignore it.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR)
            throw Error(ErrorKind::NotFound, url + ": not found");
        throw Error(ErrorKind::Io, url + ": cannot open: " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw Error(ErrorKind::Io, url + ": cannot stat");
    if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::NotFound, url + ": not a regular file");
    *size = static_cast<uint64_t>(st.st_size);
    return fd;
}

// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
size_t pread_some(int fd, char* buf, size_t size, uint64_t offset, const std::string& what) {
    size_t got = 0;
    while (got < size) {
        const ssize_t n = ::pread(fd, buf + got, size - got, static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ErrorKind::Io, what + ": read failed: " + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    return got;
}

[[noreturn]] void too_large(const std::string& url, uint64_t max_length) {
    throw Error(ErrorKind::TooLarge, url + ": body exceeds the allowed length of " +
                                         std::to_string(max_length) + " bytes");
}

} // namespace

bool is_file_scheme(const std::string& url) {
    return url.rfind("file:", 0) == 0;
}

std::string file_url_path(const std::string& url) {
    auto bad = [&](const std::string& why) -> std::string {
        throw Error(ErrorKind::Config, url + ": " + why);
    };
    std::string rest;
    if (url.rfind("file://localhost/", 0) == 0)
        rest = url.substr(16);
    else if (url.rfind("file:///", 0) == 0)
        rest = url.substr(7);
    else
        return bad("only file:///absolute/path (or file://localhost/...) names a local file");
    if (rest.find_first_of("?#") != std::string::npos)
        return bad("a file URL has no query or fragment");
    std::string path;
    for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] != '%') {
            path += rest[i];
            continue;
        }
        const int hi = i + 2 < rest.size() ? hex_digit(rest[i + 1]) : -1;
        const int lo = i + 2 < rest.size() ? hex_digit(rest[i + 2]) : -1;
        if (hi < 0 || lo < 0) return bad("malformed %-escape");
        if (hi == 0 && lo == 0) return bad("%00 in a file URL");
        path += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return path;
}

std::string FileFetcher::fetch(const std::string& url, uint64_t max_length) {
    uint64_t size = 0;
    UniqueFd fd = open_source(url, file_url_path(url), &size);
    if (size > max_length) too_large(url, max_length);
    std::string body;
    body.reserve(static_cast<size_t>(size));
    std::vector<char> piece(kPiece);
    // Read to the end, not to the size stat() gave: the file may grow, and the bound must hold.
    for (;;) {
        const size_t n = read_full(fd.get(), piece.data(), piece.size(), url);
        if (n > max_length - body.size()) too_large(url, max_length);
        body.append(piece.data(), n);
        if (n < piece.size()) return body;
    }
}

void FileFetcher::fetch_to_file(const std::string& url, const std::string& path,
                                uint64_t max_length, bool resume, const ProgressFn& progress) {
    uint64_t size = 0;
    UniqueFd in = open_source(url, file_url_path(url), &size);
    if (size > max_length) too_large(url, max_length);
    uint64_t have = resume && file_exists(path) ? file_size(path) : 0;
    if (have > size) have = 0; // the source changed: start over, as for HTTP 416
    // Owner-only, never through a planted link: the source may be anything the URL names.
    UniqueFd out =
        open_or_throw(path, O_WRONLY | O_CREAT | O_NOFOLLOW | (have ? 0 : O_TRUNC), 0600);
    if (::fchmod(out.get(), 0600) != 0)
        throw Error(ErrorKind::Io, "chmod " + path + ": " + std::strerror(errno));
    if (have && ::ftruncate(out.get(), static_cast<off_t>(have)) != 0)
        throw Error(ErrorKind::Io, "cannot truncate " + path + ": " + std::strerror(errno));
    std::vector<char> piece(kPiece);
    uint64_t done = have;
    for (;;) {
        // One byte past the bound when near it, to tell a longer file from one that fits.
        const size_t want = max_length - done >= piece.size()
                                ? piece.size()
                                : static_cast<size_t>(max_length - done + 1);
        const size_t n = pread_some(in.get(), piece.data(), want, done, url);
        if (n > max_length - done) too_large(url, max_length);
        pwrite_all(out.get(), piece.data(), n, done, path);
        done += n;
        if (n > 0 && progress) progress(done, max_length);
        if (n < want) break;
    }
    fsync_or_throw(out.get(), path);
}

void FileFetcher::fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                              const RangeSink& sink) {
    uint64_t size = 0;
    UniqueFd in = open_source(url, file_url_path(url), &size);
    std::vector<uint8_t> piece(kPiece);
    for (uint64_t pos = offset; pos < end;) {
        if (sink.cancelled && sink.cancelled())
            throw Error(ErrorKind::State, url + ": transfer cancelled");
        const size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), end - pos));
        const size_t n =
            pread_some(in.get(), reinterpret_cast<char*>(piece.data()), want, pos, url);
        if (n == 0)
            throw Error(ErrorKind::Network, url + ": ends at byte " + std::to_string(pos) +
                                                ", expected " + std::to_string(end));
        sink.data(piece.data(), n);
        pos += n;
    }
}

} // namespace ota::net
