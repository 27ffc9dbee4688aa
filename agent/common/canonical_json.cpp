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

Json parse_json(const std::string& text, const std::string& what) {
    try {
        return Json::parse(text);
    } catch (const Json::exception& e) {
        // parse_error, but also out_of_range for numbers that overflow 64 bits (found by fuzzing).
        throw Error(ErrorKind::Malformed, what + " is not valid JSON: " + e.what());
    }
}

} // namespace ota
