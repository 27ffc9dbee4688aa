// The daemon's local control API: a Unix stream socket speaking JSON lines (docs/service.md).
// Each request is one JSON object on one line; each gets one response line. A client that sent
// {"cmd":"subscribe"} also receives the latest event, then every progress event as a line until it
// disconnects.
// The server runs on its own thread; requests are answered by a handler the daemon provides.
#pragma once
#include "agent/common/canonical_json.h"

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ota::service {

class ControlServer {
public:
    // handler(request) -> response object (without "id", which the server echoes). Runs on the
    // server thread; must not block for long.
    using Handler = std::function<Json(const Json& request)>;

    // Binds `path` (mode 0660; a stale socket file is replaced) and starts the thread.
    ControlServer(std::string path, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Sends one event line to every subscribed client (slow clients are dropped, never waited on).
    void broadcast(const Json& event);

private:
    struct Client {
        int fd;
        std::string in;
        bool subscribed = false;
    };
    void loop();
    void handle_line(Client& c, const std::string& line);
    static bool send_line(int fd, const std::string& line);

    std::string path_;
    Handler handler_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::mutex mutex_; // guards clients_ (broadcast comes from other threads)
    std::vector<Client> clients_;
    std::string last_event_; // replayed to each new subscriber
    std::thread thread_;
};

// Client side (ota-agent commands, tests): connects, sends one request, returns the response.
Json control_request(const std::string& path, const Json& request, int timeout_ms = 5000);

} // namespace ota::service
