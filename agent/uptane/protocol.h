// The primary <-> secondary protocol (manifests/UPTANE-SECONDARY.md): length-bounded frames over
// TCP. Every frame is a 12-byte header and a body:
//
//   "OTAS" | version (1 byte, = 1) | type (1 byte) | 0 (2 bytes) | body length (4 bytes, BE)
//
// Requests carry JSON (IMAGE_DATA: raw bytes); every request but IMAGE_DATA gets one response of
// type (request | 0x80) whose body is JSON {"ok": true, ...} or {"ok": false, "error": KIND,
// "message": TEXT}. The body length is checked against the bound of its type before anything is
// allocated.
#pragma once
#include "agent/common/canonical_json.h"

#include <cstdint>
#include <string>

namespace ota::uptane::protocol {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 12;

enum class MessageType : uint8_t {
    GetInfo = 0x01,
    PutMetadata = 0x02,
    ImageBegin = 0x03,
    ImageData = 0x04,
    ImageEnd = 0x05,
    Install = 0x06,
    Activate = 0x07,
    Abort = 0x08,
    GetVersionReport = 0x09,
};
constexpr uint8_t kResponseBit = 0x80;

constexpr uint32_t kMaxControlBody = 64 * 1024;
constexpr uint32_t kMaxMetadataBody = 24u << 20;
constexpr uint32_t kMaxImageChunk = 1u << 20;

const char* message_type_name(uint8_t type);
// The largest body a frame of this type may carry (requests and responses); 0 for unknown types.
uint32_t max_body_size(uint8_t type);

struct Frame {
    uint8_t type = 0;
    std::string body;
};

std::string encode_frame(uint8_t type, const std::string& body);

// Parses and checks a header: magic, version, reserved bytes, known type and its body bound.
// Throws Error(Malformed) / Error(Unsupported) (other version) / Error(TooLarge).
uint32_t decode_header(const uint8_t* header, uint8_t* type);

// A connected TCP socket with per-operation timeouts. Reads and writes whole frames; a peer that
// closes or stalls longer than the timeout ends the frame with Error(Network).
class Connection {
public:
    explicit Connection(int fd, int timeout_s = 60);
    static Connection connect_to(const std::string& host, uint16_t port, int timeout_s = 60);
    ~Connection();
    Connection(Connection&& o) noexcept;
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void send(uint8_t type, const std::string& body);
    // Returns false when the peer closed the connection cleanly before a new frame began.
    bool receive(Frame& frame);
    void close();
    int fd() const { return fd_; }

private:
    void read_exact(void* buf, size_t size, bool* clean_eof);
    int fd_ = -1;
};

// Response bodies.
Json ok_response(Json fields = Json::object());
Json error_response(const std::string& kind, const std::string& message);

// JSON text of a body; invalid UTF-8 in strings is replaced, so encoding never throws.
std::string dump_body(const Json& body);
// The JSON of a request or response body, bounded (depth, size by frame).
Json parse_body(const Frame& frame);

} // namespace ota::uptane::protocol
