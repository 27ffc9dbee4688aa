// Small helpers shared by the hostile-input tests (test_hostile_*.cpp).
#pragma once
#include "agent/common/canonical_json.h"

#include <string>

namespace ota::test::hostile {

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A metadata envelope whose "signed" object holds `levels` nested arrays ([[[...]]]) or objects
// ({"a":{"a":...}}): a few hundred KiB, below every size cap, and far too deep for any recursive
// walk of the parsed tree.
inline std::string deep_envelope(bool arrays, size_t levels) {
    std::string deep;
    if (arrays) {
        deep.reserve(levels * 2);
        deep.append(levels, '[');
        deep.append(levels, ']');
    } else {
        deep.reserve(levels * 6 + 1);
        for (size_t i = 0; i < levels; ++i)
            deep += "{\"a\":";
        deep += "1";
        deep.append(levels, '}');
    }
    return "{\"signatures\":[],\"signed\":{\"_type\":\"root\",\"spec_version\":\"1.0.31\","
           "\"version\":2,\"expires\":\"2099-01-01T00:00:00Z\",\"x\":" +
           deep + "}}";
}

} // namespace ota::test::hostile
