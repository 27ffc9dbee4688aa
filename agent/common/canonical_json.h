// Canonical JSON as TUF/securesystemslib define it: object keys sorted, no insignificant
// whitespace, strings escape only '"' and '\\', integers only (floats are rejected).
// parse_json is the agent's one entry point for JSON text from anywhere (network, bundles, the
// control socket, files on disk): every document it returns is valid UTF-8 and nested at most
// kMaxJsonDepth levels, so no later recursive walk (copy, dump, canonical form) can overflow the
// stack.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace ota {

using Json = nlohmann::json;

// Containers inside containers: `[[1]]` is 2 levels. TUF metadata needs 6, our files fewer.
constexpr int kMaxJsonDepth = 64;

// Throws Error(Malformed) for values canonical JSON cannot represent (floating point numbers).
std::string canonical_json(const Json& value);

// Parses untrusted JSON text; throws Error(Malformed) naming `what` and the position on failure:
// invalid UTF-8 anywhere in the text, nesting deeper than max_depth (refused while parsing, before
// the deep part is built), or any syntax error.
Json parse_json(const std::string& text, const std::string& what, int max_depth = kMaxJsonDepth);

// Offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF); std::string::npos when the whole text is valid.
size_t invalid_utf8_offset(const std::string& text);

// `text` with every byte that is not printable ASCII shown as \xNN: safe to put in a message that
// may end up in JSON, a log line or a terminal.
std::string printable(const std::string& text);

} // namespace ota
