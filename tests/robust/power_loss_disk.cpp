#include "robust/power_loss_disk.h"

#include "agent/common/fs.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ota::test {

namespace {

// One line from the daemon, or "" when it exited or stayed silent for two minutes (a hang guard,
// not a timing the test depends on).
std::string read_line(int fd) {
    std::string line;
    char c;
    while (true) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 120000) <= 0) return "";
        ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return "";
        if (c == '\n') return line;
        line += c;
    }
}

} // namespace

PowerLossDisk::PowerLossDisk(std::string dir)
    : dir_(std::move(dir)), backing_(dir_ + ".disk"), log_(dir_ + ".lossfs.log") {
    const std::string lossfs = built_program("ota-test-lossfs");
    if (!file_exists(lossfs))
        FAIL(lossfs << " was not built: install libfuse3-dev (scripts/install-deps.sh)");
    if (!file_exists("/dev/fuse")) FAIL("/dev/fuse is missing: the power-loss tests need FUSE");
    if (::geteuid() != 0) FAIL("the power-loss tests mount FUSE file systems: run them as root");
    make_directories(dir_);
    struct stat st {};
    REQUIRE(::stat(dir_.c_str(), &st) == 0);
    REQUIRE(::rename(dir_.c_str(), backing_.c_str()) == 0);
    REQUIRE(::mkdir(dir_.c_str(), st.st_mode & 07777) == 0);
    power_on();
}

PowerLossDisk::~PowerLossDisk() {
    if (!mounted()) return;
    try {
        cut(Cut::Drop);
    } catch (...) {
        // Already reported; make sure nothing stays mounted over the test folder.
        ::umount2(dir_.c_str(), MNT_DETACH);
    }
}

void PowerLossDisk::power_on() {
    REQUIRE_FALSE(mounted());
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    const std::string program = built_program("ota-test-lossfs");
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // dup2 onto the same number keeps O_CLOEXEC (the test may run with 0, 1 or 2 closed).
        auto become = [](int fd, int target) {
            if (fd == target)
                ::fcntl(fd, F_SETFD, 0);
            else if (fd >= 0)
                ::dup2(fd, target);
        };
        become(in[0], 0);
        become(out[1], 1);
        become(::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), 2);
        ::execl(program.c_str(), program.c_str(), backing_.c_str(), dir_.c_str(), nullptr);
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    pid_ = pid;
    to_fs_ = in[1];
    from_fs_ = out[0];
    if (read_line(from_fs_) == "ready") return;
    // It did not come up: reap it, so that nothing later talks to a dead daemon.
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    ::close(to_fs_);
    ::close(from_fs_);
    pid_ = -1;
    ::umount2(dir_.c_str(), MNT_DETACH);
    FAIL("ota-test-lossfs did not mount " << dir_ << " (exit status " << status << "), " << log());
}

void PowerLossDisk::cut(Cut how, uint64_t seed) {
    REQUIRE(mounted());
    const std::string command =
        how == Cut::Drop ? "cut drop\n" : "cut torn " + std::to_string(seed) + "\n";
    // A daemon that died must fail the test, not kill it with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    const bool sent =
        ::write(to_fs_, command.data(), command.size()) == static_cast<ssize_t>(command.size());
    const std::string reply = sent ? read_line(from_fs_) : "";
    ::close(to_fs_);
    ::close(from_fs_);
    int status = 0;
    if (reply != "cut") ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    // The daemon is gone, so the kernel has aborted the mount; detach what is left of it.
    const int rc = ::umount2(dir_.c_str(), MNT_DETACH);
    INFO("power cut of " << dir_ << ": ota-test-lossfs exit status " << status << ", " << log());
    REQUIRE(reply == "cut");
    REQUIRE(rc == 0);
}

std::string PowerLossDisk::log() const {
    return file_exists(log_) ? "its messages:\n" + read_all(log_) : "no messages";
}

} // namespace ota::test
