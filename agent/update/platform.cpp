#include "agent/update/platform.h"

#include "agent/common/error.h"
#include "hal/linux_reboot.h"
#include "hal/sim/simulated_ecu.h"
#include "hal/uboot_boot_control.h"

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace ota::update {

namespace {
class CommandRebooter : public hal::Rebooter {
public:
    explicit CommandRebooter(std::vector<std::string> argv) : argv_(std::move(argv)) {}
    void reboot() override {
        std::string out;
        if (run_hook(argv_, 60, &out) != 0)
            throw Error(ErrorKind::Io, "reboot command failed: " + out);
    }

private:
    std::vector<std::string> argv_;
};
} // namespace

Platform make_platform(const AgentConfig& config) {
    Platform p;
    if (config.bootloader.type == "sim") {
        auto ecu = hal::sim::SimulatedEcu::open(config.bootloader.sim_dir);
        p.boot = ecu.boot_control();
        p.rebooter = ecu.rebooter();
        for (const auto& slot : ecu.slots())
            p.slots[slot] = ecu.slot_device(slot);
    } else {
        auto env = std::make_shared<hal::UBootEnv>(
            hal::UBootEnv::from_config_file(config.bootloader.fw_env_config));
        hal::UBootBootControlOptions options;
        options.cmdline_path = config.bootloader.cmdline;
        options.slots.clear();
        for (const auto& [name, dev] : config.slots)
            options.slots.push_back(name);
        p.boot = std::make_unique<hal::UBootBootControl>(env, options);
        p.rebooter = std::make_unique<hal::LinuxRebooter>();
    }
    if (!config.slots.empty()) p.slots = config.slots;
    if (!config.reboot_command.empty())
        p.rebooter = std::make_unique<CommandRebooter>(config.reboot_command);
    return p;
}

int run_hook(const std::vector<std::string>& argv, int timeout_s, std::string* output,
             const std::vector<std::string>& extra_env) {
    if (argv.empty()) return 0;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e)
        envp.push_back(*e);
    for (const auto& e : extra_env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        if (output) *output = "cannot run " + argv[0];
        return -1;
    }
    std::string captured;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    bool timed_out = false;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pfd {
            pipefd[0], POLLIN, 0
        };
        int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno != EINTR) break;
        if (pr > 0) {
            char buf[4096];
            ssize_t n = ::read(pipefd[0], buf, sizeof buf);
            if (n <= 0) break; // EOF: the child closed its output
            if (captured.size() < 64 * 1024) captured.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(pipefd[0]);
    int status = 0;
    if (timed_out) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        if (output) *output = captured + "\n(timed out after " + std::to_string(timeout_s) + " s)";
        return -1;
    }
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (output) *output = captured;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return -1;
}

} // namespace ota::update
