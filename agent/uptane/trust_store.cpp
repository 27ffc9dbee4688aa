#include "agent/uptane/trust_store.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ota::uptane {

namespace {

constexpr const char* kLink = "current";
constexpr uint64_t kMaxTrustedFile = 64ull << 20;

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw Error(ErrorKind::Io, "cannot open folder " + dir + ": " + std::strerror(errno));
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    return out;
}

uint64_t generation_number(const std::string& name) {
    if (name.rfind("gen-", 0) != 0 || name.size() <= 4 || name.size() > 4 + 18) return 0;
    const std::string digits = name.substr(4);
    if (digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoull(digits);
}

} // namespace

void remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw Error(ErrorKind::Io, "cannot stat " + path + ": " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        for (const auto& n : entries(path))
            remove_tree(join_path(path, n));
        if (::rmdir(path.c_str()) != 0)
            throw Error(ErrorKind::Io, "cannot remove " + path + ": " + std::strerror(errno));
    } else if (::unlink(path.c_str()) != 0) {
        throw Error(ErrorKind::Io, "cannot remove " + path + ": " + std::strerror(errno));
    }
}

void copy_tree(const std::string& from, const std::string& to) {
    make_directories(to);
    for (const auto& n : entries(from)) {
        const std::string src = join_path(from, n), dst = join_path(to, n);
        struct stat st {};
        if (::lstat(src.c_str(), &st) != 0)
            throw Error(ErrorKind::Io, "cannot stat " + src + ": " + std::strerror(errno));
        if (S_ISDIR(st.st_mode))
            copy_tree(src, dst);
        else if (S_ISREG(st.st_mode) && n.size() > 0 &&
                 !(n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0))
            write_file_atomic(dst, read_file(src, kMaxTrustedFile));
    }
    fsync_directory(to);
}

TrustStore::TrustStore(std::string dir) : dir_(std::move(dir)) {
    make_directories(dir_);
    std::string live = link_target();
    if (live.empty()) {
        make_directories(join_path(dir_, "gen-1"));
        commit(join_path(dir_, "gen-1"));
        live = "gen-1";
    }
    for (const auto& n : entries(dir_))
        if (n != kLink && n != live) remove_tree(join_path(dir_, n));
}

std::string TrustStore::link_target() const {
    char buf[256];
    const std::string link = join_path(dir_, kLink);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0) {
        if (errno == ENOENT) return "";
        throw Error(ErrorKind::Io, "cannot read link " + link + ": " + std::strerror(errno));
    }
    std::string target(buf, static_cast<size_t>(n));
    if (generation_number(target) == 0)
        throw Error(ErrorKind::Io, link + " points to " + target + ", not a generation folder");
    return target;
}

std::string TrustStore::current() const {
    return join_path(dir_, link_target());
}

std::string TrustStore::stage() {
    const std::string next = "gen-" + std::to_string(generation_number(link_target()) + 1);
    const std::string path = join_path(dir_, next);
    remove_tree(path);
    copy_tree(current(), path);
    return path;
}

void TrustStore::commit(const std::string& staged) {
    const std::string name = staged.substr(staged.find_last_of('/') + 1);
    if (generation_number(name) == 0 || parent_directory(staged) != dir_)
        throw Error(ErrorKind::State, staged + " is not a generation of " + dir_);
    fsync_directory(staged);
    const std::string old = link_target();
    const std::string tmp_link = join_path(dir_, "current.tmp");
    ::unlink(tmp_link.c_str());
    if (::symlink(name.c_str(), tmp_link.c_str()) != 0)
        throw Error(ErrorKind::Io, "cannot create " + tmp_link + ": " + std::strerror(errno));
    rename_durable(tmp_link, join_path(dir_, kLink));
    if (!old.empty() && old != name) remove_tree(join_path(dir_, old));
}

void TrustStore::discard(const std::string& staged) {
    if (staged != current()) remove_tree(staged);
}

} // namespace ota::uptane
