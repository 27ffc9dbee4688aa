#include "agent/secondary/server.h"

#include "agent/common/error.h"
#include "agent/common/log.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/secondary_client.h"

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ota::secondary {

using namespace uptane;
using protocol::MessageType;

Server::Server(SecondaryEcu& ecu, const std::string& listen_address, int timeout_s)
    : ecu_(ecu), timeout_s_(timeout_s) {
    auto [host, port] = parse_address(listen_address);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
        throw Error(ErrorKind::Config,
                    "cannot resolve " + listen_address + ": " + gai_strerror(rc));
    std::string error = "no address";
    for (addrinfo* a = res; a && listen_fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 4) == 0) {
            listen_fd_ = fd;
            sockaddr_storage bound{};
            socklen_t len = sizeof bound;
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
            port_ = ntohs(bound.ss_family == AF_INET6
                              ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        } else {
            error = std::strerror(errno);
            ::close(fd);
        }
    }
    ::freeaddrinfo(res);
    if (listen_fd_ < 0)
        throw Error(ErrorKind::Io, "cannot listen on " + listen_address + ": " + error);
}

Server::~Server() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

void Server::run(const volatile std::sig_atomic_t& stop) {
    while (!stop) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            throw Error(ErrorKind::Io, std::string("accept failed: ") + std::strerror(errno));
        }
        serve_connection(fd);
    }
}

Json Server::handle(const protocol::Frame& frame, bool* reboot_after) {
    const auto type = static_cast<MessageType>(frame.type);
    if (type == MessageType::GetInfo) {
        if (!frame.body.empty()) throw Error(ErrorKind::Malformed, "GET_INFO has no body");
        return protocol::ok_response(info_to_json(ecu_.info()));
    }
    const Json body = protocol::parse_body(frame);
    switch (type) {
    case MessageType::PutMetadata: {
        std::optional<ImageOffer> offer = ecu_.put_metadata(metadata_from_json(body));
        return protocol::ok_response(
            Json{{"instruction", offer ? offer_to_json(*offer) : Json(nullptr)}});
    }
    case MessageType::ImageBegin:
        return protocol::ok_response(Json{{"offset", ecu_.image_begin(offer_from_json(body))}});
    case MessageType::ImageEnd: ecu_.image_end(); return protocol::ok_response();
    case MessageType::Install: {
        require_only_keys(body, {"filepath"}, "INSTALL");
        return protocol::ok_response(Json{
            {"slot",
             ecu_.install(require_string(body, "filepath", kMaxTargetNameLength, "INSTALL"))}});
    }
    case MessageType::Activate:
        ecu_.activate();
        *reboot_after = true;
        return protocol::ok_response(Json{{"reboot", true}});
    case MessageType::Abort: ecu_.abort(); return protocol::ok_response();
    case MessageType::GetVersionReport: {
        require_only_keys(body, {"nonce"}, "GET_VERSION_REPORT");
        const std::string nonce =
            require_string(body, "nonce", kMaxNonceLength, "GET_VERSION_REPORT");
        return protocol::ok_response(Json{{"report", ecu_.version_report(nonce)}});
    }
    default: throw Error(ErrorKind::Malformed, "not a request");
    }
}

void Server::serve_connection(int fd) {
    protocol::Connection connection(fd, timeout_s_);
    while (true) {
        protocol::Frame frame;
        try {
            if (!connection.receive(frame)) break;
        } catch (const std::exception& e) {
            LOG_WARN("connection dropped: " << e.what());
            break;
        }
        if (frame.type & protocol::kResponseBit) {
            LOG_WARN("connection dropped: the peer sent a response frame");
            break;
        }
        if (frame.type == static_cast<uint8_t>(MessageType::ImageData)) {
            try {
                ecu_.image_data(frame.body.data(), frame.body.size());
            } catch (const std::exception& e) {
                LOG_WARN("IMAGE_DATA refused: " << e.what());
                break; // out of sequence: the stream cannot be resynchronised
            }
            continue;
        }
        Json answer;
        bool reboot_after = false;
        try {
            answer = handle(frame, &reboot_after);
        } catch (const Error& e) {
            LOG_WARN(protocol::message_type_name(frame.type) << " refused: " << e.what());
            answer = protocol::error_response(error_kind_name(e.kind()), e.what());
        } catch (const std::bad_alloc&) {
            answer = protocol::error_response("too-large", "out of memory");
        } catch (const std::exception& e) {
            LOG_WARN(protocol::message_type_name(frame.type) << " failed: " << e.what());
            answer = protocol::error_response("state", e.what());
        }
        try {
            connection.send(frame.type | protocol::kResponseBit, protocol::dump_body(answer));
        } catch (const std::exception& e) {
            LOG_WARN("answer not sent: " << e.what());
            break;
        }
        if (reboot_after) {
            try {
                ecu_.reboot();
            } catch (const std::exception& e) {
                LOG_ERROR("reboot failed: " << e.what());
            }
        }
    }
    ecu_.image_abandon();
}

} // namespace ota::secondary
