#include "hex.h"

#include "error.h"

namespace ota {

std::string to_hex(const uint8_t* data, size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string out(size * 2, '0');
    for (size_t i = 0; i < size; ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    return out;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_hex(std::string_view s) {
    if (s.size() % 2 != 0) return false;
    for (char c : s)
        if (hex_value(c) < 0) return false;
    return true;
}

std::vector<uint8_t> from_hex(std::string_view hex) {
    if (!is_hex(hex)) throw Error(ErrorKind::Malformed, "invalid hex string");
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<uint8_t>(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return out;
}

} // namespace ota
