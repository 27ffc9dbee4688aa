// The URL of a target file: the targets base URL, then the target path with each segment
// percent-encoded (RFC 3986: everything but unreserved characters), the last segment prefixed
// with HASH. under consistent snapshots. A path that could leave the targets folder (an empty,
// "." or ".." segment) is refused.
#pragma once
#include <string>

namespace ota::tuf {

// Throws Error(Malformed) naming the target for an empty path or an empty, "." or ".." segment.
void check_target_path(const std::string& target_path);

// base_url ends with '/'; hash_prefix is "" or the hex digest that names the consistent copy.
std::string target_url(const std::string& base_url, const std::string& target_path,
                       const std::string& hash_prefix);

// One path segment, percent-encoded ('/' included: it is not a separator inside a segment).
std::string percent_encode_segment(const std::string& segment);

} // namespace ota::tuf
