#include "agent/common/process.h"

#include "agent/common/fs.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ota {

namespace {

// Reads what the pipe holds right now; *eof once every writer has closed it.
void read_available(int fd, std::string& out, size_t max, bool* eof) {
    char buf[4096];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            // Beyond the bound the bytes are still read, so the program never blocks on a full
            // pipe, but dropped.
            if (out.size() < max)
                out.append(buf, std::min(static_cast<size_t>(n), max - out.size()));
            continue;
        }
        if (n == 0) {
            *eof = true;
            return;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) *eof = true;
        return;
    }
}

// The spawn attributes and file actions, released however run_process leaves.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

} // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    ProcessResult result;
    if (argv.empty()) {
        result.output = "no command given";
        return result;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        result.output = std::string("cannot create a pipe: ") + std::strerror(errno);
        return result;
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);

    SpawnSetup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, write_end.get(), 1);
    if (options.capture_stderr)
        posix_spawn_file_actions_adddup2(&setup.actions, write_end.get(), 2);
    // Its own process group (so a timeout can kill everything it started), no blocked signals,
    // and default actions for the signals the agent handles or ignores.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD})
        sigaddset(&defaults, sig);
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setsigmask(&setup.attr, &none);
    posix_spawnattr_setsigdefault(&setup.attr, &defaults);
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e)
        envp.push_back(*e);
    for (const auto& e : options.extra_env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    pid_t pid = 0;
    const int rc =
        posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), envp.data());
    write_end = UniqueFd(); // only the child holds the write end now
    if (rc != 0) {
        result.output = "cannot run " + argv[0] + ": " + std::strerror(rc);
        return result;
    }
    result.started = true;

    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
    bool eof = false;
    int status = 0;
    bool status_known = true;
    while (true) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            status_known = false; // reaped by someone else (SIGCHLD ignored)
            break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            ::kill(-pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            if (!eof) read_available(read_end.get(), result.output, options.max_output, &eof);
            result.timed_out = true;
            return result;
        }
        // Output is read as it comes; the exit status is checked at least every 20 ms (there is
        // no portable way to poll for a child's exit together with a pipe).
        pollfd p{eof ? -1 : read_end.get(), POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 20)));
        if (!eof && p.revents)
            read_available(read_end.get(), result.output, options.max_output, &eof);
    }
    // What it wrote before exiting is in the pipe already; processes it left behind may keep the
    // pipe open, so this reads what is there without waiting for the end.
    if (!eof) read_available(read_end.get(), result.output, options.max_output, &eof);
    if (status_known && WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
    return result;
}

} // namespace ota
