// Canonical JSON as TUF/securesystemslib define it: object keys sorted, no insignificant
// whitespace, strings escape only '"' and '\\', integers only (floats are rejected).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace ota {

using Json = nlohmann::json;

// Throws Error(Malformed) for values canonical JSON cannot represent (floating point numbers).
std::string canonical_json(const Json& value);

// Parses untrusted JSON text; throws Error(Malformed) with the parser's position on failure.
Json parse_json(const std::string& text, const std::string& what);

} // namespace ota
