// The daemon's control socket under hostile local clients, through the real ota-agent daemon:
// bytes that are not UTF-8, invalid or deeply nested JSON and endless lines get an error answer
// and never stop the daemon; a client that never reads is dropped while an install goes on;
// idle connections cannot lock others out; a non-root account can watch but not command.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "models/fixture.h"
#include "robust/hostile_support.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::hostile;

namespace {

int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    return -1;
}

// A JSON-lines client that keeps its connection.
class Client {
public:
    explicit Client(const std::string& path) {
        // The daemon creates the socket once it started: retry for a while.
        for (int i = 0; i < 600 && fd_ < 0; ++i) {
            fd_ = connect_to(path);
            if (fd_ < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        REQUIRE(fd_ >= 0);
    }
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const { return fd_; }
    bool send(const std::string& bytes) {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }
    // Next line; "" once the connection is closed or after 60 s without one.
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
    // The answer to one request line (null when there is none or it is not JSON).
    Json ask(const std::string& line) {
        if (!send(line + "\n")) return nullptr;
        std::string answer = next();
        INFO("answer: " << answer);
        try {
            return parse_json(answer, "answer");
        } catch (const Error&) {
            return nullptr;
        }
    }
    bool wait_for_event(const std::string& text) {
        for (std::string line = next(); !line.empty(); line = next())
            if (contains(line, text)) return true;
        return false;
    }
    // Reads (and discards) until the server closes the connection: true; false after 60 s.
    bool closed_by_server() {
        for (int i = 0; i < 600; ++i) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[65536];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
        }
        return false;
    }

private:
    int fd_ = -1;
    std::string in_;
};

struct Daemon : EcuFixture {
    std::string socket_path = tmp.file("agent.sock");
    std::string log = tmp.file("daemon.log");
    pid_t pid = -1;
    explicit Daemon(bool parked = true) {
        config["control_socket"] = socket_path;
        config["vehicle"] = Json{
            {"type", "file"}, {"file", vehicle_file}, {"require_parked", true}, {"poll_ms", 50}};
        set_vehicle(parked);
        save_config();
    }
    void start() {
        pid = spawn_shell(
            built_program("ota-agent") + " --config " + config_path + " daemon --no-reboot", log);
    }
    bool alive() const { return ::kill(pid, 0) == 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
    // SIGTERM; the exit status (0 = clean stop), -2 if it did not stop within a minute (then it
    // is killed, so a stalled daemon fails the test instead of hanging it).
    int stop() {
        ::kill(pid, SIGTERM);
        for (int i = 0; i < 600; ++i) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        ::kill(pid, SIGKILL);
        wait_exit(pid);
        pid = -1;
        return -2;
    }
    ~Daemon() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            wait_exit(pid);
        }
    }
};

} // namespace

TEST_CASE("control socket: any invalid input gets an error answer, the daemon stays up",
          "[robust][hostile]") {
    Daemon d;
    d.start();
    Client c(d.socket_path);
    REQUIRE(c.ask("{\"cmd\":\"status\"}")["ok"] == true);
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const std::string inputs[] = {
        "\xff",
        "{\"cmd\":\"status\",\"id\":\"\xff\xfe\"}",
        "{\"cmd\":\"\xc0\xaf\"}",
        "not json at all",
        "{\"cmd\":",
        "[1,2,3]",
        "{\"cmd\":42}",
        "{\"cmd\":\"no-such-command\"}",
        "{\"cmd\":\"defer\",\"seconds\":-1}",
        "{\"cmd\":\"defer\",\"seconds\":1e400}",
        std::string("{\"cmd\":\"status\"\x00}", 17),
        deep.substr(0, 60000),
    };
    for (const auto& input : inputs) {
        INFO("request " << printable(input.substr(0, 60)));
        Json answer = c.ask(input);
        CHECK(answer.is_object());
        CHECK(answer["ok"] == false);
        CHECK(answer["error"].is_string());
        REQUIRE(d.alive());
    }
    // A line longer than the limit: an error answer, then the connection is closed.
    Client big(d.socket_path);
    REQUIRE(big.send(std::string(70 * 1024, '[')));
    const std::string line = big.next();
    INFO(line);
    CHECK(contains(line, "longer than"));
    CHECK(big.closed_by_server());
    // A client that closes its sending side right after the request still gets the answer.
    Client oneshot(d.socket_path);
    REQUIRE(oneshot.send("{\"cmd\":\"status\",\"id\":8}\n"));
    ::shutdown(oneshot.fd(), SHUT_WR);
    CHECK(contains(oneshot.next(), "\"id\":8"));
    // Everyone else is still served.
    CHECK(c.ask("{\"cmd\":\"status\",\"id\":7}")["id"] == 7);
    CHECK(d.alive());
    CHECK(d.stop() == 0);
}

TEST_CASE("control socket: a client that never reads is dropped, the install goes on",
          "[robust][hostile]") {
    Daemon d(false); // not parked: the install waits for the vehicle
    d.add_model("perception", 1);
    d.start();
    Client watcher(d.socket_path);
    REQUIRE(watcher.ask("{\"cmd\":\"subscribe\"}")["ok"] == true);
    REQUIRE(watcher.wait_for_event("install waits"));

    // 200+ KB of requests, never reading an answer.
    Client flood(d.socket_path);
    const int flags = ::fcntl(flood.fd(), F_GETFL);
    ::fcntl(flood.fd(), F_SETFL, flags | O_NONBLOCK);
    const std::string request = "{\"cmd\":\"status\"}\n";
    std::string pending;
    for (int i = 0; i < 14000; ++i)
        pending += request;
    size_t sent = 0;
    bool dropped = false;
    for (int stalls = 0; sent < pending.size() && !dropped && stalls < 100;) {
        ssize_t n = ::send(flood.fd(), pending.data() + sent, pending.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) dropped = true;
        pollfd p{flood.fd(), POLLOUT, 0};
        if (!dropped && ::poll(&p, 1, 100) <= 0) ++stalls;
    }
    INFO("bytes of requests sent: " << sent << (dropped ? " (then dropped)" : ""));
    // The daemon takes in every request until it drops the client: it never stops reading.
    CHECK((sent == pending.size() || dropped));

    d.set_vehicle(true); // parked: the install goes on, with the flooding client still connected
    CHECK(watcher.wait_for_event("model perception version 1 committed"));
    CHECK(flood.closed_by_server());
    Client late(d.socket_path);
    CHECK(late.ask("{\"cmd\":\"status\"}")["ok"] == true);
    CHECK(d.stop() == 0);
    CHECK(read_all(d.current_file("perception", "weights.bin")) ==
          read_all(d.model_file("perception", 1, "weights.bin")));
}

TEST_CASE("control socket: 40 idle connections do not lock a new client out", "[robust][hostile]") {
    Daemon d;
    d.start();
    { Client first(d.socket_path); } // waits until the daemon listens
    std::vector<int> idle;
    for (int i = 0; i < 40; ++i) {
        int fd = connect_to(d.socket_path);
        REQUIRE(fd >= 0);
        idle.push_back(fd);
    }
    Client c(d.socket_path);
    Json answer = c.ask("{\"cmd\":\"status\"}");
    CHECK(answer.is_object());
    CHECK(answer["ok"] == true);
    for (int fd : idle)
        ::close(fd);
    CHECK(d.stop() == 0);
}

namespace {

// In a forked child running as `nobody` with the given groups: the answers to status and approve,
// as exit status bits (1: status answered ok, 2: approve answered ok, 4: approve refused with
// "permission denied"). Only system calls after fork: the child never returns to Catch.
int as_nobody(const std::string& socket_path, gid_t gid, std::vector<gid_t> groups) {
    const std::string status = "{\"cmd\":\"status\"}\n";
    const std::string approve = "{\"cmd\":\"approve\"}\n";
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
            ::setuid(65534) != 0)
            ::_exit(100);
        int fd = connect_to(socket_path);
        if (fd < 0) ::_exit(101);
        char buf[65536];
        auto ask = [&](const std::string& line) -> std::string {
            if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) return "";
            size_t have = 0;
            while (have < sizeof buf - 1) {
                ssize_t n = ::recv(fd, buf + have, sizeof buf - 1 - have, 0);
                if (n <= 0) return "";
                have += static_cast<size_t>(n);
                if (std::memchr(buf, '\n', have)) break;
            }
            return std::string(buf, have);
        };
        int result = 0;
        if (contains(ask(status), "\"ok\":true")) result |= 1;
        const std::string a = ask(approve);
        if (contains(a, "\"ok\":true")) result |= 2;
        if (contains(a, "permission denied")) result |= 4;
        ::_exit(result);
    }
    return wait_exit(pid);
}

} // namespace

TEST_CASE("control socket: a non-root account may watch, only root or the command group command",
          "[robust][hostile]") {
    REQUIRE(::geteuid() == 0); // the test switches to `nobody` in a child
    group* g = ::getgrnam("nogroup");
    REQUIRE(g != nullptr);
    const gid_t command_gid = g->gr_gid;
    Daemon d;
    ::chmod(d.tmp.path().c_str(), 0755); // `nobody` must reach the socket
    d.config["control_socket_mode"] = "0666";
    d.config["control_socket_group"] = "nogroup";
    d.save_config();
    d.start();
    { Client root_client(d.socket_path); }

    // Watching is allowed, commanding is not.
    CHECK(as_nobody(d.socket_path, 54321, {}) == (1 | 4));
    // A member of the command group (supplementary or primary) may approve.
    CHECK(as_nobody(d.socket_path, 54321, {command_gid}) == (1 | 2));
    CHECK(as_nobody(d.socket_path, command_gid, {}) == (1 | 2));
    // Root may.
    Client root_client(d.socket_path);
    CHECK(root_client.ask("{\"cmd\":\"approve\"}")["ok"] == true);
    CHECK(d.stop() == 0);

    // Without a command group, only root commands.
    d.config.erase("control_socket_group");
    d.save_config();
    d.start();
    { Client again(d.socket_path); }
    CHECK(as_nobody(d.socket_path, command_gid, {command_gid}) == (1 | 4));
    CHECK(d.stop() == 0);
}
