#include "agent/uptane/json_fields.h"

#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <algorithm>

namespace ota::uptane {

namespace {
[[noreturn]] void malformed(const std::string& what, const std::string& why) {
    throw Error(ErrorKind::Malformed, what + ": " + why);
}
} // namespace

Json parse_bounded_json(const std::string& text, const std::string& what, size_t max_depth) {
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                malformed(what, "nested deeper than " + std::to_string(max_depth) + " levels");
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return parse_json(text, what);
}

const Json& require_member(const Json& obj, const char* name, const std::string& what) {
    if (!obj.is_object()) malformed(what, "must be an object");
    auto it = obj.find(name);
    if (it == obj.end()) malformed(what, std::string("missing \"") + name + "\"");
    return *it;
}

const Json& require_object(const Json& obj, const char* name, const std::string& what) {
    const Json& v = require_member(obj, name, what);
    if (!v.is_object()) malformed(what, std::string("\"") + name + "\" must be an object");
    return v;
}

std::string require_string(const Json& obj, const char* name, size_t max_length,
                           const std::string& what) {
    const Json& v = require_member(obj, name, what);
    if (!v.is_string()) malformed(what, std::string("\"") + name + "\" must be a string");
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() > max_length)
        throw Error(ErrorKind::TooLarge, what + ": \"" + name + "\" is longer than " +
                                             std::to_string(max_length) + " bytes");
    return s;
}

uint64_t require_uint(const Json& obj, const char* name, const std::string& what) {
    const Json& v = require_member(obj, name, what);
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0)
        return static_cast<uint64_t>(v.get<int64_t>());
    malformed(what, std::string("\"") + name + "\" must be a non-negative integer");
}

int64_t require_int(const Json& obj, const char* name, const std::string& what) {
    const Json& v = require_member(obj, name, what);
    if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
    if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX))
        return static_cast<int64_t>(v.get<uint64_t>());
    malformed(what, std::string("\"") + name + "\" must be an integer");
}

bool require_bool(const Json& obj, const char* name, const std::string& what) {
    const Json& v = require_member(obj, name, what);
    if (!v.is_boolean()) malformed(what, std::string("\"") + name + "\" must be true or false");
    return v.get<bool>();
}

void require_only_keys(const Json& obj, std::initializer_list<const char*> allowed,
                       const std::string& what) {
    if (!obj.is_object()) malformed(what, "must be an object");
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        bool known = std::any_of(allowed.begin(), allowed.end(),
                                 [&](const char* a) { return it.key() == a; });
        if (!known) {
            std::string key = it.key().substr(0, 64);
            malformed(what, "unknown field \"" + key + "\"");
        }
    }
}

bool is_identifier(const std::string& s) {
    if (s.empty() || s.size() > kMaxIdLength) return false;
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\') return false;
    return s != "." && s != "..";
}

std::string require_identifier(const Json& obj, const char* name, const std::string& what) {
    std::string s = require_string(obj, name, kMaxIdLength, what);
    if (!is_identifier(s))
        malformed(what, std::string("\"") + name +
                            "\" must be 1-128 printable ASCII characters without spaces or '/'");
    return s;
}

std::map<std::string, std::string> parse_hashes(const Json& value, const std::string& what) {
    if (!value.is_object() || value.empty() || value.size() > 4)
        malformed(what, "\"hashes\" must be an object of 1-4 hashes");
    std::map<std::string, std::string> out;
    for (auto it = value.begin(); it != value.end(); ++it) {
        size_t hex_length = it.key() == "sha256" ? 64 : it.key() == "sha512" ? 128 : 0;
        if (hex_length == 0)
            malformed(what, "unsupported hash algorithm \"" + it.key().substr(0, 32) + "\"");
        if (!it->is_string() || it->get_ref<const std::string&>().size() != hex_length ||
            !is_hex(it->get_ref<const std::string&>()))
            malformed(what, "hash \"" + it.key() + "\" must be " + std::to_string(hex_length) +
                                " hex digits");
        std::string hex = it->get<std::string>();
        std::transform(hex.begin(), hex.end(), hex.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        out[it.key()] = hex;
    }
    return out;
}

Json hashes_to_json(const std::map<std::string, std::string>& hashes) {
    Json out = Json::object();
    for (const auto& [alg, hex] : hashes)
        out[alg] = hex;
    return out;
}

} // namespace ota::uptane
