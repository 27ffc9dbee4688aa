#include "agent/service/control_socket.h"

#include "agent/common/error.h"
#include "agent/common/log.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace ota::service {

namespace {

constexpr size_t kMaxRequestLine = 64 * 1024; // a longer line closes the connection
constexpr size_t kMaxClients = 32;

sockaddr_un address_of(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw Error(ErrorKind::Config, "control socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

} // namespace

ControlServer::ControlServer(std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {
    sockaddr_un addr = address_of(path_);
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw Error(ErrorKind::Config,
                        "control socket path " + path_ + " exists and is not a socket");
        ::unlink(path_.c_str()); // stale socket of a previous run
    }
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0)
        throw Error(ErrorKind::Io, "socket(): " + std::string(std::strerror(errno)));
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(path_.c_str(), 0660) != 0 || ::listen(listen_fd_, 8) != 0) {
        std::string why = std::strerror(errno);
        ::close(listen_fd_);
        throw Error(ErrorKind::Io, "cannot listen on " + path_ + ": " + why);
    }
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        ::close(listen_fd_);
        throw Error(ErrorKind::Io, "pipe(): " + std::string(std::strerror(errno)));
    }
    thread_ = std::thread([this] { loop(); });
}

ControlServer::~ControlServer() {
    char c = 'q';
    (void)!::write(wake_[1], &c, 1);
    if (thread_.joinable()) thread_.join();
    for (auto& cl : clients_)
        ::close(cl.fd);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::unlink(path_.c_str());
}

bool ControlServer::send_line(int fd, const std::string& line) {
    std::string data = line + "\n";
    size_t off = 0;
    // Non-blocking socket: a client that does not read within ~1 s is dropped.
    for (int spins = 0; off < data.size() && spins < 100; ++spins) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        struct pollfd p {
            fd, POLLOUT, 0
        };
        ::poll(&p, 1, 10);
    }
    return off == data.size();
}

void ControlServer::broadcast(const Json& event) {
    const std::string line = event.dump();
    std::lock_guard<std::mutex> lock(mutex_);
    last_event_ = line;
    for (auto& c : clients_)
        if (c.subscribed && !send_line(c.fd, line)) ::shutdown(c.fd, SHUT_RDWR);
}

void ControlServer::handle_line(Client& c, const std::string& line) {
    Json response;
    Json id;
    bool replay = false;
    try {
        Json req = Json::parse(line);
        if (!req.is_object()) throw Error(ErrorKind::Malformed, "a request must be a JSON object");
        if (req.contains("id")) id = req["id"];
        if (!req.contains("cmd") || !req["cmd"].is_string())
            throw Error(ErrorKind::Malformed, "a request needs \"cmd\" (a string)");
        if (req["cmd"] == "subscribe") {
            c.subscribed = true;
            response = Json{{"ok", true}, {"subscribed", true}};
            replay = true;
        } else {
            response = handler_(req);
        }
    } catch (const Json::exception& e) {
        response = Json{{"ok", false}, {"error", std::string("not JSON: ") + e.what()}};
    } catch (const std::exception& e) {
        response = Json{{"ok", false}, {"error", e.what()}};
    }
    if (!id.is_null()) response["id"] = id;
    send_line(c.fd, response.dump());
    // The latest event follows a subscription's answer, so a late subscriber learns where the
    // agent is (waiting for the vehicle, for consent, ...) without waiting for the next event.
    if (replay && !last_event_.empty()) send_line(c.fd, last_event_);
}

void ControlServer::loop() {
    while (true) {
        std::vector<pollfd> fds;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            fds.push_back({wake_[0], POLLIN, 0});
            fds.push_back({listen_fd_, POLLIN, 0});
            for (const auto& c : clients_)
                fds.push_back({c.fd, POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR("control socket poll failed: " << std::strerror(errno));
            return;
        }
        if (fds[0].revents) return;
        if (fds[1].revents & POLLIN) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                std::lock_guard<std::mutex> lock(mutex_);
                if (clients_.size() >= kMaxClients)
                    ::close(fd);
                else
                    clients_.push_back(Client{fd, "", false});
            }
        }
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<int> closed;
        for (size_t i = 2; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            auto it = std::find_if(clients_.begin(), clients_.end(),
                                   [&](const Client& c) { return c.fd == fds[i].fd; });
            if (it == clients_.end()) continue;
            char buf[4096];
            ssize_t n = ::recv(it->fd, buf, sizeof buf, 0);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                closed.push_back(it->fd);
                continue;
            }
            it->in.append(buf, static_cast<size_t>(n));
            size_t pos;
            while ((pos = it->in.find('\n')) != std::string::npos) {
                std::string line = it->in.substr(0, pos);
                it->in.erase(0, pos + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (!line.empty()) handle_line(*it, line);
            }
            if (it->in.size() > kMaxRequestLine) closed.push_back(it->fd);
        }
        for (int fd : closed) {
            ::close(fd);
            clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                          [&](const Client& c) { return c.fd == fd; }),
                           clients_.end());
        }
    }
}

Json control_request(const std::string& path, const Json& request, int timeout_ms) {
    sockaddr_un addr = address_of(path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw Error(ErrorKind::Io, "socket(): " + std::string(std::strerror(errno)));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw Error(ErrorKind::Network, "cannot connect to the agent at " + path + ": " +
                                            std::strerror(errno) + " (is the daemon running?)");
    std::string line = request.dump() + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw Error(ErrorKind::Network, "cannot send to " + path);
    std::string in;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (in.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) throw Error(ErrorKind::Network, "no answer from " + path);
        struct pollfd p {
            fd, POLLIN, 0
        };
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) throw Error(ErrorKind::Network, "the agent closed the connection");
        in.append(buf, static_cast<size_t>(n));
        if (in.size() > (16u << 20)) throw Error(ErrorKind::TooLarge, "answer too long");
    }
    return Json::parse(in.substr(0, in.find('\n')));
}

} // namespace ota::service
