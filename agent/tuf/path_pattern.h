// Delegation "paths" patterns (TUF specification 1.0.x, "paths" of a delegated role): shell-style
// wildcards matched segment by segment, as Unix glob(7) does, so a wildcard never matches '/'.
#pragma once
#include <string>

namespace ota::tuf {

// True when `path` matches `pattern`: both have the same number of '/'-separated segments and each
// path segment matches its pattern segment, where
//   *        matches any run of characters (also none),
//   ?        matches one character,
//   [set]    matches one character of the set: single characters and ranges a-z; a ']' right
//            after '[' or '[!' is a member, a '-' first or last is a member,
//   [!set]   matches one character not in the set,
// and everything else, backslash included, matches itself. A '[' without a closing ']' is an
// ordinary character. Characters are Unicode code points of UTF-8 text (so '?' matches 'é'), as in
// python-tuf, whose fnmatch is the reference for these rules. Runs in O(pattern x path) time
// whatever the number of '*' (no recursive backtracking).
bool path_pattern_matches(const std::string& pattern, const std::string& path);

} // namespace ota::tuf
