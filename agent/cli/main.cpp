// ota-agent: the update agent that runs on the ECU. One-shot commands for integrators and the
// boot flow; see `ota-agent --help`.
#include "agent/bundle/apply_file.h"
#include "agent/bundle/installer.h"
#include "agent/common/error.h"
#include "agent/common/log.h"
#include "agent/delta/diff.h"
#include "agent/models/model_check.h"
#include "agent/net/curl_fetcher.h"
#include "agent/service/control_socket.h"
#include "agent/service/daemon.h"
#include "agent/update/config.h"
#include "agent/update/dir_safety.h"
#include "agent/update/engine.h"
#include "agent/update/gating.h"
#include "agent/update/platform.h"
#include "agent/uptane/vehicle_update.h"
#include "hal/hash_engine.h"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace ota;

namespace {

const char* kUsage = R"(usage: ota-agent [--config FILE] [--json] [-v|-q] COMMAND [ARGS]

Commands on an ECU (need --config, default /etc/ota/agent.json):
  check                 refresh the signed metadata and show the update for this ECU, if any
  update [--no-reboot]  check, download, install into the inactive slot, verify, switch, reboot
                        (with "uptane" in the configuration: the whole vehicle, docs/uptane.md)
  boot-check [--no-reboot]
                        run after every boot: health check, then commit the new slot, or
                        detect and report the bootloader's fallback
  status                installed versions (firmware, models, release), pending update,
                        slots and tries, last result
  install FILE-OR-URL [--no-reboot]
                        install one bundle from a file or URL; it must be a target of the
                        signed metadata for this hardware (unsigned code is never installed)
  mark-good             commit the pending update without running the health check
  rollback [COMPONENT] [--no-reboot]
                        a model: back to its previous version; the firmware (default): undo an
                        update that is switched to but not yet committed
  daemon [--once] [--no-reboot]
                        run as a service: boot-check, then poll (interval + jitter), update,
                        report; control socket if configured (docs/service.md)
  verify-models         re-read every installed model version (current, previous, trial) and
                        match it against its manifest; exit 1 if any is corrupted
  ctl JSON              send one request to the running daemon's control socket, print the answer
  validate              check the configuration and the files it names, then exit

Offline (no configuration):
  apply BUNDLE [--source OLD] --output OUT [--hash-engine auto|mbedtls|openssl|kernel]
                        apply a bundle to a file and verify it; exit 0 only if OUT is exactly
                        the image the bundle describes

Exit status: 0 success, 1 failure (the message says what and why).
)";

struct Args {
    std::string config = "/etc/ota/agent.json";
    bool json = false;
    bool reboot = true;
    bool once = false;
    std::string command;
    std::vector<std::string> rest;
};

class EventPrinter {
public:
    explicit EventPrinter(bool json) : json_(json), tty_(::isatty(STDOUT_FILENO)) {}
    void operator()(const update::Event& e) {
        if (json_) {
            Json j{{"event", e.step}, {"message", e.message}};
            if (e.total) {
                j["done"] = e.done;
                j["total"] = e.total;
            }
            std::cout << j.dump() << std::endl;
            return;
        }
        if (tty_ && e.total && (e.step == "download" || e.step == "write")) {
            // One progress bar line, redrawn in place.
            int width = 30;
            int filled = static_cast<int>(e.done * width / e.total);
            std::printf("\r[%-8s] [%s%s] %3d%%", e.step.c_str(), std::string(filled, '#').c_str(),
                        std::string(width - filled, '.').c_str(),
                        static_cast<int>(e.done * 100 / e.total));
            if (e.done == e.total) std::printf("\n");
            std::fflush(stdout);
            return;
        }
        std::printf("[%-8s] %s\n", e.step.c_str(), e.message.c_str());
        std::fflush(stdout);
    }

private:
    bool json_;
    bool tty_;
};

int cmd_apply(const Args& a) {
    std::string bundle, source, output, hash_engine = "auto";
    for (size_t i = 0; i < a.rest.size(); ++i) {
        const std::string& s = a.rest[i];
        if (s == "--source" && i + 1 < a.rest.size())
            source = a.rest[++i];
        else if (s == "--hash-engine" && i + 1 < a.rest.size())
            hash_engine = a.rest[++i];
        else if (s == "--output" && i + 1 < a.rest.size())
            output = a.rest[++i];
        else if (bundle.empty() && s.rfind("--", 0) != 0)
            bundle = s;
        else
            throw Error(ErrorKind::Config, "apply: unexpected argument " + s);
    }
    if (bundle.empty() || output.empty())
        throw Error(ErrorKind::Config, "apply needs BUNDLE and --output OUT");
    hal::use_hash_engine(hash_engine);
    std::string error;
    // Delta bundles carry Diff ops: the offline path needs the same decoder as the engine.
    bundle::register_apply_diff(ota::delta::apply_diff);
    int rc = bundle::apply_bundle_file(bundle, source.empty() ? nullptr : &source, output, &error);
    if (rc != 0) {
        std::fprintf(stderr, "ota-agent: apply failed: %s\n", error.c_str());
        return 1;
    }
    if (!a.json)
        std::printf("%s: verified, identical to the image the bundle describes\n", output.c_str());
    else
        std::cout << Json{{"result", "ok"}, {"output", output}}.dump() << std::endl;
    return 0;
}

int run(const Args& a) {
    if (a.command == "apply") return cmd_apply(a);
    update::AgentConfig config = update::load_config(a.config);
    // The vehicle's primary: its Uptane configuration must load too (errors name the key).
    const bool uptane = !config.uptane_config.empty();
    if (uptane) uptane::load_primary_config(config);
    // Before anything is hashed, and before the daemon starts its threads (ctl hashes nothing).
    // Named in the log where images are hashed; the other commands' output stays as it was.
    const bool hashes_images =
        a.command == "update" || a.command == "install" || a.command == "daemon";
    if (a.command != "ctl")
        hal::use_hash_engine(config.hash_engine, hashes_images ? LogLevel::Info : LogLevel::Debug);
    if (a.command == "validate") {
        service::validate_runtime(config);
        if (a.json)
            std::cout << Json{{"valid", true}}.dump() << std::endl;
        else
            std::printf("%s: configuration is valid\n", a.config.c_str());
        return 0;
    }
    if (a.command == "ctl") {
        if (a.rest.size() != 1) throw Error(ErrorKind::Config, "ctl needs one JSON request");
        if (config.control_socket.empty())
            throw Error(ErrorKind::Config, "no control_socket in the configuration");
        Json req;
        try {
            req = parse_json(a.rest[0], "ctl request");
        } catch (const Error& e) {
            throw Error(ErrorKind::Config, std::string("ctl: ") + e.what());
        }
        Json resp = service::control_request(config.control_socket, req);
        std::cout << resp.dump() << std::endl;
        return resp.value("ok", false) ? 0 : 1;
    }
    EventPrinter printer(a.json);
    if (a.command == "daemon") {
        service::DaemonOptions d;
        d.once = a.once;
        d.reboot = a.reboot;
        if (uptane)
            d.update_cycle = [](update::Engine& engine, const update::UpdateOptions& o,
                                const update::EventSink& sink) {
                net::CurlFetcher fetcher(engine.config().transport);
                uptane::VehicleUpdate(engine.config(), engine, fetcher, sink).run(o);
            };
        return service::run_daemon(config, d, std::ref(printer));
    }
    update::require_private_directories(config);
    update::Platform platform = update::make_platform(config);
    net::CurlFetcher fetcher(config.transport);
    update::Engine engine(config, platform, fetcher, std::ref(printer));
    update::UpdateOptions options;
    options.reboot = a.reboot;
    // One-shot commands honour the vehicle policy too (no control socket: consent must come
    // from the vehicle state).
    update::InstallGate gate(config.vehicle, update::make_vehicle_state(config.vehicle), nullptr,
                             *platform.clock, [&](const std::string& m) {
                                 printer(update::Event{"wait", m, 0, 0});
                             });
    engine.set_gate([&](const std::string& phase) { gate.wait(phase); });
    std::unique_ptr<uptane::VehicleUpdate> vehicle;
    if (uptane && (a.command == "check" || a.command == "install" || a.command == "update")) {
        vehicle =
            std::make_unique<uptane::VehicleUpdate>(config, engine, fetcher, std::ref(printer));
        if (a.command != "update") vehicle->prepare();
    }

    if (a.command == "check") {
        auto plan = engine.check_plan();
        if (a.json) {
            const update::Selection* first =
                plan && !plan->items.empty() ? &plan->items.back() : nullptr;
            Json comps = Json::array();
            if (plan)
                for (const auto& it : plan->items)
                    comps.push_back(Json{{"component", it.chosen.component},
                                         {"kind", it.chosen.kind},
                                         {"version", it.chosen.version},
                                         {"target", it.chosen.target.path}});
            Json j{{"update_available", first != nullptr},
                   {"target", first ? first->chosen.target.path : ""},
                   {"version", first ? first->chosen.version : 0},
                   {"components", comps}};
            j["release"] = plan && plan->release ? Json{{"id", plan->release->id},
                                                        {"version", plan->release->version}}
                                                 : Json(nullptr);
            std::cout << j.dump() << std::endl;
        }
        return 0;
    }
    if (a.command == "install") {
        if (a.rest.size() != 1) throw Error(ErrorKind::Config, "install needs one FILE-OR-URL");
        engine.install(a.rest[0], options);
        if (a.json) std::cout << Json{{"result", "installed"}}.dump() << std::endl;
        return 0;
    }
    if (a.command == "mark-good") {
        std::string outcome = engine.mark_good();
        if (a.json) std::cout << Json{{"outcome", outcome}}.dump() << std::endl;
        return 0;
    }
    if (a.command == "rollback") {
        if (a.rest.size() > 1)
            throw Error(ErrorKind::Config, "rollback takes at most one COMPONENT");
        std::string outcome = engine.rollback(a.rest.empty() ? "" : a.rest[0], options);
        if (a.json) std::cout << Json{{"outcome", outcome}}.dump() << std::endl;
        return 0;
    }
    if (a.command == "update") {
        if (vehicle)
            vehicle->run(options);
        else
            engine.update(options);
        return 0;
    }
    if (a.command == "boot-check") {
        std::string outcome = engine.boot_check(options);
        if (a.json) std::cout << Json{{"outcome", outcome}}.dump() << std::endl;
        return outcome == "health-failed" ? 1 : 0;
    }
    if (a.command == "verify-models") {
        if (!engine.model_store())
            throw Error(ErrorKind::Config, "verify-models: no models.store in the configuration");
        Json out = Json::array();
        bool all_intact = true;
        for (const auto& c : models::check_models(*engine.model_store(), true)) {
            all_intact = all_intact && !c.problem;
            out.push_back(Json{{"model", c.name},
                               {"role", c.role},
                               {"version", c.version},
                               {"intact", !c.problem},
                               {"problem", c.problem ? Json(*c.problem) : Json(nullptr)}});
            if (!a.json)
                std::printf("model %-8s %-8s version %llu: %s\n", c.name.c_str(), c.role.c_str(),
                            static_cast<unsigned long long>(c.version),
                            c.problem ? ("CORRUPTED: " + *c.problem).c_str() : "intact");
        }
        if (a.json)
            std::cout << Json{{"intact", all_intact}, {"models", out}}.dump(
                             -1, ' ', false, Json::error_handler_t::replace)
                      << std::endl;
        return all_intact ? 0 : 1;
    }
    if (a.command == "status") {
        Json s = engine.status();
        if (a.json) {
            std::cout << s.dump(1) << std::endl;
            return 0;
        }
        std::printf("hardware:      %s\n", s["hardware_id"].get<std::string>().c_str());
        std::printf("installed:     version %llu\n",
                    static_cast<unsigned long long>(s["installed_version"].get<uint64_t>()));
        std::printf("booted slot:   %s\n", s["booted_slot"].get<std::string>().c_str());
        std::string order;
        for (const auto& o : s["boot_order"])
            order += (order.empty() ? "" : " ") + o.get<std::string>();
        std::printf("BOOT_ORDER:    %s\n", order.c_str());
        for (auto it = s["tries_left"].begin(); it != s["tries_left"].end(); ++it)
            std::printf("BOOT_%s_LEFT:   %d\n", it.key().c_str(), it->get<int>());
        if (!s["pending"].is_null())
            std::printf("pending:       version %llu in slot %s (%s)\n",
                        static_cast<unsigned long long>(s["pending"]["version"].get<uint64_t>()),
                        s["pending"]["slot"].get<std::string>().c_str(),
                        s["pending"]["stage"].get<std::string>().c_str());
        for (auto it = s["models"].begin(); it != s["models"].end(); ++it) {
            auto v = [](const Json& x) {
                return x.is_null() ? std::string("-") : std::to_string(x.get<uint64_t>());
            };
            std::printf("model %-8s current %s, previous %s%s\n", it.key().c_str(),
                        v((*it)["current"]).c_str(), v((*it)["previous"]).c_str(),
                        (*it)["trial"].is_null() ? "" : " (on trial)");
            if (it->contains("problem"))
                std::printf("model %-8s CORRUPTED: %s\n", it.key().c_str(),
                            (*it)["problem"].get<std::string>().c_str());
        }
        if (!s["release"].is_null())
            std::printf("release:       %s (release version %llu)\n",
                        s["release"]["id"].get<std::string>().c_str(),
                        static_cast<unsigned long long>(s["release"]["version"].get<uint64_t>()));
        if (s.contains("last_result"))
            std::printf("last result:   %s %s\n",
                        s["last_result"]["outcome"].get<std::string>().c_str(),
                        s["last_result"]["message"].get<std::string>().c_str());
        return 0;
    }
    throw Error(ErrorKind::Config, "unknown command \"" + a.command + "\" (see --help)");
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (a.command.empty()) {
            if (s == "--help" || s == "-h") {
                std::fputs(kUsage, stdout);
                return 0;
            } else if (s == "--config" && i + 1 < argc) {
                a.config = argv[++i];
            } else if (s == "--json") {
                a.json = true;
            } else if (s == "-v" || s == "--verbose") {
                set_log_level(LogLevel::Debug);
            } else if (s == "-q" || s == "--quiet") {
                set_log_level(LogLevel::Error);
            } else if (s.rfind("-", 0) == 0) {
                std::fprintf(stderr, "ota-agent: unknown option %s\n%s", s.c_str(), kUsage);
                return 1;
            } else {
                a.command = s;
            }
        } else if (s == "--no-reboot") {
            a.reboot = false;
        } else if (s == "--once" && a.command == "daemon") {
            a.once = true;
        } else if (s == "--json") {
            a.json = true;
        } else {
            a.rest.push_back(s);
        }
    }
    if (a.command.empty()) {
        std::fputs(kUsage, stderr);
        return 1;
    }
    try {
        return run(a);
    } catch (const Error& e) {
        std::fprintf(stderr, "ota-agent: %s failed [%s]: %s\n", a.command.c_str(),
                     error_kind_name(e.kind()), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ota-agent: %s failed: %s\n", a.command.c_str(), e.what());
        return 1;
    }
}
