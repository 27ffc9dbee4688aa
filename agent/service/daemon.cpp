#include "agent/service/daemon.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/net/curl_fetcher.h"
#include "agent/net/transport_files.h"
#include "agent/service/control_socket.h"
#include "agent/service/report.h"
#include "agent/update/dir_safety.h"
#include "agent/update/gating.h"
#include "agent/update/platform.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ota::service {

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
    throw Error(ErrorKind::Config, "configuration: \"" + key + "\" " + why);
}

bool is_dir(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void check_command(const std::string& key, const std::vector<std::string>& argv) {
    if (argv.empty()) return;
    const std::string& exe = argv[0];
    if (exe.find('/') != std::string::npos && ::access(exe.c_str(), X_OK) != 0)
        bad(key, "names " + exe + ", which is not an executable file");
}

std::atomic<bool>* g_stop = nullptr;
extern "C" void on_signal(int) {
    if (g_stop) g_stop->store(true);
}

} // namespace

void validate_runtime(const update::AgentConfig& c) {
    net::check_transport_files(c.transport);
    if (!c.control_socket.empty()) control_options(c); // the command group exists
    if (c.uptane_config.empty() && !file_exists(c.trusted_root) &&
        !file_exists(join_path(c.metadata_dir(), "root.json")))
        bad("trusted_root", "names " + c.trusted_root + ", which does not exist");
    try {
        make_directories(c.state_dir);
    } catch (const Error& e) {
        bad("state_dir", std::string("cannot be created: ") + e.what());
    }
    if (::access(c.state_dir.c_str(), W_OK) != 0)
        bad("state_dir", "is not writable: " + c.state_dir);
    if (!file_exists(c.bootloader.fw_env_config))
        bad("bootloader.fw_env_config",
            "names " + c.bootloader.fw_env_config + ", which does not exist");
    for (const auto& [slot, dev] : c.slots)
        if (!file_exists(dev)) bad("slots." + slot, "names " + dev + ", which does not exist");
    check_command("health_check", c.health_check);
    check_command("reboot_command", c.reboot_command);
    if (!c.models.store.empty()) {
        try {
            make_directories(c.models.store);
        } catch (const Error& e) {
            bad("models.store", std::string("cannot be created: ") + e.what());
        }
        for (const auto& [name, m] : c.models.models)
            check_command("models.components." + name + ".health_check", m.health_check);
    }
    update::require_private_directories(c);
    if (c.vehicle.type == "file" && !is_dir(parent_directory(c.vehicle.file)))
        bad("vehicle.file", "is in a folder that does not exist: " + c.vehicle.file);
    check_command("vehicle.command", c.vehicle.command);
    if (!c.control_socket.empty() && !is_dir(parent_directory(c.control_socket)))
        bad("control_socket", "is in a folder that does not exist: " + c.control_socket);
    if (!c.report.url.empty()) {
        std::string pem;
        try {
            pem = read_file(c.report.device_key, 64 * 1024);
        } catch (const Error& e) {
            bad("report.device_key", std::string("cannot be read: ") + e.what());
        }
        try {
            SigningKey key = SigningKey::from_pem(pem);
            if (key.scheme() != kSchemeEcdsaP256)
                bad("report.device_key", "must be an ECDSA P-256 key, not " + key.scheme());
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Config) throw;
            bad("report.device_key", std::string("is not a PEM private key: ") + e.what());
        }
    }
}

bool run_daemon_step(const std::string& name, const std::function<void()>& step,
                     update::Engine& engine, const update::EventSink& sink) {
    std::string what;
    try {
        step();
        return true;
    } catch (const Error& e) {
        what = std::string(e.what()) + " [" + error_kind_name(e.kind()) + "]";
    } catch (const std::exception& e) {
        what = e.what();
    }
    LOG_ERROR(name << " failed: " << what);
    if (sink) sink(update::Event{"error", name + " failed: " + what, 0, 0});
    try {
        engine.record_failure(name + " failed: " + what);
    } catch (const std::exception& e) {
        LOG_ERROR("cannot record the failure: " << e.what());
    }
    return false;
}

int run_daemon(const update::AgentConfig& config, const DaemonOptions& options,
               const update::EventSink& printer) {
    validate_runtime(config);
    update::Platform platform = update::make_platform(config);
    net::CurlFetcher fetcher(config.transport);
    update::ControlFlags flags;

    g_stop = &flags.stop;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    std::mutex snapshot_mutex;
    Json snapshot_status = Json::object();
    Json progress = nullptr;
    std::string phase = "starting";
    auto set_phase = [&](const std::string& p) {
        std::lock_guard<std::mutex> lock(snapshot_mutex);
        phase = p;
    };

    std::unique_ptr<ControlServer> server;
    auto sink = [&](const update::Event& e) {
        if (printer) printer(e);
        Json ev{{"event", e.step}, {"message", e.message}};
        if (e.total) {
            ev["done"] = e.done;
            ev["total"] = e.total;
        }
        {
            std::lock_guard<std::mutex> lock(snapshot_mutex);
            progress = ev;
        }
        if (server) server->broadcast(ev);
    };
    if (!config.control_socket.empty()) {
        server = std::make_unique<ControlServer>(
            config.control_socket,
            [&](const Json& req) -> Json {
                const std::string cmd = req["cmd"].get<std::string>();
                if (cmd == "status") {
                    std::lock_guard<std::mutex> lock(snapshot_mutex);
                    return Json{{"ok", true},
                                {"phase", phase},
                                {"status", snapshot_status},
                                {"progress", progress}};
                }
                if (cmd == "check") {
                    flags.check_now = true;
                    return Json{{"ok", true}, {"message", "check scheduled"}};
                }
                if (cmd == "approve") {
                    flags.approved = true;
                    flags.deferred_until = 0;
                    return Json{{"ok", true}, {"message", "install approved"}};
                }
                if (cmd == "defer") {
                    if (!req.contains("seconds") || !req["seconds"].is_number_unsigned() ||
                        req["seconds"].get<uint64_t>() > 7 * 24 * 3600)
                        throw Error(ErrorKind::Malformed, "defer needs \"seconds\": 0..604800");
                    const int64_t until = static_cast<int64_t>(::time(nullptr)) +
                                          static_cast<int64_t>(req["seconds"].get<uint64_t>());
                    flags.deferred_until = until;
                    flags.approved = false;
                    return Json{{"ok", true}, {"deferred_until", until}};
                }
                throw Error(ErrorKind::Malformed, "unknown cmd \"" + cmd + "\"");
            },
            control_options(config));
    }

    update::Engine engine(config, platform, fetcher, sink);
    update::InstallGate gate(config.vehicle, update::make_vehicle_state(config.vehicle), &flags,
                             *platform.clock, [&](const std::string& msg) {
                                 sink(update::Event{"wait", msg, 0, 0});
                             });
    engine.set_stop_request([&] { return flags.stop.load(); });
    engine.set_gate([&](const std::string& p) {
        set_phase("waiting-" + p);
        gate.wait(p);
        set_phase(p == "install" ? "installing" : "rebooting");
    });
    auto refresh = [&] {
        try {
            Json s = engine.status();
            std::lock_guard<std::mutex> lock(snapshot_mutex);
            snapshot_status = s;
        } catch (const std::exception& e) {
            LOG_WARN("status: " << e.what());
        }
    };
    auto report = [&] {
        if (config.report.url.empty()) return;
        try {
            send_report(config, engine.status());
            sink(update::Event{"report", "signed status report sent", 0, 0});
        } catch (const std::exception& e) {
            LOG_WARN("status report not sent: " << e.what());
        }
    };

    update::UpdateOptions uo;
    uo.reboot = options.reboot;
    set_phase("boot-check");
    run_daemon_step(
        "boot-check",
        [&] {
            std::string outcome = engine.boot_check(uo);
            LOG_INFO("boot-check: " << outcome);
        },
        engine, sink);
    refresh();
    while (!flags.stop) {
        set_phase("updating");
        run_daemon_step(
            "update attempt",
            [&] {
                if (options.update_cycle)
                    options.update_cycle(engine, uo, sink);
                else
                    engine.update(uo);
            },
            engine, sink);
        flags.approved = false;
        refresh();
        report();
        set_phase("idle");
        if (options.once) break;
        uint64_t jitter = 0;
        if (config.poll_jitter_s) {
            uint64_t r = 0;
            random_bytes(&r, sizeof r);
            jitter = r % (config.poll_jitter_s + 1);
        }
        const auto wake = std::chrono::steady_clock::now() +
                          std::chrono::seconds(config.poll_interval_s + jitter);
        while (!flags.stop && !flags.check_now && std::chrono::steady_clock::now() < wake)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        flags.check_now = false;
    }
    set_phase("stopping");
    server.reset();
    g_stop = nullptr;
    return 0;
}

} // namespace ota::service
