#include "canonical_json.h"

#include "error.h"

namespace ota {

static void append_string(std::string& out, const std::string& s) {
    out.push_back('"');
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

static void append_canonical(std::string& out, const Json& v, int depth) {
    if (depth > 64) throw Error(ErrorKind::Malformed, "JSON nested too deeply");
    switch (v.type()) {
    case Json::value_t::null: out += "null"; break;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case Json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case Json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case Json::value_t::number_float:
        throw Error(ErrorKind::Malformed, "canonical JSON cannot contain floating point numbers");
    case Json::value_t::string: append_string(out, v.get_ref<const std::string&>()); break;
    case Json::value_t::array: {
        out.push_back('[');
        bool first = true;
        for (const auto& item : v) {
            if (!first) out.push_back(',');
            first = false;
            append_canonical(out, item, depth + 1);
        }
        out.push_back(']');
        break;
    }
    case Json::value_t::object: {
        // nlohmann::json objects are std::map<std::string,...>: iteration is in byte order,
        // which equals code-point order for UTF-8, as securesystemslib sorts.
        out.push_back('{');
        bool first = true;
        for (auto it = v.begin(); it != v.end(); ++it) {
            if (!first) out.push_back(',');
            first = false;
            append_string(out, it.key());
            out.push_back(':');
            append_canonical(out, it.value(), depth + 1);
        }
        out.push_back('}');
        break;
    }
    default: throw Error(ErrorKind::Malformed, "value not representable in canonical JSON");
    }
}

std::string canonical_json(const Json& value) {
    std::string out;
    append_canonical(out, value, 0);
    return out;
}

size_t invalid_utf8_offset(const std::string& text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0; // overlong
            if (c == 0xED) hi = 0x9F; // UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90; // overlong
            if (c == 0xF4) hi = 0x8F; // above U+10FFFF
        } else {
            return i;
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
        i += len;
    }
    return std::string::npos;
}

std::string printable(const std::string& text) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

Json parse_json(const std::string& text, const std::string& what, int max_depth) {
    if (size_t bad = invalid_utf8_offset(text); bad != std::string::npos)
        throw Error(ErrorKind::Malformed,
                    what + " is not valid JSON: invalid UTF-8 at byte " + std::to_string(bad));
    // nlohmann's parser itself is iterative; the callback sees each container as it opens, with
    // the number of containers around it, so a deep document is refused before it is built.
    struct TooDeep {};
    auto bound_depth = [max_depth](int depth, Json::parse_event_t event, Json&) {
        if ((event == Json::parse_event_t::object_start ||
             event == Json::parse_event_t::array_start) &&
            depth >= max_depth)
            throw TooDeep{};
        return true;
    };
    try {
        return Json::parse(text, bound_depth);
    } catch (const TooDeep&) {
        throw Error(ErrorKind::Malformed, what + " is not valid JSON: nested deeper than " +
                                              std::to_string(max_depth) + " levels");
    } catch (const Json::exception& e) {
        // parse_error, but also out_of_range for numbers that overflow 64 bits (found by fuzzing).
        throw Error(ErrorKind::Malformed, what + " is not valid JSON: " + printable(e.what()));
    }
}

} // namespace ota
