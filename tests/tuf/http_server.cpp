#include "tuf/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace ota::test {

TestHttpServer::TestHttpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0)
        throw std::runtime_error("bind/listen on 127.0.0.1 failed");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
}

TestHttpServer::~TestHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
}

std::string TestHttpServer::url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void TestHttpServer::put(const std::string& path, const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    bodies_[path] = body;
    endless_.erase(path);
}

void TestHttpServer::remove(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    bodies_.erase(path);
    endless_.erase(path);
}

bool TestHttpServer::has(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bodies_.count(path) > 0;
}

std::string TestHttpServer::get(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bodies_.at(path);
}

void TestHttpServer::set_endless(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    endless_[path] = true;
}

std::vector<std::string> TestHttpServer::requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

void TestHttpServer::clear_requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.clear();
}

void TestHttpServer::serve() {
    while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        handle(fd);
        ::close(fd);
    }
}

static bool send_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) return false;
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

void TestHttpServer::handle(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        request.append(buf, static_cast<size_t>(n));
    }
    // "GET /path HTTP/1.1"
    size_t sp1 = request.find(' ');
    size_t sp2 = request.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    const std::string target = request.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string body;
    bool found = false, endless = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(target);
        endless = endless_.count(target) > 0;
        if (auto it = bodies_.find(target); it != bodies_.end()) {
            found = true;
            body = it->second;
        }
    }
    if (endless) {
        const std::string head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        if (!send_all(fd, head.data(), head.size())) return;
        const std::string chunk(16384, 'x');
        // Bounded only so a broken client cannot keep the test running forever.
        for (int i = 0; i < 64 * 64; ++i)
            if (!send_all(fd, chunk.data(), chunk.size())) return;
        return;
    }
    std::string head = found ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n";
    if (!found) body = "not found\n";
    head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    if (send_all(fd, head.data(), head.size())) send_all(fd, body.data(), body.size());
}

} // namespace ota::test
