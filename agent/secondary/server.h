// ota-secondary's TCP server: one connection at a time (a secondary has one primary), each frame
// answered from SecondaryEcu. A frame that cannot be read (bad header, too large, cut, idle past
// the timeout) ends its connection; nothing a peer sends ends the server.
#pragma once
#include "agent/secondary/secondary_ecu.h"
#include "agent/uptane/protocol.h"

#include <csignal>
#include <cstdint>
#include <string>

namespace ota::secondary {

class Server {
public:
    Server(SecondaryEcu& ecu, const std::string& listen_address, int timeout_s);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    uint16_t port() const { return port_; }
    // Serves until `stop` becomes non-zero (a signal handler sets it; accept() then returns).
    void run(const volatile std::sig_atomic_t& stop);
    void serve_connection(int fd);

private:
    Json handle(const uptane::protocol::Frame& frame, bool* reboot_after);

    SecondaryEcu& ecu_;
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    int timeout_s_;
};

} // namespace ota::secondary
