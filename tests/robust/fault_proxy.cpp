#include "robust/fault_proxy.h"

#include "support/test_support.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace ota::test::robust {

namespace {

int listen_on_loopback(int* port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0; // the kernel picks a free port: no race with other tests
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("listen on 127.0.0.1: " + std::string(std::strerror(errno)));
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

int connect_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Closes with a TCP reset instead of an orderly FIN: what a dropped mobile link looks like.
void reset_and_close(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
}

std::string read_all_or_empty(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace

// ---------------------------------------------------------------------------------------------
// TcpServer

TcpServer::TcpServer(Handler handler) : handler_(std::move(handler)) {
    // A peer that vanishes must not kill the test process when we write to it.
    ::signal(SIGPIPE, SIG_IGN);
    listen_fd_ = listen_on_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
}

TcpServer::~TcpServer() {
    stop_ = true;
    acceptor_.join();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (int fd : open_fds_)
            ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_)
        t.join();
    ::close(listen_fd_);
}

void TcpServer::accept_loop() {
    while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        const uint64_t index = accepted_++;
        std::lock_guard<std::mutex> lock(mutex_);
        open_fds_.push_back(fd);
        threads_.emplace_back([this, fd, index] {
            try {
                handler_(fd, index);
            } catch (...) {
                // A scripted server must never take the test process down.
            }
            std::lock_guard<std::mutex> l(mutex_);
            for (auto it = open_fds_.begin(); it != open_fds_.end(); ++it)
                if (*it == fd) {
                    open_fds_.erase(it);
                    break;
                }
            ::close(fd);
        });
    }
}

std::string read_request_head(int fd) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 64 * 1024) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return "";
        head.append(buf, static_cast<size_t>(n));
    }
    return head;
}

bool send_all(int fd, const void* data, size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

bool send_all(int fd, const std::string& data) {
    return send_all(fd, data.data(), data.size());
}

bool wait_for_client_close(const TcpServer& server, int fd, int max_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
    char buf[4096];
    while (!server.stopping() && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return true;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// FaultProxy

const char* fault_kind_name(FaultKind kind) {
    switch (kind) {
    case FaultKind::None: return "none";
    case FaultKind::Cut: return "cut (reset)";
    case FaultKind::Truncate: return "truncate (early close)";
    case FaultKind::Stall: return "stall";
    case FaultKind::Flip: return "flipped byte";
    }
    return "?";
}

FaultProxy::FaultProxy(int upstream_port, Planner planner)
    : upstream_port_(upstream_port), planner_(std::move(planner)),
      server_([this](int fd, uint64_t index) { handle(fd, index); }) {}

FaultProxy::Planner FaultProxy::random_planner(uint64_t seed, double fault_rate,
                                               uint64_t max_offset) {
    auto rng = std::make_shared<std::mt19937_64>(seed);
    return [rng, fault_rate, max_offset](uint64_t) {
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        Fault f;
        if (unit(*rng) >= fault_rate) return f;
        f.kind = static_cast<FaultKind>(1 + (*rng)() % 4);
        const double bits = std::log2(static_cast<double>(max_offset));
        const double top = std::exp2(unit(*rng) * bits);
        f.offset = static_cast<uint64_t>(unit(*rng) * top);
        f.flip_mask = static_cast<uint8_t>(1u << ((*rng)() % 8));
        return f;
    };
}

FaultProxy::Planner FaultProxy::fail_first(uint64_t failures) {
    return [failures](uint64_t index) {
        return index < failures ? Fault{FaultKind::Cut, 0, 0} : Fault{};
    };
}

void FaultProxy::set_planner(Planner planner) {
    std::lock_guard<std::mutex> lock(mutex_);
    planner_ = std::move(planner);
}

std::map<FaultKind, uint64_t> FaultProxy::applied() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return applied_;
}

uint64_t FaultProxy::applied_total() const {
    uint64_t n = 0;
    for (const auto& [kind, count] : applied())
        n += count;
    return n;
}

void FaultProxy::handle(int client, uint64_t index) {
    Fault fault;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fault = planner_(index);
    }
    auto note_applied = [&] {
        std::lock_guard<std::mutex> lock(mutex_);
        ++applied_[fault.kind];
    };
    if (fault.kind == FaultKind::Cut && fault.offset == 0) {
        // Refused before the request reached the server.
        note_applied();
        linger l{1, 0};
        ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        return; // TcpServer closes it: a reset
    }
    int upstream = connect_loopback(upstream_port_);
    if (upstream < 0) return;
    uint64_t sent = 0; // response bytes forwarded so far
    bool client_open = true;
    char buf[16384];
    while (!server_.stopping()) {
        pollfd p[2] = {{client, client_open ? short(POLLIN) : short(0), 0}, {upstream, POLLIN, 0}};
        if (::poll(p, 2, 50) <= 0) continue;
        if (client_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::recv(client, buf, sizeof buf, 0);
            if (n <= 0) {
                client_open = false;
                ::shutdown(upstream, SHUT_WR);
                break; // the client is done (or gone): so is this connection
            }
            if (!send_all(upstream, buf, static_cast<size_t>(n))) break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::recv(upstream, buf, sizeof buf, 0);
            if (n <= 0) break; // response complete: closing tells the client so
            size_t len = static_cast<size_t>(n);
            const bool hits =
                fault.kind != FaultKind::None && fault.offset >= sent && fault.offset < sent + len;
            if (!hits) {
                if (!send_all(client, buf, len)) break;
                sent += len;
                continue;
            }
            const size_t at = static_cast<size_t>(fault.offset - sent);
            note_applied();
            if (fault.kind == FaultKind::Flip) {
                buf[at] = static_cast<char>(buf[at] ^ fault.flip_mask);
                if (!send_all(client, buf, len)) break;
                sent += len;
                fault.kind = FaultKind::None; // one flip per connection
                continue;
            }
            send_all(client, buf, at);
            if (fault.kind == FaultKind::Cut) {
                reset_and_close(upstream);
                upstream = -1;
                linger l{1, 0};
                ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            } else if (fault.kind == FaultKind::Truncate) {
                ::shutdown(client, SHUT_WR);
            } else if (fault.kind == FaultKind::Stall) {
                // Nothing more, ever: only the client's own timeout ends this.
                wait_for_client_close(server_, client, 120000);
            }
            break;
        }
    }
    if (upstream >= 0) ::close(upstream);
}

// ---------------------------------------------------------------------------------------------
// TestNginx

TestNginx::TestNginx(const std::string& run_dir, const std::string& server_block)
    : run_dir_(run_dir) {
    run_command("mkdir -p '" + run_dir_ + "'");
    std::string output;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_tcp_port();
        std::string block = server_block;
        for (size_t pos; (pos = block.find("@PORT@")) != std::string::npos;)
            block.replace(pos, 6, std::to_string(port_));
        const std::string r = run_dir_;
        write_all_file(r + "/nginx.conf", "worker_processes 1;\n"
                                          "pid " +
                                              r +
                                              "/nginx.pid;\n"
                                              "error_log " +
                                              r +
                                              "/error.log info;\n"
                                              "events { worker_connections 64; }\n"
                                              "http {\n"
                                              "    access_log " +
                                              r +
                                              "/access.log;\n"
                                              "    client_body_temp_path " +
                                              r +
                                              "/client_body;\n"
                                              "    proxy_temp_path " +
                                              r +
                                              "/proxy;\n"
                                              "    fastcgi_temp_path " +
                                              r +
                                              "/fastcgi;\n"
                                              "    uwsgi_temp_path " +
                                              r +
                                              "/uwsgi;\n"
                                              "    scgi_temp_path " +
                                              r +
                                              "/scgi;\n"
                                              "    default_type application/octet-stream;\n"
                                              "    sendfile on;\n" +
                                              block + "\n}\n");
        ::unlink((r + "/nginx.pid").c_str());
        const int status = run_command("nginx -c '" + r + "/nginx.conf' -p '" + r + "' -e '" + r +
                                           "/error.log' 2>&1",
                                       &output);
        if (status == 0) {
            for (int i = 0; i < 50 && read_all_or_empty(r + "/nginx.pid").empty(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            return;
        }
        if (output.find("Address already in use") == std::string::npos) break;
    }
    INFO(output);
    FAIL("nginx did not start with " << run_dir_ << "/nginx.conf");
}

TestNginx::~TestNginx() {
    std::string pid = read_all_or_empty(run_dir_ + "/nginx.pid");
    if (pid.empty()) return;
    const pid_t p = static_cast<pid_t>(std::stol(pid));
    // Not waiting for the exit (nginx takes about a second): the next test picks another port.
    ::kill(p, SIGTERM);
}

std::string TestNginx::access_log() const {
    return read_all_or_empty(run_dir_ + "/access.log");
}

std::string TestNginx::error_log() const {
    return read_all_or_empty(run_dir_ + "/error.log");
}

} // namespace ota::test::robust
