#include "agent/uptane/protocol.h"

#include "agent/common/error.h"
#include "agent/uptane/json_fields.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace ota::uptane::protocol {

namespace {
constexpr char kMagic[4] = {'O', 'T', 'A', 'S'};

bool is_request(uint8_t t) {
    return t >= static_cast<uint8_t>(MessageType::GetInfo) &&
           t <= static_cast<uint8_t>(MessageType::GetVersionReport);
}
} // namespace

const char* message_type_name(uint8_t type) {
    switch (type & ~kResponseBit) {
    case 0x01: return "GET_INFO";
    case 0x02: return "PUT_METADATA";
    case 0x03: return "IMAGE_BEGIN";
    case 0x04: return "IMAGE_DATA";
    case 0x05: return "IMAGE_END";
    case 0x06: return "INSTALL";
    case 0x07: return "ACTIVATE";
    case 0x08: return "ABORT";
    case 0x09: return "GET_VERSION_REPORT";
    default: return "unknown";
    }
}

uint32_t max_body_size(uint8_t type) {
    const uint8_t base = type & ~kResponseBit;
    if (!is_request(base)) return 0;
    if (type & kResponseBit) return kMaxControlBody;
    switch (static_cast<MessageType>(base)) {
    case MessageType::PutMetadata: return kMaxMetadataBody;
    case MessageType::ImageData: return kMaxImageChunk;
    default: return kMaxControlBody;
    }
}

std::string encode_frame(uint8_t type, const std::string& body) {
    if (body.size() > max_body_size(type))
        throw Error(ErrorKind::TooLarge, std::string(message_type_name(type)) + " body of " +
                                             std::to_string(body.size()) +
                                             " bytes exceeds the protocol bound of " +
                                             std::to_string(max_body_size(type)));
    std::string out(kHeaderSize, '\0');
    std::memcpy(out.data(), kMagic, 4);
    out[4] = static_cast<char>(kVersion);
    out[5] = static_cast<char>(type);
    const uint32_t n = static_cast<uint32_t>(body.size());
    for (int i = 0; i < 4; ++i)
        out[8 + i] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
    out += body;
    return out;
}

uint32_t decode_header(const uint8_t* h, uint8_t* type) {
    if (std::memcmp(h, kMagic, 4) != 0)
        throw Error(ErrorKind::Malformed, "not a frame of the secondary protocol (bad magic)");
    if (h[4] != kVersion)
        throw Error(ErrorKind::Unsupported, "protocol version " + std::to_string(h[4]) +
                                                " is not supported (this side "
                                                "speaks version " +
                                                std::to_string(kVersion) + ")");
    if (h[6] != 0 || h[7] != 0)
        throw Error(ErrorKind::Malformed, "reserved header bytes must be zero");
    *type = h[5];
    const uint32_t max = max_body_size(*type);
    if (max == 0)
        throw Error(ErrorKind::Malformed, "unknown message type " + std::to_string(*type));
    const uint32_t n =
        (uint32_t{h[8]} << 24) | (uint32_t{h[9]} << 16) | (uint32_t{h[10]} << 8) | uint32_t{h[11]};
    if (n > max)
        throw Error(ErrorKind::TooLarge, std::string(message_type_name(*type)) + " body of " +
                                             std::to_string(n) + " bytes exceeds the bound of " +
                                             std::to_string(max));
    return n;
}

Connection::Connection(int fd, int timeout_s) : fd_(fd) {
    timeval tv{};
    tv.tv_sec = timeout_s;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection Connection::connect_to(const std::string& host, uint16_t port, int timeout_s) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
        throw Error(ErrorKind::Network,
                    "cannot resolve secondary " + host + ": " + ::gai_strerror(rc));
    std::string last_error = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            ::freeaddrinfo(res);
            return Connection(fd, timeout_s);
        }
        last_error = std::strerror(errno);
        ::close(fd);
    }
    ::freeaddrinfo(res);
    throw Error(ErrorKind::Network,
                "cannot connect to secondary " + host + ":" + service + ": " + last_error);
}

Connection::~Connection() {
    close();
}

Connection::Connection(Connection&& o) noexcept : fd_(o.fd_) {
    o.fd_ = -1;
}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

void Connection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Connection::send(uint8_t type, const std::string& body) {
    if (fd_ < 0) throw Error(ErrorKind::Network, "connection is closed");
    const std::string frame = encode_frame(type, body);
    size_t done = 0;
    while (done < frame.size()) {
        ssize_t n = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw Error(ErrorKind::Network,
                        std::string("sending ") + message_type_name(type) +
                            " failed: " + (n < 0 ? std::strerror(errno) : "closed"));
        done += static_cast<size_t>(n);
    }
}

void Connection::read_exact(void* buf, size_t size, bool* clean_eof) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::recv(fd_, static_cast<char*>(buf) + done, size - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 && done == 0 && clean_eof) {
            *clean_eof = true;
            return;
        }
        if (n <= 0)
            throw Error(ErrorKind::Network,
                        n == 0
                            ? "the peer closed the connection in the middle of a frame"
                            : std::string("receiving failed: ") +
                                  (errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
                                                                           : std::strerror(errno)));
        done += static_cast<size_t>(n);
    }
}

bool Connection::receive(Frame& frame) {
    if (fd_ < 0) throw Error(ErrorKind::Network, "connection is closed");
    uint8_t header[kHeaderSize];
    bool eof = false;
    read_exact(header, kHeaderSize, &eof);
    if (eof) return false;
    const uint32_t n = decode_header(header, &frame.type);
    frame.body.assign(n, '\0'); // bounded by decode_header
    if (n > 0) read_exact(frame.body.data(), n, nullptr);
    return true;
}

Json ok_response(Json fields) {
    fields["ok"] = true;
    return fields;
}

Json error_response(const std::string& kind, const std::string& message) {
    return Json{{"ok", false}, {"error", kind}, {"message", message.substr(0, kMaxMessageLength)}};
}

std::string dump_body(const Json& body) {
    // Messages may quote hostile input cut at any byte: invalid UTF-8 is replaced, never thrown.
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json parse_body(const Frame& frame) {
    return parse_bounded_json(frame.body, std::string(message_type_name(frame.type)) + " body");
}

} // namespace ota::uptane::protocol
