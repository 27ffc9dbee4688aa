// Files that must survive power loss. Atomic replacement = write a temporary file in the same
// directory, fsync it, rename over the target, fsync the directory.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ota {

// Reads a whole file, refusing files larger than max_size (Error TooLarge) so a hostile or corrupt
// file cannot make us allocate without bound.
std::string read_file(const std::string& path, uint64_t max_size);
// Like read_file, but refuses a symbolic link (O_NOFOLLOW) or anything but a regular file, so a
// link planted in place of the agent's own file cannot make it read another one.
std::string read_regular_file(const std::string& path, uint64_t max_size);
bool file_exists(const std::string& path);
uint64_t file_size(const std::string& path);

// Replaces path atomically and durably. The temporary file is new (see create_temporary_beside),
// so nothing someone planted at a predictable name is ever written through.
void write_file_atomic(const std::string& path, const std::string& contents);
void fsync_directory(const std::string& dir);
void fsync_path(const std::string& path);
// mkdir -p; each folder it creates is made durable (its parent fsynced).
void make_directories(const std::string& path);
// Unlinks path if present, then fsyncs its directory.
void remove_file_durable(const std::string& path);
// rename(2) plus fsync of the destination directory.
void rename_durable(const std::string& from, const std::string& to);
std::string parent_directory(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

// A file descriptor that closes itself.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    ~UniqueFd();
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

UniqueFd open_or_throw(const std::string& path, int flags, int mode = 0644);
// Creates a new file PATH.tmp.XXXXXXXX (random suffix), open for reading and writing, with
// O_CREAT|O_EXCL|O_NOFOLLOW: it never opens an existing file or follows a symbolic link.
// Leftovers of writers that died (older than a minute) are removed first. *tmp_path receives the
// name.
UniqueFd create_temporary_beside(const std::string& path, int mode, std::string* tmp_path);
void pread_all(int fd, void* buf, size_t size, uint64_t offset, const std::string& what);
void pwrite_all(int fd, const void* buf, size_t size, uint64_t offset, const std::string& what);
void write_all(int fd, const void* buf, size_t size, const std::string& what);
// Returns bytes read (< size only at end of file).
size_t read_full(int fd, void* buf, size_t size, const std::string& what);
void fsync_or_throw(int fd, const std::string& what);

// A small file that must survive corruption as well as power loss (the agent state, a trusted
// root): a second copy, PATH.bak, is written after PATH itself, each atomically and durably. So
// the copy holds the same bytes as PATH, or, only when power was lost between the two writes, the
// bytes before the last store(). load() falls back to the copy, with a warning, when PATH is
// missing or unusable.
class DurableFile {
public:
    // Throws (any exception; its what() is logged) when the bytes are unusable.
    using Validator = std::function<void(const std::string& bytes)>;
    DurableFile(std::string path, uint64_t max_size, Validator validate);

    struct Contents {
        std::string bytes;
        bool from_backup = false; // PATH was unusable: these are the copy's bytes
    };
    // nullopt when neither file exists; Error(Malformed) naming both files and what is wrong with
    // each when neither is usable.
    std::optional<Contents> load() const;
    // Refuses (throws what `validate` throws) bytes that could not be loaded back.
    void store(const std::string& bytes);

    const std::string& path() const { return path_; }
    std::string backup_path() const { return path_ + ".bak"; }

private:
    // The file's bytes when it exists and is valid; otherwise nullopt and *problem says why
    // ("" when it does not exist).
    std::optional<std::string> read_valid(const std::string& file, std::string* problem) const;

    std::string path_;
    uint64_t max_size_;
    Validator validate_;
};

} // namespace ota
