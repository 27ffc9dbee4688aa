// libFuzzer target: the bundle header parser and validator (all bounds, op order, extents, files),
// for JSON headers (formats 1, 2) and compact ones (format 3). The input is also decoded as a bare
// compact body, so that mutations reach the binary decoder without having to keep a zstd frame
// valid.
#include "agent/bundle/compact_header.h"
#include "agent/bundle/header.h"
#include "agent/common/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    try {
        ota::bundle::Header h = ota::bundle::parse_header(input);
        // A header that parsed must serialize and parse again to the same thing.
        std::string again = ota::bundle::header_bytes(h);
        ota::bundle::Header h2 = ota::bundle::parse_header(again);
        if (ota::bundle::header_bytes(h2) != again) __builtin_trap();
    } catch (const ota::Error&) {
    }
    try {
        ota::bundle::Header h = ota::bundle::parse_compact_body(input);
        ota::bundle::validate_header(h);
        // A valid body has one canonical encoding, which must parse back to itself.
        const std::string body = ota::bundle::compact_body(h);
        ota::bundle::Header h2 =
            ota::bundle::parse_header(ota::bundle::compress_compact_body(body));
        if (ota::bundle::compact_body(h2) != body) __builtin_trap();
    } catch (const ota::Error&) {
    }
    return 0;
}
