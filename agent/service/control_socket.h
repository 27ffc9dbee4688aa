// The daemon's local control API: a Unix stream socket speaking JSON lines (docs/service.md).
// Each request is one JSON object on one line; each gets one response line. A client that sent
// {"cmd":"subscribe"} also receives the latest event, then every progress event as a line until it
// disconnects.
// The server runs on its own thread with non-blocking sockets: every client has a bounded output
// buffer, and one that does not read (or sends too much) is dropped, so no client can stall the
// others or the update engine. Each peer's uid is taken from SO_PEERCRED: only root and the
// configured command group may send commands; everyone else may only watch.
// Requests are answered by a handler the daemon provides.
#pragma once
#include "agent/common/canonical_json.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace ota::update {
struct AgentConfig;
}

namespace ota::service {

struct ControlOptions {
    mode_t mode = 0660; // of the socket file: who may connect at all
    // Besides root, members of this group may send commands; nullopt = root only.
    std::optional<gid_t> command_group;
    std::string command_group_name; // for messages
    size_t max_clients = 32;        // a new client beyond this evicts the longest-idle one
    size_t max_request_line = 64 * 1024;
    size_t max_pending_output = 256 * 1024; // a client that lets more pile up is dropped
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)}; // without a request
};

// The options the configuration asks for (control_socket_mode, control_socket_group). Throws
// Error(Config) when the group does not exist.
ControlOptions control_options(const update::AgentConfig& config);

// Whether a command only reads (allowed to every peer that can connect).
bool is_read_only_command(const std::string& cmd);

// handler(request) -> response object (without "id", which the server echoes). Runs on the
// server thread; must not block for long. It only sees requests the peer may send.
using ControlHandler = std::function<Json(const Json& request)>;

// One request line -> one response line (without the newline), always valid JSON in UTF-8,
// whatever the line holds: bytes that are not UTF-8, deep nesting, a handler that throws.
// Sets *subscribe when the request was a subscription.
std::string answer_request(const std::string& line, bool may_command, const ControlHandler& handler,
                           bool* subscribe);

class ControlServer {
public:
    using Handler = ControlHandler;

    // Binds `path` (options.mode, group options.command_group; a stale socket file is replaced)
    // and starts the thread.
    ControlServer(std::string path, Handler handler, ControlOptions options = {});
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Queues one event line for every subscribed client and returns at once: it never waits for
    // a client (one whose buffer is full is dropped).
    void broadcast(const Json& event);

private:
    struct Client {
        int fd = -1;
        std::string in;
        std::string out;
        bool subscribed = false;
        bool may_command = false;
        bool closing = false; // close once `out` is sent
        bool dead = false;    // close now
        uid_t uid = 0;
        std::chrono::steady_clock::time_point last_request;
    };
    void loop();
    void accept_client();
    void read_from(Client& c);
    void write_to(Client& c);
    void queue(Client& c, const std::string& line);
    void evict_one_idle();
    void close_dead_and_idle();
    void wake();

    std::string path_;
    Handler handler_;
    ControlOptions options_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::atomic<bool> stop_{false};
    std::mutex mutex_; // guards clients_ and last_event_ (broadcast comes from other threads)
    std::vector<Client> clients_;
    std::string last_event_; // replayed to each new subscriber
    std::thread thread_;
};

// Client side (ota-agent commands, tests): connects, sends one request, returns the response.
Json control_request(const std::string& path, const Json& request, int timeout_ms = 5000);

} // namespace ota::service
