#include "agent/tuf/target_url.h"

#include "agent/common/canonical_json.h"
#include "agent/common/error.h"

namespace ota::tuf {

namespace {

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

} // namespace

void check_target_path(const std::string& target_path) {
    if (target_path.empty()) throw Error(ErrorKind::Malformed, "a target path must not be empty");
    size_t start = 0;
    while (true) {
        const size_t slash = target_path.find('/', start);
        const std::string segment = target_path.substr(
            start, slash == std::string::npos ? std::string::npos : slash - start);
        if (segment.empty() || segment == "." || segment == "..")
            throw Error(ErrorKind::Malformed,
                        "target path \"" + printable(target_path) +
                            "\" has an empty, \".\" or \"..\" segment: refusing to fetch it, it "
                            "could name a file outside the targets folder");
        if (slash == std::string::npos) return;
        start = slash + 1;
    }
}

std::string percent_encode_segment(const std::string& segment) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    out.reserve(segment.size());
    for (unsigned char c : segment) {
        if (unreserved(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

std::string target_url(const std::string& base_url, const std::string& target_path,
                       const std::string& hash_prefix) {
    check_target_path(target_path);
    std::string url = base_url;
    size_t start = 0;
    while (true) {
        const size_t slash = target_path.find('/', start);
        if (slash == std::string::npos) break;
        url += percent_encode_segment(target_path.substr(start, slash - start)) + "/";
        start = slash + 1;
    }
    const std::string base = target_path.substr(start);
    url += percent_encode_segment(hash_prefix.empty() ? base : hash_prefix + "." + base);
    return url;
}

} // namespace ota::tuf
