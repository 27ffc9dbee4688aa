// libFuzzer target: the bundle header parser and validator (all bounds, op order, extents, files).
#include "agent/bundle/header.h"
#include "agent/common/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        ota::bundle::Header h =
            ota::bundle::parse_header(std::string(reinterpret_cast<const char*>(data), size));
        // A header that parsed must serialize and parse again to the same thing.
        std::string again = ota::bundle::header_to_json(h);
        ota::bundle::Header h2 = ota::bundle::parse_header(again);
        if (ota::bundle::header_to_json(h2) != again) __builtin_trap();
    } catch (const ota::Error&) {
    }
    return 0;
}
