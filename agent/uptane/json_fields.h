// Strict, bounded reading of JSON from another ECU or a repository: nesting depth is checked on
// the text before it is parsed, and every field's type and size is checked before it is used.
// All failures are Error(Malformed) (or TooLarge) naming the field.
#pragma once
#include "agent/common/canonical_json.h"

#include <cstdint>
#include <map>
#include <string>

namespace ota::uptane {

constexpr size_t kMaxJsonDepth = 32;
// Serials, hardware ids, vehicle ids, target names and messages.
constexpr size_t kMaxIdLength = 128;
constexpr size_t kMaxTargetNameLength = 1024;
constexpr size_t kMaxMessageLength = 1024;

// Refuses text nested deeper than max_depth (counted outside strings) before parsing it.
Json parse_bounded_json(const std::string& text, const std::string& what,
                        size_t max_depth = kMaxJsonDepth);

const Json& require_member(const Json& obj, const char* name, const std::string& what);
const Json& require_object(const Json& obj, const char* name, const std::string& what);
std::string require_string(const Json& obj, const char* name, size_t max_length,
                           const std::string& what);
uint64_t require_uint(const Json& obj, const char* name, const std::string& what);
int64_t require_int(const Json& obj, const char* name, const std::string& what);
bool require_bool(const Json& obj, const char* name, const std::string& what);
// Refuses keys other than `allowed`.
void require_only_keys(const Json& obj, std::initializer_list<const char*> allowed,
                       const std::string& what);

// An identifier (ECU serial, hardware id, vehicle id): 1-128 printable ASCII characters, no
// spaces, no '/' (they become file and path names).
bool is_identifier(const std::string& s);
std::string require_identifier(const Json& obj, const char* name, const std::string& what);

// {"sha256": HEX, "sha512": HEX}: 1-4 entries, known algorithms, hex of the right length.
std::map<std::string, std::string> parse_hashes(const Json& value, const std::string& what);
Json hashes_to_json(const std::map<std::string, std::string>& hashes);

} // namespace ota::uptane
