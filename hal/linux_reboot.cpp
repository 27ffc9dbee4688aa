#include "hal/linux_reboot.h"

#include "agent/common/error.h"

#include <cerrno>
#include <cstring>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ota::hal {

LinuxRebooter::LinuxRebooter(std::vector<std::string> command) : command_(std::move(command)) {}

void LinuxRebooter::reboot() {
    ::sync(); // the kernel does not flush page caches for reboot(2)
    if (command_.empty()) {
        if (::reboot(RB_AUTOBOOT) != 0)
            throw Error(ErrorKind::Io, std::string("reboot(2) failed: ") + std::strerror(errno));
        return;
    }
    std::vector<char*> argv;
    for (auto& arg : command_)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw Error(ErrorKind::Io, std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            throw Error(ErrorKind::Io, std::string("waitpid failed: ") + std::strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error(ErrorKind::Io,
                    "reboot command '" + command_[0] + "' failed (status " +
                        std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
}

} // namespace ota::hal
