// lossfs-probe: writes a file in one of the ways a program can get durability right or wrong, so
// the power-loss tests can show what a cut keeps of each.
//
//   lossfs-probe atomic FILE TEXT               write FILE.new, fsync it, rename, fsync the folder
//   lossfs-probe rename-unsynced FILE TEXT      the same without the file's fsync
//   lossfs-probe no-dir-fsync FILE TEXT         the same without the folder's fsync
//   lossfs-probe overwrite-unsynced FILE TEXT   TEXT written over FILE in place, never synced
//   lossfs-probe mkdir-unsynced DIR TEXT        DIR/file written and synced, DIR synced, but not
//                                               DIR's parent
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

void check(bool ok, const std::string& what) {
    if (ok) return;
    std::fprintf(stderr, "lossfs-probe: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::string parent(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

void fsync_path(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    check(fd >= 0, "open " + path);
    check(::fsync(fd) == 0, "fsync " + path);
    ::close(fd);
}

void write_file(const std::string& path, const std::string& text, int flags, bool sync) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644);
    check(fd >= 0, "open " + path);
    check(::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()),
          "write " + path);
    if (sync) check(::fsync(fd) == 0, "fsync " + path);
    ::close(fd);
}

void replace(const std::string& file, const std::string& text, bool sync_file, bool sync_dir) {
    const std::string tmp = file + ".new";
    write_file(tmp, text, O_CREAT | O_TRUNC, sync_file);
    check(::rename(tmp.c_str(), file.c_str()) == 0, "rename " + tmp);
    if (sync_dir) fsync_path(parent(file), O_RDONLY | O_DIRECTORY);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: lossfs-probe MODE FILE TEXT\n");
        return 2;
    }
    const std::string mode = argv[1], file = argv[2], text = argv[3];
    if (mode == "atomic") {
        replace(file, text, true, true);
    } else if (mode == "rename-unsynced") {
        replace(file, text, false, true);
    } else if (mode == "no-dir-fsync") {
        replace(file, text, true, false);
    } else if (mode == "overwrite-unsynced") {
        write_file(file, text, 0, false);
    } else if (mode == "mkdir-unsynced") {
        check(::mkdir(file.c_str(), 0755) == 0, "mkdir " + file);
        write_file(file + "/file", text, O_CREAT | O_TRUNC, true);
        fsync_path(file, O_RDONLY | O_DIRECTORY);
    } else {
        std::fprintf(stderr, "lossfs-probe: unknown mode %s\n", mode.c_str());
        return 2;
    }
    return 0;
}
