// The secondary protocol under hostile input, against a real ota-secondary: every frame is
// bounded before anything is allocated, a frame it cannot accept ends that connection only, a
// request it refuses gets a specific error, and nothing a peer sends ends the program or changes
// its state.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/protocol.h"
#include "uptane/uptane_fixture.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::uptane;
using namespace ota::uptane;
using protocol::MessageType;

namespace {

std::string header(uint8_t version, uint8_t type, uint32_t length, uint8_t reserved = 0) {
    std::string h = "OTAS";
    h += static_cast<char>(version);
    h += static_cast<char>(type);
    h += static_cast<char>(reserved);
    h += '\0';
    for (int i = 3; i >= 0; --i)
        h += static_cast<char>((length >> (8 * i)) & 0xff);
    return h;
}

int connect_raw(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// Sends raw bytes and nothing more; true when the secondary then closed the connection without
// answering.
bool closed_after(int port, const std::string& bytes) {
    int fd = connect_raw(port);
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    ::close(fd);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

void require_alive(Vehicle& v, Secondary& s) {
    int status = 0;
    REQUIRE(::waitpid(s.pid, &status, WNOHANG) == 0);
    SecondaryClient client = v.client(s);
    CHECK(client.get_info().ecu_serial == s.serial);
}

Json refused(SecondaryClient& client, MessageType type, const std::string& body,
             const std::string& kind, const std::string& text) {
    try {
        client.request(type, body);
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(error_kind_name(e.kind()) == kind);
        CHECK(std::string(e.what()).find(text) != std::string::npos);
        return nullptr;
    }
    FAIL("expected " << kind << ": " << text);
    return nullptr;
}

} // namespace

TEST_CASE("uptane protocol: frame headers are checked before anything is allocated") {
    const auto type = [](MessageType t) { return static_cast<uint8_t>(t); };
    uint8_t t = 0;
    auto decode = [&](const std::string& h) {
        return protocol::decode_header(reinterpret_cast<const uint8_t*>(h.data()), &t);
    };
    CHECK(decode(header(1, type(MessageType::PutMetadata), protocol::kMaxMetadataBody)) ==
          protocol::kMaxMetadataBody);
    CHECK(t == type(MessageType::PutMetadata));
    auto refuses = [&](const std::string& h, ErrorKind kind) {
        try {
            decode(h);
        } catch (const Error& e) {
            CHECK(e.kind() == kind);
            return;
        }
        FAIL("header accepted");
    };
    refuses("GET / HTTP/1.", ErrorKind::Malformed);
    refuses(header(2, type(MessageType::GetInfo), 0), ErrorKind::Unsupported);
    refuses(header(1, type(MessageType::GetInfo), 0, 1), ErrorKind::Malformed);
    refuses(header(1, 0x42, 0), ErrorKind::Malformed);
    refuses(header(1, type(MessageType::PutMetadata), protocol::kMaxMetadataBody + 1),
            ErrorKind::TooLarge);
    refuses(header(1, type(MessageType::ImageData), protocol::kMaxImageChunk + 1),
            ErrorKind::TooLarge);
    refuses(header(1, type(MessageType::GetInfo), protocol::kMaxControlBody + 1),
            ErrorKind::TooLarge);
    refuses(header(1, type(MessageType::GetInfo) | protocol::kResponseBit, 0xffffffffu),
            ErrorKind::TooLarge);
    // Encoding refuses what decoding would.
    CHECK_THROWS_AS(protocol::encode_frame(type(MessageType::Install),
                                           std::string(protocol::kMaxControlBody + 1, 'x')),
                    Error);
}

TEST_CASE("uptane protocol: ota-secondary survives hostile frames and requests") {
    Vehicle v;
    Secondary& s = v.full();
    const SecondarySnapshot before = v.snapshot(s);
    const auto type = [](MessageType t) { return static_cast<uint8_t>(t); };

    SECTION("frames that end the connection") {
        CHECK(closed_after(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        CHECK(closed_after(s.port, header(2, type(MessageType::GetInfo), 0)));
        CHECK(closed_after(s.port, header(1, type(MessageType::GetInfo), 0, 7)));
        CHECK(closed_after(s.port, header(1, 0x42, 0)));
        CHECK(closed_after(s.port, header(1, type(MessageType::PutMetadata), 0xffffffffu)));
        CHECK(closed_after(s.port, header(1, type(MessageType::ImageData), 2u << 20)));
        CHECK(closed_after(s.port, header(1, type(MessageType::GetInfo) | 0x80, 2) + "{}"));
        CHECK(closed_after(s.port, header(1, type(MessageType::ImageData), 10) + "0123456789"));
        CHECK(closed_after(s.port, header(1, type(MessageType::PutMetadata), 1000) + "{\"dir"));
        CHECK(closed_after(s.port, "OTAS"));
        require_alive(v, s);
    }
    SECTION("requests that are refused with a specific error; the connection stays usable") {
        SecondaryClient client = v.client(s);
        refused(client, MessageType::PutMetadata,
                std::string(100000, '[') + std::string(100000, ']'), "malformed",
                "nested deeper than");
        refused(client, MessageType::PutMetadata, "{not json", "malformed", "not valid JSON");
        refused(client, MessageType::PutMetadata, "[]", "malformed", "must be an object");
        refused(client, MessageType::PutMetadata,
                protocol::dump_body(
                    Json{{"director", Json{{"roots", Json{{"2", std::string(70000, 'r')}}},
                                           {"timestamp", ""},
                                           {"snapshot", ""},
                                           {"targets", ""},
                                           {"delegated", Json::object()}}},
                         {"image", nullptr}}),
                "too-large", "root 2 is not a string of at most 65536 bytes");
        Json many = Json::object();
        for (int i = 2; i < 40; ++i)
            many[std::to_string(i)] = "{}";
        refused(client, MessageType::PutMetadata,
                protocol::dump_body(Json{{"director", Json{{"roots", many},
                                                           {"timestamp", ""},
                                                           {"snapshot", ""},
                                                           {"targets", ""},
                                                           {"delegated", Json::object()}}},
                                         {"image", nullptr}}),
                "too-large", "more than 32 roots");
        refused(client, MessageType::PutMetadata,
                protocol::dump_body(Json{{"director", Json{{"roots", Json::object()},
                                                           {"timestamp", "x"},
                                                           {"snapshot", "x"},
                                                           {"targets", "{\"signed\": 1}"},
                                                           {"delegated", Json::object()}}},
                                         {"image", Json{{"roots", Json::object()},
                                                        {"timestamp", "garbage"},
                                                        {"snapshot", ""},
                                                        {"targets", ""},
                                                        {"delegated", Json::object()}}}}),
                "malformed", "");
        refused(client, MessageType::GetInfo, "x", "malformed", "GET_INFO has no body");
        refused(client, MessageType::GetVersionReport,
                protocol::dump_body(Json{{"nonce", std::string(1000, 'n')}}), "too-large",
                "\"nonce\" is longer than 64 bytes");
        refused(client, MessageType::ImageBegin,
                protocol::dump_body(Json{{"filepath", "x"},
                                         {"length", 5},
                                         {"hashes", Json{{"sha256", std::string(64, '0')}}}}),
                "state", "no verified instruction");
        refused(client, MessageType::ImageBegin,
                protocol::dump_body(
                    Json{{"filepath", "x"}, {"length", -1}, {"hashes", Json::object()}}),
                "malformed", "non-negative");
        refused(client, MessageType::Install, protocol::dump_body(Json{{"filepath", "a\xff\xfe"}}),
                "state", "is not the instructed image");
        refused(client, MessageType::Install, "{\"filepath\": 5}", "malformed", "must be a string");
        refused(client, MessageType::Activate, "{}", "state", "no written slot");
        refused(client, MessageType::ImageEnd, "{}", "state", "IMAGE_END without IMAGE_BEGIN");
        // Still the same connection, still answering.
        CHECK(client.get_info().ecu_serial == s.serial);
        SecondarySnapshot after = v.snapshot(s);
        CHECK(after == before);
    }
    SECTION("image data out of sequence ends the connection") {
        SecondaryClient client = v.client(s);
        client.connection().send(type(MessageType::ImageData), "data");
        protocol::Frame f;
        CHECK_FALSE(client.connection().receive(f)); // closed without an answer
        require_alive(v, s);
    }
    CHECK(v.snapshot(s) == before);
}

TEST_CASE("uptane protocol: an image is bounded by its signed length and checked by its hashes") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
    Secondary& s = v.full();
    std::optional<ImageOffer> offer = v.push(s, v.served_metadata(s));
    REQUIRE(offer);
    const std::string image = v.image_repo() + "/targets/brake-ecu/" + offer->hashes.at("sha256") +
                              ".rootfs-2.full.bundle";
    const std::string bytes = read_all(image);
    REQUIRE(bytes.size() == offer->length);
    const auto data = static_cast<uint8_t>(MessageType::ImageData);

    SECTION("more bytes than the signed length") {
        SecondaryClient client = v.client(s);
        client.request(MessageType::ImageBegin, protocol::dump_body(offer_to_json(*offer)));
        client.connection().send(data, bytes.substr(0, 1000));
        client.connection().send(data, bytes.substr(1000) + "x"); // one byte too many
        refused(client, MessageType::ImageEnd, "{}", "too-large",
                "more bytes than its signed length");
        CHECK(file_size(s.state_dir + "/image.partial") == 1000);
    }
    SECTION("other bytes of the right length") {
        std::string other = bytes;
        other[other.size() / 2] ^= 0x01;
        SecondaryClient client = v.client(s);
        client.request(MessageType::ImageBegin, protocol::dump_body(offer_to_json(*offer)));
        for (size_t pos = 0; pos < other.size(); pos += 100000)
            client.connection().send(data, other.substr(pos, 100000));
        refused(client, MessageType::ImageEnd, "{}", "hash-mismatch", "does not match its sha256");
        CHECK_FALSE(file_exists(s.state_dir + "/image.partial"));
        CHECK_FALSE(file_exists(s.state_dir + "/image.bundle"));
        Json begin =
            client.request(MessageType::ImageBegin, protocol::dump_body(offer_to_json(*offer)));
        CHECK(begin["offset"] == 0); // starts over
    }
    SECTION("an image shorter than announced") {
        SecondaryClient client = v.client(s);
        client.request(MessageType::ImageBegin, protocol::dump_body(offer_to_json(*offer)));
        client.connection().send(data, bytes.substr(0, 5000));
        refused(client, MessageType::ImageEnd, "{}", "malformed", "the image ended after 5000");
    }
    // The slots and the boot configuration were never touched.
    CHECK(v.printenv(s)["BOOT_ORDER"] == "A B");
    CHECK(file_hash(s.dir + "/slot-B.img") ==
          file_sha256_hex(s.dir + "/slot-B.img")); // still readable
    require_alive(v, s);
}
