#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ota {

std::string to_hex(const uint8_t* data, size_t size);
inline std::string to_hex(const std::vector<uint8_t>& v) {
    return to_hex(v.data(), v.size());
}
// Throws Error(Malformed) on odd length or a non-hex character.
std::vector<uint8_t> from_hex(std::string_view hex);
bool is_hex(std::string_view s);

} // namespace ota
