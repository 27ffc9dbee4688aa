// A small HTTP/1.1 server on 127.0.0.1 for the trust tests: serves bodies from memory, answers
// 404 for anything else and records every request target in order, exactly as received.
#pragma once
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ota::test {

class TestHttpServer {
public:
    TestHttpServer();
    ~TestHttpServer();
    TestHttpServer(const TestHttpServer&) = delete;
    TestHttpServer& operator=(const TestHttpServer&) = delete;

    int port() const { return port_; }
    // "http://127.0.0.1:PORT" + path
    std::string url(const std::string& path) const;

    void put(const std::string& path, const std::string& body);
    void remove(const std::string& path);
    bool has(const std::string& path) const;
    std::string get(const std::string& path) const;
    // The path answers 200 with a body that never ends (until the client hangs up).
    void set_endless(const std::string& path);

    std::vector<std::string> requests() const;
    void clear_requests();

private:
    void serve();
    void handle(int fd);

    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<std::string, std::string> bodies_;
    std::map<std::string, bool> endless_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

} // namespace ota::test
