#include "agent/service/control_socket.h"

#include "agent/common/error.h"
#include "agent/common/log.h"
#include "agent/update/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace ota::service {

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_un address_of(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw Error(ErrorKind::Config, "control socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// Every answer goes out as valid UTF-8, even if a handler echoes bytes that are not.
std::string to_line(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Whether the peer is root or has `group` among its groups (effective gid from SO_PEERCRED,
// supplementary groups from SO_PEERGROUPS: the process's own credentials, as it connected).
bool may_send_commands(int fd, const ucred& cred, const std::optional<gid_t>& group) {
    if (cred.uid == 0) return true;
    if (!group) return false;
    if (cred.gid == *group) return true;
    std::vector<gid_t> groups(64);
    for (int attempt = 0; attempt < 2; ++attempt) {
        socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            return std::find(groups.begin(), groups.end(), *group) != groups.end();
        }
        if (errno != ERANGE || len / sizeof(gid_t) > 65536) return false;
        groups.resize(len / sizeof(gid_t));
    }
    return false;
}

} // namespace

ControlOptions control_options(const update::AgentConfig& config) {
    ControlOptions o;
    o.mode = static_cast<mode_t>(config.control_socket_mode);
    if (!config.control_socket_group.empty()) {
        std::vector<char> buf(16384);
        group gr{};
        group* found = nullptr;
        if (::getgrnam_r(config.control_socket_group.c_str(), &gr, buf.data(), buf.size(),
                         &found) != 0 ||
            !found)
            throw Error(ErrorKind::Config, "configuration: \"control_socket_group\" names " +
                                               config.control_socket_group +
                                               ", which is not a group of this system");
        o.command_group = found->gr_gid;
        o.command_group_name = config.control_socket_group;
    }
    return o;
}

bool is_read_only_command(const std::string& cmd) {
    return cmd == "status" || cmd == "subscribe";
}

std::string answer_request(const std::string& line, bool may_command, const ControlHandler& handler,
                           bool* subscribe) {
    Json response;
    Json id;
    try {
        Json req = parse_json(line, "request");
        if (!req.is_object()) throw Error(ErrorKind::Malformed, "a request must be a JSON object");
        if (auto it = req.find("id"); it != req.end()) id = *it;
        auto cmd_it = req.find("cmd");
        if (cmd_it == req.end() || !cmd_it->is_string())
            throw Error(ErrorKind::Malformed, "a request needs \"cmd\" (a string)");
        const std::string cmd = cmd_it->get<std::string>();
        if (!may_command && !is_read_only_command(cmd))
            throw Error(ErrorKind::Config, "permission denied: \"" + printable(cmd) +
                                               "\" needs root or the control socket's command "
                                               "group; this connection may only read status "
                                               "and subscribe");
        if (cmd == "subscribe") {
            if (subscribe) *subscribe = true;
            response = Json{{"ok", true}, {"subscribed", true}};
        } else {
            response = handler(req);
            if (!response.is_object()) response = Json{{"ok", true}, {"result", response}};
        }
    } catch (const std::exception& e) {
        response = Json{{"ok", false}, {"error", printable(e.what())}};
    } catch (...) {
        response = Json{{"ok", false}, {"error", "internal error"}};
    }
    if (!id.is_null()) response["id"] = id;
    return to_line(response);
}

ControlServer::ControlServer(std::string path, Handler handler, ControlOptions options)
    : path_(std::move(path)), handler_(std::move(handler)), options_(std::move(options)) {
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
    // Created with no permission for anyone, then opened up as configured: nobody can connect
    // in between with more rights than the configuration grants.
    const mode_t old_umask = ::umask(0777);
    const int bound = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old_umask);
    if (bound != 0 ||
        (options_.command_group && ::chown(path_.c_str(), 0, *options_.command_group) != 0) ||
        ::chmod(path_.c_str(), options_.mode) != 0 || ::listen(listen_fd_, 16) != 0) {
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
    stop_ = true;
    wake();
    if (thread_.joinable()) thread_.join();
    for (auto& cl : clients_)
        ::close(cl.fd);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::unlink(path_.c_str());
}

void ControlServer::wake() {
    char c = 'w';
    (void)!::write(wake_[1], &c, 1); // a full pipe already wakes the loop
}

void ControlServer::queue(Client& c, const std::string& line) {
    if (c.dead) return;
    if (c.out.size() + line.size() + 1 > options_.max_pending_output) {
        // It does not read what it asked for (or what it subscribed to): it is gone.
        LOG_WARN("control socket: dropping a client (uid " << c.uid << ") that does not read");
        c.dead = true;
        return;
    }
    c.out += line;
    c.out.push_back('\n');
}

void ControlServer::broadcast(const Json& event) {
    const std::string line = to_line(event);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        last_event_ = line;
        for (auto& c : clients_)
            if (c.subscribed) queue(c, line);
    }
    wake(); // the server thread sends; this thread never touches a client socket
}

void ControlServer::evict_one_idle() {
    // The connection that has gone longest without a request makes room; watchers that only
    // listen (subscribed) go last.
    auto victim = clients_.end();
    for (auto it = clients_.begin(); it != clients_.end(); ++it) {
        if (it->dead) return; // room is being made already
        if (victim == clients_.end() || (victim->subscribed && !it->subscribed) ||
            (victim->subscribed == it->subscribed && it->last_request < victim->last_request))
            victim = it;
    }
    if (victim != clients_.end()) victim->dead = true;
}

void ControlServer::accept_client() {
    for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            ::close(fd);
            continue;
        }
        size_t live = 0;
        for (const auto& c : clients_)
            live += c.dead ? 0 : 1;
        if (live >= options_.max_clients) evict_one_idle();
        Client c;
        c.fd = fd;
        c.uid = cred.uid;
        c.may_command = may_send_commands(fd, cred, options_.command_group);
        c.last_request = Clock::now();
        clients_.push_back(std::move(c));
    }
}

void ControlServer::read_from(Client& c) {
    char buf[4096];
    for (int rounds = 0; rounds < 16 && !c.dead && !c.closing; ++rounds) {
        ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n == 0) {
            c.closing = true; // the peer is done sending: answer what it asked, then close
            return;
        }
        if (n < 0) {
            c.dead = true;
            return;
        }
        c.in.append(buf, static_cast<size_t>(n));
        size_t start = 0, pos;
        while (!c.dead && (pos = c.in.find('\n', start)) != std::string::npos) {
            std::string line = c.in.substr(start, pos - start);
            start = pos + 1;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty()) continue;
            c.last_request = Clock::now();
            bool subscribe = false;
            queue(c, answer_request(line, c.may_command, handler_, &subscribe));
            if (subscribe) {
                c.subscribed = true;
                // The latest event follows a subscription's answer, so a late subscriber learns
                // where the agent is (waiting for the vehicle, for consent, ...) at once.
                if (!last_event_.empty()) queue(c, last_event_);
            }
        }
        c.in.erase(0, start);
        if (c.in.size() > options_.max_request_line) {
            queue(c, to_line(Json{{"ok", false},
                                  {"error", "request line longer than " +
                                                std::to_string(options_.max_request_line) +
                                                " bytes: closing the connection"}}));
            c.in.clear();
            c.closing = true;
        }
    }
}

void ControlServer::write_to(Client& c) {
    while (!c.dead && !c.out.empty()) {
        ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.out.erase(0, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        c.dead = true;
    }
    if (c.closing && c.out.empty()) c.dead = true;
}

void ControlServer::close_dead_and_idle() {
    const auto now = Clock::now();
    for (auto& c : clients_)
        if (!c.subscribed && now - c.last_request > options_.idle_timeout) c.dead = true;
    auto gone = std::remove_if(clients_.begin(), clients_.end(), [](const Client& c) {
        if (c.dead) ::close(c.fd);
        return c.dead;
    });
    clients_.erase(gone, clients_.end());
}

void ControlServer::loop() {
    std::vector<pollfd> fds;
    while (!stop_) {
        fds.clear();
        fds.push_back({wake_[0], POLLIN, 0});
        fds.push_back({listen_fd_, POLLIN, 0});
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (const auto& c : clients_) {
                short events = c.closing ? 0 : POLLIN;
                if (!c.out.empty()) events |= POLLOUT;
                fds.push_back({c.fd, events, 0});
            }
        }
        // Wakes at least once a second to time idle clients out.
        if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
            LOG_ERROR("control socket poll failed: " << std::strerror(errno));
            return;
        }
        if (fds[0].revents) {
            char drain[256];
            while (::read(wake_[0], drain, sizeof drain) > 0) {
            }
        }
        if (stop_) return;
        std::lock_guard<std::mutex> lock(mutex_);
        // Clients are only added and removed on this thread, so indexes still match `fds`.
        for (size_t i = 2; i < fds.size(); ++i) {
            Client& c = clients_[i - 2];
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_from(c);
        }
        for (auto& c : clients_)
            write_to(c); // answers just queued, and events a broadcast queued
        if (fds[1].revents & POLLIN) accept_client();
        close_dead_and_idle();
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
    std::string line = to_line(request) + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw Error(ErrorKind::Network, "cannot send to " + path);
    std::string in;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (in.find('\n') == std::string::npos) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
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
    return parse_json(in.substr(0, in.find('\n')), "the agent's answer");
}

} // namespace ota::service
