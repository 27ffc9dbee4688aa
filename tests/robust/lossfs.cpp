// ota-test-lossfs: a FUSE file system for power-loss tests.
//
//   ota-test-lossfs BACKING MOUNTPOINT
//
// It serves the folder BACKING at MOUNTPOINT from memory and keeps, beside what programs see (the
// page cache, in effect), what a disk would still hold after losing power, by POSIX's rules that
// the agent relies on:
//   - a file's data, size and mode are durable as of its last fsync() or fdatasync();
//   - a folder's entries (create, unlink, rename, link, mkdir, rmdir, symlink) are durable as of
//     that folder's last fsync(): a new file's name needs its folder synced, a rename needs the
//     folder(s) of both names synced.
// Nothing else makes anything durable here (sync(2) does not reach a FUSE file system), so this
// is stricter than ext4, which also commits a new name with the file's own fsync.
//
// It prints "ready" once mounted and then reads commands on stdin:
//   cut drop        a power cut: every change not yet durable is lost
//   cut torn SEED   a power cut during writeback: each unsynced 4 KiB block of a file, the size
//                   and mode of each file, and the entries of each folder independently survive
//                   or not (pseudo-random from SEED)
// A cut writes what survives back to BACKING (replacing it), prints "cut" and exits without
// unmounting: the kernel aborts the mount, so no process gets another byte through. The caller
// then detaches the mount (umount -l) and starts the file system again on the same folder.
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

using Ino = uint64_t;
constexpr Ino kRoot = 1;
constexpr uint64_t kBlock = 4096;

enum class Kind { File, Dir, Symlink };

// A file's bytes as shared, immutable 4 KiB blocks (null = zeros): syncing a file copies block
// pointers, not bytes, and a write replaces only the blocks it touches.
struct Content {
    std::vector<std::shared_ptr<const std::string>> blocks; // each kBlock bytes long
    uint64_t size = 0;

    bool operator==(const Content& o) const { return size == o.size && blocks == o.blocks; }

    void resize(uint64_t new_size) {
        if (new_size < size && new_size % kBlock != 0) {
            // Bytes past the new end read as zeros if the file grows again.
            const uint64_t b = new_size / kBlock;
            if (b < blocks.size() && blocks[b]) {
                auto cut = std::make_shared<std::string>(*blocks[b]);
                std::fill(cut->begin() + static_cast<long>(new_size % kBlock), cut->end(), '\0');
                blocks[b] = cut;
            }
        }
        blocks.resize((new_size + kBlock - 1) / kBlock);
        size = new_size;
    }
    void write(uint64_t off, const char* buf, uint64_t len) {
        if (off + len > size) resize(off + len);
        while (len > 0) {
            const uint64_t b = off / kBlock, in = off % kBlock;
            const uint64_t n = std::min(len, kBlock - in);
            auto copy = blocks[b] ? std::make_shared<std::string>(*blocks[b])
                                  : std::make_shared<std::string>(kBlock, '\0');
            copy->replace(in, n, buf, n);
            blocks[b] = copy;
            off += n;
            buf += n;
            len -= n;
        }
    }
    uint64_t read(uint64_t off, char* buf, uint64_t len) const {
        if (off >= size) return 0;
        len = std::min(len, size - off);
        for (uint64_t done = 0; done < len;) {
            const uint64_t b = (off + done) / kBlock, in = (off + done) % kBlock;
            const uint64_t n = std::min(len - done, kBlock - in);
            if (blocks[b])
                std::memcpy(buf + done, blocks[b]->data() + in, n);
            else
                std::memset(buf + done, 0, n);
            done += n;
        }
        return len;
    }
};

struct Node {
    Kind kind = Kind::File;
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    timespec atime{}, mtime{}, ctime{};
    Content content;                    // file
    std::string target;                 // symlink (fixed at its creation)
    std::map<std::string, Ino> entries; // folder
    // What a power cut leaves.
    Content durable_content;
    mode_t durable_mode = 0;
    std::map<std::string, Ino> durable_entries;
    int links = 0;         // names in the current tree
    int durable_links = 0; // names in the durable tree
    int opens = 0;
    // Relative path in BACKING this node was loaded from while its durable state still equals
    // that file (a cut then links it instead of writing it again); "" otherwise.
    std::string pristine_backing;
};

std::mutex g_mutex;
std::unordered_map<Ino, Node> g_nodes;
Ino g_next = kRoot + 1;
std::string g_backing;

timespec now() {
    timespec t{};
    clock_gettime(CLOCK_REALTIME, &t);
    return t;
}

// ---- the current tree -------------------------------------------------------------------------

// The node at `path`, or -errno.
int64_t lookup(const char* path) {
    Ino ino = kRoot;
    std::istringstream parts(path);
    for (std::string part; std::getline(parts, part, '/');) {
        if (part.empty()) continue;
        Node& n = g_nodes.at(ino);
        if (n.kind != Kind::Dir) return -ENOTDIR;
        auto it = n.entries.find(part);
        if (it == n.entries.end()) return -ENOENT;
        ino = it->second;
    }
    return static_cast<int64_t>(ino);
}

// The folder holding `path` and the last name in it, or -errno.
int64_t lookup_parent(const char* path, std::string* name) {
    std::string p(path);
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    const auto slash = p.find_last_of('/');
    *name = p.substr(slash + 1);
    if (name->empty()) return -EINVAL;
    const std::string parent = slash == 0 ? "/" : p.substr(0, slash);
    int64_t ino = lookup(parent.c_str());
    if (ino < 0) return ino;
    if (g_nodes.at(static_cast<Ino>(ino)).kind != Kind::Dir) return -ENOTDIR;
    return ino;
}

// The node an operation is about: the open file when the kernel passes one, else the path.
int64_t target(const char* path, const fuse_file_info* fi) {
    if (fi && fi->fh) return static_cast<int64_t>(fi->fh);
    if (!path) return -EBADF;
    return lookup(path);
}

// Forgets a node nothing refers to any more: no name in either tree, not open.
void maybe_free(Ino ino) {
    auto it = g_nodes.find(ino);
    if (it == g_nodes.end() || ino == kRoot) return;
    const Node& n = it->second;
    if (n.links == 0 && n.durable_links == 0 && n.opens == 0) g_nodes.erase(it);
}

Ino new_node(Kind kind, mode_t mode) {
    const Ino ino = g_next++;
    Node& n = g_nodes[ino];
    n.kind = kind;
    n.mode = mode;
    n.durable_mode = mode; // the inode is born with its mode
    const fuse_context* ctx = fuse_get_context();
    n.uid = ctx ? ctx->uid : 0;
    n.gid = ctx ? ctx->gid : 0;
    n.atime = n.mtime = n.ctime = now();
    return ino;
}

void touch_dir(Node& dir) {
    dir.mtime = dir.ctime = now();
}

void add_entry(Ino dir, const std::string& name, Ino ino) {
    g_nodes.at(dir).entries[name] = ino;
    g_nodes.at(ino).links++;
    touch_dir(g_nodes.at(dir));
}

void remove_entry(Ino dir, const std::string& name) {
    Node& d = g_nodes.at(dir);
    const Ino ino = d.entries.at(name);
    d.entries.erase(name);
    g_nodes.at(ino).links--;
    touch_dir(d);
    maybe_free(ino);
}

void set_size(Node& n, uint64_t size) {
    if (size == n.content.size) return;
    n.content.resize(size);
    n.mtime = n.ctime = now();
}

// ---- durability -------------------------------------------------------------------------------

void sync_file(Node& n) {
    if (n.durable_content == n.content && n.durable_mode == n.mode) return;
    n.durable_content = n.content;
    n.durable_mode = n.mode;
    n.pristine_backing.clear();
}

void sync_dir(Ino ino) {
    Node& d = g_nodes.at(ino);
    std::vector<Ino> dropped;
    for (const auto& [name, child] : d.durable_entries) {
        g_nodes.at(child).durable_links--;
        dropped.push_back(child);
    }
    d.durable_entries = d.entries;
    for (const auto& [name, child] : d.durable_entries)
        g_nodes.at(child).durable_links++;
    d.durable_mode = d.mode;
    for (Ino child : dropped)
        maybe_free(child);
}

// ---- loading BACKING and writing back what survives a cut ---------------------------------------

Content read_whole(const std::string& path) {
    Content out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
        }
        if (n == 0) break;
        out.write(out.size, buf.data(), static_cast<uint64_t>(n));
    }
    ::close(fd);
    return out;
}

void fill_from_stat(Node& n, const struct stat& st) {
    n.mode = st.st_mode;
    n.durable_mode = st.st_mode;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.atime = st.st_atim;
    n.mtime = st.st_mtim;
    n.ctime = st.st_ctim;
}

// Everything under BACKING is durable: it is what the disk held when power came on.
void load_dir(Ino dir, const std::string& rel, std::map<ino_t, Ino>& seen) {
    const std::string abs = g_backing + rel;
    DIR* d = ::opendir(abs.c_str());
    if (!d) throw std::runtime_error("cannot list " + abs + ": " + std::strerror(errno));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
    for (const auto& name : names) {
        const std::string child_rel = rel + "/" + name;
        struct stat st {};
        if (::lstat((g_backing + child_rel).c_str(), &st) != 0) continue;
        Ino ino;
        auto again = seen.find(st.st_ino);
        if (again != seen.end() && !S_ISDIR(st.st_mode)) {
            ino = again->second; // a hard link
        } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) {
            ino = g_next++;
            Node& n = g_nodes[ino];
            fill_from_stat(n, st);
            if (S_ISREG(st.st_mode)) {
                n.kind = Kind::File;
                n.content = read_whole(g_backing + child_rel);
                n.durable_content = n.content;
                n.pristine_backing = child_rel;
            } else if (S_ISLNK(st.st_mode)) {
                n.kind = Kind::Symlink;
                char buf[4096];
                ssize_t len = ::readlink((g_backing + child_rel).c_str(), buf, sizeof buf);
                n.target.assign(buf, len > 0 ? static_cast<size_t>(len) : 0);
            } else {
                n.kind = Kind::Dir;
            }
            seen[st.st_ino] = ino;
            if (S_ISDIR(st.st_mode)) load_dir(ino, child_rel, seen);
        } else {
            std::fprintf(stderr, "ota-test-lossfs: ignoring %s (not a file, folder or link)\n",
                         child_rel.c_str());
            continue;
        }
        Node& parent = g_nodes.at(dir);
        parent.entries[name] = ino;
        parent.durable_entries[name] = ino;
        g_nodes.at(ino).links++;
        g_nodes.at(ino).durable_links++;
    }
}

void load_backing() {
    struct stat st {};
    if (::stat(g_backing.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error(g_backing + " is not a folder");
    Node& root = g_nodes[kRoot];
    root.kind = Kind::Dir;
    fill_from_stat(root, st);
    std::map<ino_t, Ino> seen;
    load_dir(kRoot, "", seen);
}

// How a cut treats what is not durable.
struct Survival {
    bool torn = false;
    std::mt19937_64 rng;
    bool coin() { return torn && (rng() & 1); }
};

// What of one file a power cut leaves: its durable state or, in a torn cut, the durable state
// with any of the unsynced changes (the new size or not, the new mode or not, each changed block
// or not).
Content surviving_content(const Node& n, Survival& s, mode_t* mode) {
    *mode = n.durable_mode;
    if (!s.torn || (n.durable_content == n.content && n.durable_mode == n.mode))
        return n.durable_content;
    Content out = n.durable_content;
    if (s.coin()) out.resize(n.content.size);
    if (s.coin()) *mode = n.mode;
    for (size_t b = 0; b < out.blocks.size() && b < n.content.blocks.size(); ++b)
        if (out.blocks[b] != n.content.blocks[b] && s.coin()) out.blocks[b] = n.content.blocks[b];
    return out; // bytes past out.size are never written back
}

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what + ": " + std::strerror(errno));
}

void set_owner_and_times(const std::string& path, const Node& n) {
    check(::lchown(path.c_str(), n.uid, n.gid) == 0, "chown " + path);
    const timespec times[2] = {n.atime, n.mtime};
    check(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0, "utimes " + path);
}

void write_surviving_dir(Ino dir, const std::string& out, Survival& s,
                         std::map<Ino, std::string>& written, std::set<Ino>& dirs_written) {
    const Node& d = g_nodes.at(dir);
    const auto& entries = s.coin() ? d.entries : d.durable_entries;
    for (const auto& [name, ino] : entries) {
        const Node& n = g_nodes.at(ino);
        const std::string path = out + "/" + name;
        auto again = written.find(ino);
        if (again != written.end()) { // a second name of the same file
            check(::link(again->second.c_str(), path.c_str()) == 0, "link " + path);
            continue;
        }
        if (n.kind == Kind::Dir) {
            // A folder reached twice (a rename across folders that survived on both sides)
            // keeps its first name.
            if (!dirs_written.insert(ino).second) continue;
            check(::mkdir(path.c_str(), n.durable_mode & 07777) == 0, "mkdir " + path);
            write_surviving_dir(ino, path, s, written, dirs_written);
            check(::chmod(path.c_str(), n.durable_mode & 07777) == 0, "chmod " + path);
            set_owner_and_times(path, n);
            continue;
        }
        if (n.kind == Kind::Symlink) {
            check(::symlink(n.target.c_str(), path.c_str()) == 0, "symlink " + path);
        } else {
            mode_t mode = 0;
            const Content content = surviving_content(n, s, &mode);
            if (content == n.durable_content && mode == n.durable_mode &&
                !n.pristine_backing.empty() &&
                ::link((g_backing + n.pristine_backing).c_str(), path.c_str()) == 0) {
                written[ino] = path;
                continue;
            }
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            check(fd >= 0, "create " + path);
            std::vector<char> buf(1 << 20);
            for (uint64_t off = 0; off < content.size;) {
                const uint64_t n_read = content.read(off, buf.data(), buf.size());
                check(::pwrite(fd, buf.data(), n_read, static_cast<off_t>(off)) ==
                          static_cast<ssize_t>(n_read),
                      "write " + path);
                off += n_read;
            }
            ::close(fd);
            check(::chmod(path.c_str(), mode & 07777) == 0, "chmod " + path);
        }
        set_owner_and_times(path, n);
        written[ino] = path;
    }
}

// Replaces BACKING with what the cut leaves.
void write_back(Survival& s) {
    namespace fs = std::filesystem;
    const std::string next = g_backing + ".next", old = g_backing + ".old";
    fs::remove_all(next);
    fs::remove_all(old);
    const Node& root = g_nodes.at(kRoot);
    check(::mkdir(next.c_str(), 0700) == 0, "mkdir " + next);
    std::map<Ino, std::string> written;
    std::set<Ino> dirs_written{kRoot};
    write_surviving_dir(kRoot, next, s, written, dirs_written);
    check(::chmod(next.c_str(), root.durable_mode & 07777) == 0, "chmod " + next);
    set_owner_and_times(next, root);
    check(::rename(g_backing.c_str(), old.c_str()) == 0, "rename " + g_backing);
    check(::rename(next.c_str(), g_backing.c_str()) == 0, "rename " + next);
    fs::remove_all(old);
}

// ---- FUSE operations ------------------------------------------------------------------------

#define LOCKED std::lock_guard<std::mutex> lock_(g_mutex)
#define NODE_OR_RETURN(var, expr)                                                                  \
    int64_t var##_ino = (expr);                                                                    \
    if (var##_ino < 0) return static_cast<int>(var##_ino);                                         \
    Node& var = g_nodes.at(static_cast<Ino>(var##_ino))

void* op_init(fuse_conn_info* conn, fuse_config* cfg) {
    // Every lookup and attribute read comes here: the kernel must not answer from a cache.
    cfg->use_ino = 1;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    // Write-through: each write(2) reaches this process before it returns.
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    return nullptr;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, target(path, fi));
    std::memset(st, 0, sizeof *st);
    st->st_ino = static_cast<ino_t>(n_ino);
    st->st_mode = n.mode;
    st->st_uid = n.uid;
    st->st_gid = n.gid;
    st->st_size = static_cast<off_t>(n.kind == Kind::Dir       ? 4096
                                     : n.kind == Kind::Symlink ? n.target.size()
                                                               : n.content.size);
    st->st_blksize = kBlock;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = n.atime;
    st->st_mtim = n.mtime;
    st->st_ctim = n.ctime;
    if (n.kind == Kind::Dir) {
        nlink_t subdirs = 0;
        for (const auto& [name, child] : n.entries)
            subdirs += g_nodes.at(child).kind == Kind::Dir;
        st->st_nlink = 2 + subdirs;
    } else {
        st->st_nlink = static_cast<nlink_t>(n.links);
    }
    return 0;
}

int op_readlink(const char* path, char* buf, size_t size) {
    LOCKED;
    NODE_OR_RETURN(n, lookup(path));
    if (n.kind != Kind::Symlink) return -EINVAL;
    if (size == 0) return -EINVAL;
    const size_t len = std::min(size - 1, n.target.size());
    std::memcpy(buf, n.target.data(), len);
    buf[len] = '\0';
    return 0;
}

int make(const char* path, Kind kind, mode_t mode, Ino* created) {
    std::string name;
    int64_t parent = lookup_parent(path, &name);
    if (parent < 0) return static_cast<int>(parent);
    if (g_nodes.at(static_cast<Ino>(parent)).entries.count(name)) return -EEXIST;
    *created = new_node(kind, mode);
    add_entry(static_cast<Ino>(parent), name, *created);
    return 0;
}

int op_mkdir(const char* path, mode_t mode) {
    LOCKED;
    Ino ino;
    return make(path, Kind::Dir, mode | S_IFDIR, &ino);
}

int op_symlink(const char* to, const char* path) {
    LOCKED;
    Ino ino;
    int rc = make(path, Kind::Symlink, S_IFLNK | 0777, &ino);
    if (rc == 0) g_nodes.at(ino).target = to;
    return rc;
}

int op_unlink(const char* path) {
    LOCKED;
    std::string name;
    int64_t parent = lookup_parent(path, &name);
    if (parent < 0) return static_cast<int>(parent);
    Node& d = g_nodes.at(static_cast<Ino>(parent));
    auto it = d.entries.find(name);
    if (it == d.entries.end()) return -ENOENT;
    if (g_nodes.at(it->second).kind == Kind::Dir) return -EISDIR;
    remove_entry(static_cast<Ino>(parent), name);
    return 0;
}

int op_rmdir(const char* path) {
    LOCKED;
    std::string name;
    int64_t parent = lookup_parent(path, &name);
    if (parent < 0) return static_cast<int>(parent);
    Node& d = g_nodes.at(static_cast<Ino>(parent));
    auto it = d.entries.find(name);
    if (it == d.entries.end()) return -ENOENT;
    const Node& victim = g_nodes.at(it->second);
    if (victim.kind != Kind::Dir) return -ENOTDIR;
    if (!victim.entries.empty()) return -ENOTEMPTY;
    remove_entry(static_cast<Ino>(parent), name);
    return 0;
}

int op_rename(const char* from, const char* to, unsigned int flags) {
    LOCKED;
    if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
    std::string from_name, to_name;
    int64_t from_dir = lookup_parent(from, &from_name);
    if (from_dir < 0) return static_cast<int>(from_dir);
    int64_t to_dir = lookup_parent(to, &to_name);
    if (to_dir < 0) return static_cast<int>(to_dir);
    Node& fd = g_nodes.at(static_cast<Ino>(from_dir));
    Node& td = g_nodes.at(static_cast<Ino>(to_dir));
    auto src = fd.entries.find(from_name);
    if (src == fd.entries.end()) return -ENOENT;
    const Ino moving = src->second;
    auto dst = td.entries.find(to_name);
    if (flags & RENAME_EXCHANGE) {
        if (dst == td.entries.end()) return -ENOENT;
        std::swap(src->second, dst->second);
        touch_dir(fd);
        touch_dir(td);
        return 0;
    }
    if (dst != td.entries.end()) {
        if (flags & RENAME_NOREPLACE) return -EEXIST;
        if (dst->second == moving) return 0; // two names of one file: nothing to do
        const Node& old = g_nodes.at(dst->second);
        const bool moving_dir = g_nodes.at(moving).kind == Kind::Dir;
        if (old.kind == Kind::Dir && !moving_dir) return -EISDIR;
        if (old.kind != Kind::Dir && moving_dir) return -ENOTDIR;
        if (old.kind == Kind::Dir && !old.entries.empty()) return -ENOTEMPTY;
        remove_entry(static_cast<Ino>(to_dir), to_name);
    }
    g_nodes.at(moving).links++; // held while it has no name
    remove_entry(static_cast<Ino>(from_dir), from_name);
    g_nodes.at(moving).links--;
    add_entry(static_cast<Ino>(to_dir), to_name, moving);
    return 0;
}

int op_link(const char* from, const char* to) {
    LOCKED;
    NODE_OR_RETURN(n, lookup(from));
    if (n.kind == Kind::Dir) return -EPERM;
    std::string name;
    int64_t parent = lookup_parent(to, &name);
    if (parent < 0) return static_cast<int>(parent);
    if (g_nodes.at(static_cast<Ino>(parent)).entries.count(name)) return -EEXIST;
    add_entry(static_cast<Ino>(parent), name, static_cast<Ino>(n_ino));
    n.ctime = now();
    return 0;
}

int op_chmod(const char* path, mode_t mode, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, target(path, fi));
    n.mode = (n.mode & S_IFMT) | (mode & 07777);
    n.ctime = now();
    return 0;
}

int op_chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, target(path, fi));
    if (uid != static_cast<uid_t>(-1)) n.uid = uid;
    if (gid != static_cast<gid_t>(-1)) n.gid = gid;
    n.ctime = now();
    return 0;
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, target(path, fi));
    if (n.kind == Kind::Dir) return -EISDIR;
    if (size < 0) return -EINVAL;
    set_size(n, static_cast<uint64_t>(size));
    return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, lookup(path));
    if (n.kind == Kind::Dir) return -EISDIR;
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) set_size(n, 0);
    n.opens++;
    fi->fh = static_cast<uint64_t>(n_ino);
    return 0;
}

int op_create(const char* path, mode_t mode, fuse_file_info* fi) {
    LOCKED;
    std::string name;
    int64_t parent = lookup_parent(path, &name);
    if (parent < 0) return static_cast<int>(parent);
    Node& d = g_nodes.at(static_cast<Ino>(parent));
    Ino ino;
    auto it = d.entries.find(name);
    if (it != d.entries.end()) {
        if (fi->flags & O_EXCL) return -EEXIST;
        ino = it->second;
        if (fi->flags & O_TRUNC) set_size(g_nodes.at(ino), 0);
    } else {
        ino = new_node(Kind::File, mode | S_IFREG);
        add_entry(static_cast<Ino>(parent), name, ino);
    }
    g_nodes.at(ino).opens++;
    fi->fh = ino;
    return 0;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    LOCKED;
    auto it = g_nodes.find(fi->fh);
    if (it == g_nodes.end()) return -EBADF;
    if (off < 0) return -EINVAL;
    return static_cast<int>(it->second.content.read(static_cast<uint64_t>(off), buf, size));
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    LOCKED;
    auto it = g_nodes.find(fi->fh);
    if (it == g_nodes.end()) return -EBADF;
    Node& n = it->second;
    if (off < 0) return -EINVAL;
    n.content.write(static_cast<uint64_t>(off), buf, size);
    n.mtime = n.ctime = now();
    return static_cast<int>(size);
}

int op_statfs(const char*, struct statvfs* st) {
    return ::statvfs(g_backing.c_str(), st) == 0 ? 0 : -errno;
}

int op_release(const char*, fuse_file_info* fi) {
    LOCKED;
    auto it = g_nodes.find(fi->fh);
    if (it == g_nodes.end()) return 0;
    it->second.opens--;
    maybe_free(fi->fh);
    return 0;
}

int op_fsync(const char*, int, fuse_file_info* fi) {
    LOCKED;
    auto it = g_nodes.find(fi->fh);
    if (it == g_nodes.end()) return -EBADF;
    sync_file(it->second);
    return 0;
}

int op_opendir(const char* path, fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, lookup(path));
    if (n.kind != Kind::Dir) return -ENOTDIR;
    n.opens++;
    fi->fh = static_cast<uint64_t>(n_ino);
    return 0;
}

int op_readdir(const char*, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi,
               fuse_readdir_flags) {
    LOCKED;
    auto it = g_nodes.find(fi->fh);
    if (it == g_nodes.end()) return -EBADF;
    fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (const auto& [name, child] : it->second.entries) {
        struct stat st {};
        st.st_ino = static_cast<ino_t>(child);
        st.st_mode = g_nodes.at(child).mode;
        fill(buf, name.c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0));
    }
    return 0;
}

int op_releasedir(const char*, fuse_file_info* fi) {
    return op_release(nullptr, fi);
}

int op_fsyncdir(const char*, int, fuse_file_info* fi) {
    LOCKED;
    if (!g_nodes.count(fi->fh)) return -EBADF;
    sync_dir(fi->fh);
    return 0;
}

int op_utimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
    LOCKED;
    NODE_OR_RETURN(n, target(path, fi));
    const timespec t = now();
    auto pick = [&](const timespec& v) { return v.tv_nsec == UTIME_NOW ? t : v; };
    if (tv[0].tv_nsec != UTIME_OMIT) n.atime = pick(tv[0]);
    if (tv[1].tv_nsec != UTIME_OMIT) n.mtime = pick(tv[1]);
    n.ctime = t;
    return 0;
}

// ---- control ----------------------------------------------------------------------------------

[[noreturn]] void control_loop() {
    for (std::string line; std::getline(std::cin, line);) {
        std::istringstream words(line);
        std::string verb, how;
        uint64_t seed = 0;
        words >> verb >> how >> seed;
        if (verb != "cut" || (how != "drop" && how != "torn")) {
            std::fprintf(stderr, "ota-test-lossfs: unknown command: %s\n", line.c_str());
            continue;
        }
        std::lock_guard<std::mutex> lock(g_mutex); // no request is served from here on
        Survival s;
        s.torn = how == "torn";
        s.rng.seed(seed);
        try {
            write_back(s);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ota-test-lossfs: cut failed: %s\n", e.what());
            std::fflush(stderr);
            ::_exit(2);
        }
        std::printf("cut\n");
        std::fflush(stdout);
        ::_exit(0); // closing /dev/fuse aborts the mount
    }
    ::_exit(1); // the test went away
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: ota-test-lossfs BACKING MOUNTPOINT\n");
        return 1;
    }
    g_backing = argv[1];
    try {
        load_backing();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ota-test-lossfs: %s\n", e.what());
        return 1;
    }
    fuse_operations ops{};
    ops.init = op_init;
    ops.getattr = op_getattr;
    ops.readlink = op_readlink;
    ops.mkdir = op_mkdir;
    ops.symlink = op_symlink;
    ops.unlink = op_unlink;
    ops.rmdir = op_rmdir;
    ops.rename = op_rename;
    ops.link = op_link;
    ops.chmod = op_chmod;
    ops.chown = op_chown;
    ops.truncate = op_truncate;
    ops.open = op_open;
    ops.create = op_create;
    ops.read = op_read;
    ops.write = op_write;
    ops.statfs = op_statfs;
    ops.release = op_release;
    ops.fsync = op_fsync;
    ops.opendir = op_opendir;
    ops.readdir = op_readdir;
    ops.releasedir = op_releasedir;
    ops.fsyncdir = op_fsyncdir;
    ops.utimens = op_utimens;

    char arg0[] = "ota-test-lossfs", o[] = "-o", opts[] = "fsname=lossfs,subtype=lossfs";
    char* args_v[] = {arg0, o, opts};
    fuse_args args = FUSE_ARGS_INIT(3, args_v);
    fuse* f = fuse_new(&args, &ops, sizeof ops, nullptr);
    fuse_opt_free_args(&args);
    if (!f) return 1;
    if (fuse_mount(f, argv[2]) != 0) {
        std::fprintf(stderr, "ota-test-lossfs: cannot mount on %s\n", argv[2]);
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    std::thread(control_loop).detach();
    const int rc = fuse_loop(f); // single-threaded: requests are served in order
    // Unmounted from outside: nothing to write back. _exit: the control thread still waits on
    // stdin.
    fuse_unmount(f);
    fuse_destroy(f);
    ::_exit(rc == 0 ? 0 : 1);
}
