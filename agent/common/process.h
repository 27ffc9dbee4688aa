// Running a helper program (health checks, the reboot command, a vehicle-state command) with a
// time limit. The program runs in its own process group with stdin from /dev/null; its stdout and
// stderr are captured up to a bound. It has finished when it exits, not when its output closes: a
// health check may leave a daemon running behind it (`sh -c "daemon & exit 0"`), and that daemon
// is left alone. On timeout the whole group is killed, so nothing it started outlives it.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace ota {

struct ProcessOptions {
    int timeout_s = 60;
    std::vector<std::string> extra_env; // "NAME=value", added to the agent's environment
    size_t max_output = 64 * 1024;      // bytes of output kept; the rest is read and dropped
    bool capture_stderr = true; // false: only stdout is captured, stderr goes to the agent's
};

struct ProcessResult {
    bool started = false;   // false: the program could not be run (output says why)
    bool timed_out = false; // killed (with its process group) after timeout_s
    int exit_status = -1;   // 0-255 when it exited normally, else -1
    std::string output;     // stdout (and stderr), at most max_output bytes
    bool ok() const { return exit_status == 0; }
};

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

} // namespace ota
