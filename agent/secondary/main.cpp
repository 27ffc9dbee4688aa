// ota-secondary: the Uptane secondary ECU's program (docs/uptane.md). It serves its primary over
// the secondary protocol (manifests/UPTANE-SECONDARY.md), verifies what it is sent, writes its
// inactive slot, switches when told and reports its version, signed with its own key.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/secondary/secondary_ecu.h"
#include "agent/secondary/server.h"
#include "agent/uptane/messages.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

namespace {

const char* kUsage = R"(usage: ota-secondary --config FILE COMMAND

  serve [--ready-file PATH]   check the last boot, then answer the primary (one connection at a
                              time) until SIGTERM or SIGINT; PATH receives the TCP port once
                              listening (for "listen": "HOST:0")
  boot-check                  only the boot check: commit an update after a good boot, or record
                              the fallback
  info                        this ECU's identity as JSON (serial, hardware id, verification mode,
                              public key): what the director and the primary register
  status                      the ECU's update state as JSON
)";

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
    g_stop = 1;
}

int run(int argc, char** argv) {
    std::string config_path, command, ready_file;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if ((a == "--config" || a == "--ready-file") && i + 1 < argc) {
            (a == "--config" ? config_path : ready_file) = argv[++i];
        } else if (command.empty() && a.rfind("--", 0) != 0) {
            command = a;
        } else {
            std::fprintf(stderr, "ota-secondary: unexpected argument %s\n%s", a.c_str(), kUsage);
            return 1;
        }
    }
    if (config_path.empty() || command.empty()) {
        std::fputs(kUsage, stderr);
        return 1;
    }
    ota::secondary::SecondaryEcu ecu(ota::secondary::load_config(config_path));
    if (command == "info") {
        std::cout << ota::uptane::info_to_json(ecu.info()).dump(1) << std::endl;
        return 0;
    }
    if (command == "status") {
        const std::string path = ota::join_path(ecu.config().state_dir, "state.json");
        std::cout << (ota::file_exists(path) ? ota::read_file(path, 1 << 20) : "{}\n");
        return 0;
    }
    if (command == "boot-check") {
        ecu.boot_check();
        return 0;
    }
    if (command == "serve") {
        struct sigaction sa {};
        sa.sa_handler = on_signal; // no SA_RESTART: accept() returns EINTR and the loop ends
        ::sigaction(SIGTERM, &sa, nullptr);
        ::sigaction(SIGINT, &sa, nullptr);
        std::signal(SIGPIPE, SIG_IGN);
        ecu.boot_check();
        ota::secondary::Server server(ecu, ecu.config().listen, ecu.config().timeout_s);
        LOG_INFO("ECU " << ecu.config().ecu_serial << " listening on port " << server.port());
        if (!ready_file.empty())
            ota::write_file_atomic(ready_file, std::to_string(server.port()) + "\n");
        server.run(g_stop);
        return 0;
    }
    std::fprintf(stderr, "ota-secondary: unknown command %s\n%s", command.c_str(), kUsage);
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const ota::Error& e) {
        std::fprintf(stderr, "ota-secondary: %s: %s\n", ota::error_kind_name(e.kind()), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ota-secondary: %s\n", e.what());
        return 1;
    }
}
