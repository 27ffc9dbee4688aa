// libFuzzer target: the agent's one JSON entry point (parse_json). Whatever the bytes, it returns
// a document or throws Error(Malformed); a document it returns is nested at most kMaxJsonDepth
// levels and valid UTF-8 (so canonical_json and dump never throw for that reason), and an error
// message is printable ASCII (it may be put in a JSON answer or a log line).
#include "agent/common/canonical_json.h"
#include "agent/common/error.h"

#include <cstdint>
#include <string>

namespace {

int depth_of(const ota::Json& j) {
    int deepest = 0;
    if (j.is_structured())
        for (const auto& child : j)
            deepest = std::max(deepest, depth_of(child));
    return j.is_structured() ? deepest + 1 : 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        ota::Json j = ota::parse_json(text, "input");
        if (depth_of(j) > ota::kMaxJsonDepth) __builtin_trap();
        const std::string dumped = j.dump(); // throws type_error.316 on invalid UTF-8
        if (ota::invalid_utf8_offset(dumped) != std::string::npos) __builtin_trap();
        try {
            ota::canonical_json(j);
        } catch (const ota::Error&) { // floating point numbers only
        }
    } catch (const ota::Error& e) {
        if (e.kind() != ota::ErrorKind::Malformed) __builtin_trap();
        for (unsigned char c : std::string(e.what()))
            if (c < 0x20 || c > 0x7e) __builtin_trap(); // printable ASCII only
    }
    return 0;
}
