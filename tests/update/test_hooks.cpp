// Hooks (health checks, reboot and vehicle-state commands) run through run_process: the program's
// exit status decides, not the end of its output; a timeout kills everything it started.
#include "agent/common/process.h"
#include "agent/update/hook_runner.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

using namespace ota;
using ota::test::TempDir;

namespace {

// True once `pid` no longer runs (gone, or a zombie waiting for its new parent to reap it).
bool process_ended(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, name, state;
    return stat >> pid_field >> name >> state && state == "Z";
}

pid_t read_pid(const std::string& file) {
    for (int i = 0; i < 500; ++i) {
        std::ifstream in(file);
        pid_t pid = 0;
        if (in >> pid && pid > 0) return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
}

} // namespace

TEST_CASE("a hook that leaves a process running behind it has succeeded when it exits 0") {
    TempDir dir;
    ProcessOptions o;
    o.timeout_s = 120; // the old runner waited for the end of the output: this long
    ProcessResult r = run_process(
        {"/bin/sh", "-c", "sleep 1000 & echo $! > '" + dir.file("pid") + "'; echo started; exit 0"},
        o);
    const pid_t daemon = read_pid(dir.file("pid"));
    CHECK(r.started);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_status == 0);
    CHECK(r.output == "started\n");
    // The process it started is not ours to stop.
    REQUIRE(daemon > 0);
    CHECK_FALSE(process_ended(daemon));
    ::kill(daemon, SIGKILL);
}

TEST_CASE("a hook's exit status is its result") {
    CHECK(run_process({"/bin/sh", "-c", "exit 0"}).ok());
    ProcessResult r = run_process({"/bin/sh", "-c", "echo unhealthy >&2; exit 3"});
    CHECK(r.exit_status == 3);
    CHECK(r.output == "unhealthy\n");
    r = run_process({"/bin/sh", "-c", "kill -9 $$"});
    CHECK(r.started);
    CHECK(r.exit_status == -1);
    r = run_process({"/nonexistent/health-check"});
    CHECK_FALSE(r.started);
    CHECK(r.output.find("cannot run /nonexistent/health-check") != std::string::npos);
    // Extra environment variables reach the program.
    ProcessOptions o;
    o.extra_env = {"OTA_MODEL_NAME=perception"};
    CHECK(run_process({"/bin/sh", "-c", "echo $OTA_MODEL_NAME"}, o).output == "perception\n");
    // stdin is /dev/null: a hook that reads it does not hang.
    CHECK(run_process({"/bin/sh", "-c", "cat"}).ok());
}

TEST_CASE("a hook that times out is killed with everything it started") {
    TempDir dir;
    ProcessOptions o;
    o.timeout_s = 1;
    ProcessResult r = run_process(
        {"/bin/sh", "-c", "sleep 1000 & echo $! > '" + dir.file("pid") + "'; echo waiting; wait"},
        o);
    CHECK(r.timed_out);
    CHECK(r.exit_status == -1);
    CHECK(r.output == "waiting\n");
    const pid_t child = read_pid(dir.file("pid"));
    REQUIRE(child > 0);
    // The grandchild got the group's SIGKILL too (its new parent may take a moment to reap it).
    bool ended = false;
    for (int i = 0; i < 1000 && !ended; ++i) {
        ended = process_ended(child);
        if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(ended);
    if (!ended) ::kill(child, SIGKILL);
}

TEST_CASE("a hook's captured output is bounded") {
    ProcessOptions o;
    o.max_output = 1000;
    // 8 MiB through the pipe: all of it is read (the writer never blocks), 1000 bytes are kept.
    ProcessResult r = run_process({"/bin/sh", "-c", "head -c 8388608 /dev/zero; echo done >&2"}, o);
    CHECK(r.ok());
    CHECK(r.output.size() == 1000);
}

TEST_CASE("the engine's hook runner: a health check that starts a daemon and exits 0 is healthy") {
    TempDir dir;
    update::ProcessHookRunner hooks;
    std::string out;
    // Before, the runner waited for the end of the output, which the daemon keeps open: the
    // check timed out and a healthy update was rolled back.
    CHECK(hooks.run({"/bin/sh", "-c", "sleep 1000 & echo $! > '" + dir.file("pid") + "'"}, 120,
                    &out));
    const pid_t daemon = read_pid(dir.file("pid"));
    REQUIRE(daemon > 0);
    ::kill(daemon, SIGKILL);
    CHECK_FALSE(hooks.run({"/bin/sh", "-c", "echo broken; exit 1"}, 10, &out));
    CHECK(out == "broken\n");
    CHECK_FALSE(hooks.run({"/bin/sh", "-c", "sleep 1000"}, 1, &out));
    CHECK(out.find("timed out after 1 s") != std::string::npos);
    CHECK(hooks.run({}, 10, &out)); // no health check configured: healthy
}
