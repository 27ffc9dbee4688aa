#include "hal/linux_reboot.h"

#include "agent/common/error.h"
#include "agent/common/process.h"

#include <cerrno>
#include <cstring>
#include <sys/reboot.h>
#include <unistd.h>

namespace ota::hal {

LinuxRebooter::LinuxRebooter(std::vector<std::string> command, std::function<void()> flush)
    : command_(std::move(command)), flush_(std::move(flush)) {
    if (!flush_) flush_ = [] { ::sync(); };
}

void LinuxRebooter::reboot() {
    flush_();
    if (command_.empty()) {
        if (::reboot(RB_AUTOBOOT) != 0)
            throw Error(ErrorKind::Io, std::string("reboot(2) failed: ") + std::strerror(errno));
        return;
    }
    ProcessOptions options;
    options.timeout_s = 60;
    options.max_output = 4096;
    ProcessResult r = run_process(command_, options);
    if (!r.ok())
        throw Error(ErrorKind::Io, "reboot command '" + command_[0] + "' failed (" +
                                       (!r.started    ? r.output
                                        : r.timed_out ? std::string("no answer within 60 s")
                                                      : "status " + std::to_string(r.exit_status)) +
                                       ")" +
                                       (r.started && !r.output.empty() ? ": " + r.output : ""));
}

} // namespace ota::hal
