#include "agent/uptane/secondary_client.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"

#include <fcntl.h>
#include <vector>

namespace ota::uptane {

namespace {

ErrorKind kind_named(const std::string& name) {
    for (int k = static_cast<int>(ErrorKind::Io); k <= static_cast<int>(ErrorKind::Unsupported);
         ++k)
        if (name == error_kind_name(static_cast<ErrorKind>(k))) return static_cast<ErrorKind>(k);
    return ErrorKind::State;
}

} // namespace

std::pair<std::string, uint16_t> parse_address(const std::string& address) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
        throw Error(ErrorKind::Config, "address must be HOST:PORT, got \"" + address + "\"");
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const std::string port = address.substr(colon + 1);
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535)
        throw Error(ErrorKind::Config, "bad port in address \"" + address + "\"");
    return {host, static_cast<uint16_t>(std::stoul(port))};
}

SecondaryClient::SecondaryClient(std::string host, uint16_t port, int timeout_s)
    : host_(std::move(host)), port_(port), timeout_s_(timeout_s) {}

protocol::Connection& SecondaryClient::connection() {
    if (!connection_) connection_ = protocol::Connection::connect_to(host_, port_, timeout_s_);
    return *connection_;
}

Json SecondaryClient::request(protocol::MessageType type, const std::string& body) {
    const uint8_t t = static_cast<uint8_t>(type);
    try {
        connection().send(t, body);
        protocol::Frame answer;
        if (!connection().receive(answer))
            throw Error(ErrorKind::Network, std::string("the secondary closed the connection "
                                                        "instead of answering ") +
                                                protocol::message_type_name(t));
        if (answer.type != (t | protocol::kResponseBit))
            throw Error(ErrorKind::Malformed, std::string("the secondary answered ") +
                                                  protocol::message_type_name(answer.type) +
                                                  " to " + protocol::message_type_name(t));
        Json j = protocol::parse_body(answer);
        if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean())
            throw Error(ErrorKind::Malformed, "the secondary's answer has no \"ok\"");
        if (!j["ok"].get<bool>()) {
            const std::string kind = j.value("error", std::string("state"));
            const std::string message = j.value("message", std::string("(no message)"));
            throw Error(kind_named(kind), "secondary " + host_ + ":" + std::to_string(port_) +
                                              " refused " + protocol::message_type_name(t) + ": " +
                                              message);
        }
        return j;
    } catch (const Error& e) {
        // After a failed exchange the stream position is unknown: start over on a new connection.
        if (e.kind() == ErrorKind::Network || e.kind() == ErrorKind::Malformed) connection_.reset();
        throw;
    }
}

SecondaryInfo SecondaryClient::get_info() {
    return info_from_json(request(protocol::MessageType::GetInfo, ""));
}

std::optional<ImageOffer> SecondaryClient::put_metadata(const SecondaryMetadata& metadata) {
    Json j = request(protocol::MessageType::PutMetadata,
                     protocol::dump_body(metadata_to_json(metadata)));
    if (!j.contains("instruction") || j["instruction"].is_null()) return std::nullopt;
    return offer_from_json(j["instruction"]);
}

uint64_t SecondaryClient::send_image(const ImageOffer& offer, const std::string& file,
                                     size_t chunk_size) {
    if (chunk_size == 0 || chunk_size > protocol::kMaxImageChunk)
        chunk_size = protocol::kMaxImageChunk;
    if (file_size(file) != offer.length)
        throw Error(ErrorKind::HashMismatch, file + " is not " + std::to_string(offer.length) +
                                                 " bytes long as " + offer.filepath + " is");
    Json begin =
        request(protocol::MessageType::ImageBegin, protocol::dump_body(offer_to_json(offer)));
    const uint64_t offset = require_uint(begin, "offset", "IMAGE_BEGIN answer");
    if (offset > offer.length)
        throw Error(ErrorKind::Malformed, "the secondary claims more bytes than the image has");
    UniqueFd fd = open_or_throw(file, O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(chunk_size);
    uint64_t position = offset;
    try {
        while (position < offer.length) {
            const size_t want =
                static_cast<size_t>(std::min<uint64_t>(chunk_size, offer.length - position));
            pread_all(fd.get(), buf.data(), want, position, file);
            connection().send(static_cast<uint8_t>(protocol::MessageType::ImageData),
                              std::string(buf.data(), want));
            position += want;
        }
    } catch (const Error&) {
        connection_.reset();
        throw;
    }
    request(protocol::MessageType::ImageEnd, "{}");
    return offset;
}

void SecondaryClient::install(const std::string& filepath) {
    request(protocol::MessageType::Install, protocol::dump_body(Json{{"filepath", filepath}}));
}

void SecondaryClient::activate() {
    request(protocol::MessageType::Activate, "{}");
}

void SecondaryClient::abort() {
    request(protocol::MessageType::Abort, "{}");
}

Json SecondaryClient::version_report(const std::string& nonce) {
    Json j = request(protocol::MessageType::GetVersionReport,
                     protocol::dump_body(Json{{"nonce", nonce}}));
    if (!j.contains("report") || !j["report"].is_object())
        throw Error(ErrorKind::Malformed, "GET_VERSION_REPORT answer has no report");
    return j["report"];
}

} // namespace ota::uptane
