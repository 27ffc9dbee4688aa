// Hostile networks for the robustness tests, all on 127.0.0.1:
//   TcpServer  - runs a handler per accepted connection on its own thread (scripted servers that
//                stall, stream forever or fail N times);
//   FaultProxy - forwards to an upstream port and, per connection, cuts, truncates, stalls or
//                flips a byte of the response at a chosen offset (seeded, reproducible);
//   TestNginx  - Debian's nginx with a server block of the test's choosing (TLS, max_ranges 0).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ota::test::robust {

class TcpServer {
public:
    // Called once per connection with the client socket and the connection's index (0, 1, ...).
    // The handler may block; it should poll stopping() (or use wait_for_client_close()).
    using Handler = std::function<void(int fd, uint64_t index)>;
    explicit TcpServer(Handler handler);
    ~TcpServer(); // stops accepting, shuts every connection down, joins all threads
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    int port() const { return port_; }
    uint64_t connections() const { return accepted_; }
    bool stopping() const { return stop_; }

private:
    void accept_loop();
    Handler handler_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> accepted_{0};
    std::mutex mutex_;
    std::vector<int> open_fds_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

// Helpers for scripted servers.
// Reads the request head (up to the blank line, at most 64 KiB); empty if the client went away.
std::string read_request_head(int fd);
// Writes everything unless the peer is gone; returns false then.
bool send_all(int fd, const void* data, size_t size);
bool send_all(int fd, const std::string& data);
// Blocks until the peer closes or resets the connection (true) or `max_ms` passes or the server
// stops (false). Data the peer sends meanwhile is discarded.
bool wait_for_client_close(const TcpServer& server, int fd, int max_ms);

enum class FaultKind { None, Cut, Truncate, Stall, Flip };
const char* fault_kind_name(FaultKind kind);

// What happens to one connection's response stream (server -> client).
struct Fault {
    FaultKind kind = FaultKind::None;
    uint64_t offset = 0; // response byte at which it happens
    uint8_t flip_mask = 0x01;
};

class FaultProxy {
public:
    // Decides the fault of connection number `index`.
    using Planner = std::function<Fault(uint64_t index)>;

    FaultProxy(int upstream_port, Planner planner);
    // Seeded random faults: each connection is faulty with probability `fault_rate`, of a uniformly
    // chosen kind, at an offset drawn log-uniformly up to `max_offset` (small metadata responses
    // and multi-MiB bundles both get hit).
    static Planner random_planner(uint64_t seed, double fault_rate, uint64_t max_offset);
    // The first `failures` connections are cut before the first response byte.
    static Planner fail_first(uint64_t failures);

    void set_planner(Planner planner);
    int port() const { return server_.port(); }
    uint64_t connections() const { return server_.connections(); }
    // Faults planned vs. actually applied (a fault at an offset beyond a response's end never
    // happens).
    std::map<FaultKind, uint64_t> applied() const;
    uint64_t applied_total() const;

private:
    void handle(int client, uint64_t index);
    int upstream_port_;
    mutable std::mutex mutex_;
    Planner planner_;
    std::map<FaultKind, uint64_t> applied_;
    TcpServer server_; // last: its threads use the members above
};

// nginx on 127.0.0.1 with `server_block` (its text may use @PORT@ for the chosen port) inside a
// private configuration in run_dir. Retries with another port if the chosen one was taken.
class TestNginx {
public:
    TestNginx(const std::string& run_dir, const std::string& server_block);
    ~TestNginx();
    TestNginx(const TestNginx&) = delete;
    TestNginx& operator=(const TestNginx&) = delete;
    int port() const { return port_; }
    std::string access_log() const; // the whole access log so far
    std::string error_log() const;

private:
    std::string run_dir_;
    int port_ = 0;
};

} // namespace ota::test::robust
