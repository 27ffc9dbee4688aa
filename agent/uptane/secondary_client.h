// The primary's end of the secondary protocol: one TCP connection to one secondary ECU.
// Every call is one request and its answer; an answer {"ok": false} becomes an ota::Error of the
// kind the secondary named, with its message.
#pragma once
#include "agent/tuf/metadata.h"
#include "agent/uptane/messages.h"
#include "agent/uptane/protocol.h"
#include "agent/uptane/pushed_metadata.h"

#include <cstdint>
#include <optional>
#include <string>

namespace ota::uptane {

class SecondaryClient {
public:
    SecondaryClient(std::string host, uint16_t port, int timeout_s = 60);

    SecondaryInfo get_info();
    // The secondary verifies the metadata (full or partial) and answers the instruction it found
    // for itself (nullopt: nothing to install).
    std::optional<ImageOffer> put_metadata(const SecondaryMetadata& metadata);
    // Streams `file` as the image `offer` names, from the offset the secondary already holds
    // (resume). Returns that offset. The secondary verifies length and hashes at the end.
    uint64_t send_image(const ImageOffer& offer, const std::string& file,
                        size_t chunk_size = 256 * 1024);
    // Writes and verifies the inactive slot; nothing is switched yet.
    void install(const std::string& filepath);
    // Switches the boot order to the written slot and has the ECU reboot.
    void activate();
    // Drops a staged update (the slot stays unbootable, the running image untouched).
    void abort();
    // The signed ECU version report, answering `nonce`.
    Json version_report(const std::string& nonce);

    // One request and its answer (for tests that speak the protocol by hand too).
    Json request(protocol::MessageType type, const std::string& body);
    protocol::Connection& connection();

private:
    std::string host_;
    uint16_t port_;
    int timeout_s_;
    std::optional<protocol::Connection> connection_;
};

// Parses "HOST:PORT" ("[v6]:PORT" too); throws Error(Config).
std::pair<std::string, uint16_t> parse_address(const std::string& address);

} // namespace ota::uptane
