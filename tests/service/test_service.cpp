// The agent as a service: the daemon with its control socket, vehicle-state gating, the signed
// status report and configuration errors, all through the real ota-agent program.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "agent/service/control_socket.h"
#include "agent/service/report.h"
#include "hal/sim/sim_image.h"
#include "models/fixture.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <chrono>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace ota;
using namespace ota::test;

namespace {

// A JSON-lines client of the control socket that keeps its connection (for subscriptions).
class LineClient {
public:
    explicit LineClient(const std::string& path) {
        // The daemon creates the socket after it started: retry for a while.
        for (int i = 0; i < 600; ++i) {
            fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
            if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return;
            ::close(fd_);
            fd_ = -1;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        FAIL("cannot connect to " << path);
    }
    ~LineClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    void send(const std::string& line) {
        std::string l = line + "\n";
        REQUIRE(::send(fd_, l.data(), l.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(l.size()));
    }
    // Next line, or "" after 60 s without one.
    std::string next() {
        for (int i = 0; i < 600; ++i) {
            auto pos = in_.find('\n');
            if (pos != std::string::npos) {
                std::string line = in_.substr(0, pos);
                in_.erase(0, pos + 1);
                return line;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return "";
            in_.append(buf, static_cast<size_t>(n));
        }
        return "";
    }
    Json request(const Json& req) {
        send(req.dump());
        return Json::parse(next());
    }
    // Reads events until one whose message contains `text`; false if the stream ends first.
    bool wait_for_event(const std::string& text, std::vector<std::string>* seen = nullptr) {
        while (true) {
            std::string line = next();
            if (line.empty()) return false;
            if (seen) seen->push_back(line);
            if (line.find(text) != std::string::npos) return true;
        }
    }

private:
    int fd_ = -1;
    std::string in_;
};

struct ServiceFixture : EcuFixture {
    std::string socket_path = tmp.file("agent.sock");
    std::string log = tmp.file("daemon.log");
    ServiceFixture() {
        config["control_socket"] = socket_path;
        // The vehicle file is written once per test: it stays fresh for the whole test.
        config["vehicle"] = Json{{"type", "file"},
                                 {"file", vehicle_file},
                                 {"max_age_s", 3600},
                                 {"require_parked", true},
                                 {"poll_ms", 50}};
        save_config();
    }
    pid_t start_daemon(const std::string& args) {
        return spawn_shell(
            built_program("ota-agent") + " --config " + config_path + " daemon " + args, log);
    }
};

// One HTTP request received on 127.0.0.1 (the report server).
class HttpReceiver {
public:
    HttpReceiver() : port_(free_tcp_port()) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~HttpReceiver() {
        if (thread_.joinable()) thread_.join();
        ::close(fd_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/report"; }
    // Waits for the request; returns {request line + headers, body}.
    std::pair<std::string, std::string> take() {
        if (thread_.joinable()) thread_.join();
        return {head_, body_};
    }

private:
    void serve() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 120000) <= 0) return;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string in;
        char buf[4096];
        size_t need = std::string::npos;
        while (true) {
            auto end = in.find("\r\n\r\n");
            if (end != std::string::npos && need == std::string::npos) {
                head_ = in.substr(0, end);
                auto cl = head_.find("Content-Length:");
                if (cl == std::string::npos) cl = head_.find("content-length:");
                need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(head_.substr(cl + 15)));
            }
            if (need != std::string::npos && in.size() >= need) break;
            pollfd q{c, POLLIN, 0};
            if (::poll(&q, 1, 60000) <= 0) break;
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            in.append(buf, static_cast<size_t>(n));
        }
        if (need != std::string::npos && in.size() >= need)
            body_ = in.substr(in.find("\r\n\r\n") + 4, need - in.find("\r\n\r\n") - 4);
        const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
        ::close(c);
    }

    int port_;
    int fd_;
    std::thread thread_;
    std::string head_, body_;
};

} // namespace

TEST_CASE("gating: the install waits until the simulated vehicle is parked") {
    ServiceFixture f;
    f.set_vehicle(false); // driving
    f.add_firmware(2);
    const std::string slot_b_before = read_all(f.sim + "/slot-B.img");
    pid_t pid = f.start_daemon("--once --no-reboot");
    LineClient events(f.socket_path);
    REQUIRE(events.request(Json{{"cmd", "subscribe"}})["ok"] == true);
    std::vector<std::string> seen;
    REQUIRE(events.wait_for_event("install waits: vehicle is not parked", &seen));
    // Downloaded and verified while driving, but nothing written or switched.
    // The download may finish before the subscription starts: its events are then only in the
    // daemon's own output.
    CHECK((std::any_of(
               seen.begin(), seen.end(),
               [](const std::string& l) { return l.find("\"download\"") != std::string::npos; }) ||
           read_all(f.log).find("download") != std::string::npos));
    CHECK(read_all(f.sim + "/slot-B.img") == slot_b_before);
    CHECK(f.boot_order() == "A B");
    {
        LineClient c(f.socket_path);
        Json st = c.request(Json{{"cmd", "status"}, {"id", 7}});
        CHECK(st["ok"] == true);
        CHECK(st["id"] == 7);
        CHECK(st["phase"] == "waiting-install");
    }
    f.set_vehicle(true); // parked: the install goes on
    CHECK(events.wait_for_event("install allowed now"));
    REQUIRE(wait_exit(pid) == 0);
    CHECK(f.boot_order() == "B A");
    CHECK(read_all(f.sim + "/slot-B.img").substr(0, 256 * 1024) ==
          read_all(f.tmp.file("fw-2.img")));
}

TEST_CASE("gating: a missing or stale vehicle signal holds the install back and says why") {
    ServiceFixture f;
    f.config["vehicle"]["min_battery_percent"] = 30;
    f.config["vehicle"]["require_ignition_off"] = true;
    f.save_config();
    auto vehicle = [&](const std::string& args) {
        REQUIRE(run_command(built_program("ota-sim") + " vehicle --file " + f.vehicle_file + " " +
                            args) == 0);
    };
    // The gateway reports parked and ignition off, but no battery charge.
    vehicle("--parked yes --ignition off");
    f.add_firmware(2);
    const std::string slot_b_before = read_all(f.sim + "/slot-B.img");
    pid_t pid = f.start_daemon("--once --no-reboot");
    LineClient events(f.socket_path);
    REQUIRE(events.request(Json{{"cmd", "subscribe"}})["ok"] == true);
    REQUIRE(events.wait_for_event("install waits: vehicle state does not give the battery charge"));
    // Its last report is from long ago (max_age_s is 3600 here).
    vehicle("--parked yes --ignition off --battery 80 --age 4000");
    REQUIRE(events.wait_for_event("install waits: vehicle state is stale"));
    CHECK(read_all(f.sim + "/slot-B.img") == slot_b_before);
    CHECK(f.boot_order() == "A B");
    vehicle("--parked yes --ignition off --battery 80");
    CHECK(events.wait_for_event("install allowed now"));
    REQUIRE(wait_exit(pid) == 0);
    CHECK(f.boot_order() == "B A");
}

TEST_CASE("gating: with consent required, the control socket's approve releases the install") {
    ServiceFixture f;
    f.config["vehicle"]["require_consent"] = true;
    f.save_config();
    f.set_vehicle(true, false);
    f.add_model("perception", 1);
    pid_t pid = f.start_daemon("--once");
    LineClient events(f.socket_path);
    REQUIRE(events.request(Json{{"cmd", "subscribe"}})["ok"] == true);
    REQUIRE(events.wait_for_event("waiting for the user's consent"));
    CHECK_FALSE(file_exists(f.store + "/perception/current"));
    LineClient c(f.socket_path);
    CHECK(c.request(Json{{"cmd", "approve"}})["ok"] == true);
    REQUIRE(wait_exit(pid) == 0);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 1, "weights.bin")));
}

TEST_CASE("control socket: status, check now, defer, errors, clean stop") {
    ServiceFixture f;
    f.set_vehicle(true);
    pid_t pid = f.start_daemon("");
    LineClient c(f.socket_path);
    // Wait for the first attempt to finish (up to date).
    Json st;
    for (int i = 0; i < 600; ++i) {
        st = c.request(Json{{"cmd", "status"}});
        if (st["phase"] == "idle") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(st["phase"] == "idle");
    CHECK(st["status"]["booted_slot"] == "A");
    CHECK(st["status"]["installed_version"] == 1);

    CHECK(c.request(Json{{"cmd", "defer"}, {"seconds", 600}})["deferred_until"].is_number());
    Json bad = c.request(Json{{"cmd", "defer"}, {"seconds", -1}});
    CHECK(bad["ok"] == false);
    CHECK(bad["error"].get<std::string>().find("seconds") != std::string::npos);
    bad = c.request(Json{{"cmd", "reboot-now"}});
    CHECK(bad["ok"] == false);
    CHECK(bad["error"].get<std::string>().find("unknown cmd") != std::string::npos);
    c.send("this is not json");
    CHECK(Json::parse(c.next())["ok"] == false);

    // "check" wakes the daemon long before its hour is up; the new model is seen, but the
    // deferral holds the install back.
    f.add_model("perception", 1);
    LineClient events(f.socket_path);
    REQUIRE(events.request(Json{{"cmd", "subscribe"}})["ok"] == true);
    CHECK(c.request(Json{{"cmd", "check"}})["ok"] == true);
    REQUIRE(events.wait_for_event("install waits: deferred by the user"));
    CHECK_FALSE(file_exists(f.store + "/perception/current"));
    CHECK(c.request(Json{{"cmd", "approve"}})["ok"] == true); // approve lifts the deferral
    REQUIRE(events.wait_for_event("committed"));
    CHECK(file_exists(f.current_file("perception", "weights.bin")));

    ::kill(pid, SIGTERM);
    CHECK(wait_exit(pid) == 0);
    CHECK_FALSE(file_exists(f.socket_path));
}

TEST_CASE("the signed status report reaches the server and verifies with the device key") {
    ServiceFixture f;
    f.set_vehicle(true);
    f.publish("keygen --scheme ecdsa --out " + f.tmp.file("device"));
    HttpReceiver server;
    f.config["report"] = Json{{"url", server.url()},
                              {"device_key", f.tmp.file("device.key")},
                              {"ecu_serial", "VIN123-gateway"}};
    f.save_config();
    f.add_model("perception", 1);
    pid_t pid = f.start_daemon("--once");
    auto [head, body] = server.take();
    REQUIRE(wait_exit(pid) == 0);
    INFO(head << "\n" << body);
    CHECK(head.rfind("POST /v1/report HTTP/1.1", 0) == 0);
    Json report = Json::parse(body);
    const std::string pub = read_all(f.tmp.file("device.pub"));
    CHECK(service::verify_report(report, pub));
    const Json& s = report["signed"];
    CHECK(s["ecu_serial"] == "VIN123-gateway");
    CHECK(s["hardware_id"] == "demo-ecu");
    CHECK(s["installed"]["rootfs"]["version"] == 1);
    CHECK(s["installed"]["perception"]["version"] == 1);
    CHECK(s["last_result"]["outcome"] == "committed");
    CHECK(s["counter"] == 1);
    CHECK(report["signatures"][0]["method"] == "ecdsa-sha2-nistp256");
    // A changed field, or another key, does not verify.
    Json tampered = report;
    tampered["signed"]["installed"]["perception"]["version"] = 9;
    CHECK_FALSE(service::verify_report(tampered, pub));
    SigningKey other = SigningKey::generate(kSchemeEcdsaP256);
    CHECK_FALSE(service::verify_report(report, other.public_pem()));
}

TEST_CASE("configuration errors name the setting") {
    EcuFixture f;
    struct Case {
        const char* what;
        std::function<void(Json&)> change;
        const char* expect;
    };
    std::vector<Case> cases = {
        {"unknown key", [](Json& c) { c["pol_interval_s"] = 5; },
         "\"pol_interval_s\" is not a known setting"},
        {"missing key", [](Json& c) { c.erase("hardware_id"); }, "\"hardware_id\" is required"},
        {"wrong type", [](Json& c) { c["poll_interval_s"] = "often"; },
         "\"poll_interval_s\" must be a non-negative integer"},
        {"zero interval", [](Json& c) { c["poll_interval_s"] = 0; },
         "\"poll_interval_s\" must be between"},
        {"vehicle type",
         [](Json& c) {
             c["vehicle"] = Json{{"type", "can"}};
         },
         "\"vehicle.type\" must be"},
        {"vehicle file",
         [](Json& c) {
             c["vehicle"] = Json{{"type", "file"}};
         },
         "\"vehicle.file\" is required"},
        {"battery",
         [](Json& c) {
             c["vehicle"] = Json{{"min_battery_percent", 120}};
         },
         "\"vehicle.min_battery_percent\" must be between 0 and 100"},
        {"flag type",
         [](Json& c) {
             c["vehicle"] = Json{{"require_parked", "yes"}};
         },
         "\"vehicle.require_parked\" must be true or false"},
        {"model name", [](Json& c) { c["models"]["components"]["../x"] = Json::object(); },
         "is not a valid model name"},
        {"model key", [](Json& c) { c["models"]["components"]["voice"]["health"] = "x"; },
         "\"models.components.voice.health\" is not a known setting"},
        {"store", [](Json& c) { c["models"].erase("store"); }, "\"models.store\" is required"},
        {"report url",
         [](Json& c) {
             c["report"] = Json{{"url", "ftp://x"}, {"device_key", "k"}};
         },
         "\"report.url\" must be an http"},
        {"report key",
         [](Json& c) {
             c["report"] = Json{{"url", "http://127.0.0.1:1/"}};
         },
         "\"report.device_key\" is required"},
    };
    for (const auto& c : cases) {
        Json cfg = f.config;
        c.change(cfg);
        write_all_file(f.config_path, cfg.dump());
        std::string out;
        INFO(c.what << ": " << out);
        CHECK(f.agent("status", &out) == 1);
        CHECK(out.find(c.expect) != std::string::npos);
        CHECK(f.agent("daemon --once", &out) == 1); // the daemon refuses to start too
    }
    // Errors only the machine can show: validate (and the daemon) check the named files.
    Json cfg = f.config;
    cfg["trusted_root"] = f.tmp.file("nope.json");
    write_all_file(f.config_path, cfg.dump());
    std::string out;
    CHECK(f.agent("validate", &out) == 1);
    CHECK(out.find("\"trusted_root\" names") != std::string::npos);
    cfg = f.config;
    write_all_file(f.tmp.file("bad.key"), "not a key");
    cfg["report"] = Json{{"url", "http://127.0.0.1:1/"}, {"device_key", f.tmp.file("bad.key")}};
    write_all_file(f.config_path, cfg.dump());
    CHECK(f.agent("daemon --once", &out) == 1);
    CHECK(out.find("\"report.device_key\" is not a PEM private key") != std::string::npos);
    f.save_config();
    CHECK(f.agent("validate", &out) == 0);
}
