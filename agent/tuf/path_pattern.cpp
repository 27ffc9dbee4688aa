#include "agent/tuf/path_pattern.h"

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace ota::tuf {

namespace {

// A code point of well-formed UTF-8, or one byte of anything else, tagged so that the two never
// compare equal.
using Char = uint32_t;
constexpr Char kRawByte = 0x80000000u;

size_t utf8_sequence(std::string_view s, size_t i, Char& out) {
    const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t lead = byte(i);
    if (lead < 0x80) {
        out = lead;
        return 1;
    }
    size_t length = 0;
    Char value = 0, min = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2, value = lead & 0x1f, min = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3, value = lead & 0x0f, min = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4, value = lead & 0x07, min = 0x10000;
    }
    if (length == 0 || i + length > s.size()) {
        out = kRawByte | lead;
        return 1;
    }
    for (size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) {
            out = kRawByte | lead;
            return 1;
        }
        value = (value << 6) | (byte(i + k) & 0x3f);
    }
    if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
        out = kRawByte | lead;
        return 1;
    }
    out = value;
    return length;
}

std::vector<Char> decode(std::string_view s) {
    std::vector<Char> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        Char c = 0;
        i += utf8_sequence(s, i, c);
        out.push_back(c);
    }
    return out;
}

// One element of a compiled pattern segment. Every kind but Star matches exactly one character,
// which is what lets the matcher below backtrack to the last '*' only.
struct Token {
    enum Kind { Literal, Any, Star, Set } kind = Literal;
    Char literal = 0;
    bool negated = false;
    std::vector<std::pair<Char, Char>> ranges; // inclusive; single characters as [c, c]

    bool matches(Char c) const {
        switch (kind) {
        case Literal: return c == literal;
        case Any: return true;
        case Set: {
            bool in = false;
            for (const auto& [lo, hi] : ranges)
                in = in || (c >= lo && c <= hi);
            return in != negated;
        }
        case Star: break;
        }
        return false;
    }
};

std::vector<Token> compile(const std::vector<Char>& p) {
    std::vector<Token> tokens;
    for (size_t i = 0; i < p.size(); ++i) {
        Token t;
        if (p[i] == '*') {
            t.kind = Token::Star;
        } else if (p[i] == '?') {
            t.kind = Token::Any;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            const bool negated = j < p.size() && p[j] == '!';
            if (negated) ++j;
            const size_t first = j;
            if (j < p.size() && p[j] == ']') ++j; // a leading ']' is a member
            while (j < p.size() && p[j] != ']')
                ++j;
            if (j >= p.size()) { // no closing ']': an ordinary '['
                t.literal = '[';
                tokens.push_back(std::move(t));
                continue;
            }
            t.kind = Token::Set;
            t.negated = negated;
            for (size_t k = first; k < j;) {
                if (k + 2 < j && p[k + 1] == '-') { // a range; a reversed one matches nothing
                    t.ranges.emplace_back(p[k], p[k + 2]);
                    k += 3;
                } else {
                    t.ranges.emplace_back(p[k], p[k]);
                    ++k;
                }
            }
            i = j;
        } else {
            t.literal = p[i];
        }
        tokens.push_back(std::move(t));
    }
    return tokens;
}

bool segment_matches(std::string_view pattern, std::string_view segment) {
    const std::vector<Token> p = compile(decode(pattern));
    const std::vector<Char> s = decode(segment);
    // Iterative glob match: on a mismatch, let the last '*' absorb one more character.
    size_t pi = 0, si = 0;
    size_t star = SIZE_MAX, star_s = 0;
    while (si < s.size()) {
        if (pi < p.size() && p[pi].kind != Token::Star && p[pi].matches(s[si])) {
            ++pi;
            ++si;
        } else if (pi < p.size() && p[pi].kind == Token::Star) {
            star = pi++;
            star_s = si;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++star_s;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi].kind == Token::Star)
        ++pi;
    return pi == p.size();
}

std::vector<std::string_view> split_segments(std::string_view s) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
        const size_t slash = s.find('/', start);
        parts.push_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos
                                                                        : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return parts;
}

} // namespace

bool path_pattern_matches(const std::string& pattern, const std::string& path) {
    const auto pattern_parts = split_segments(pattern);
    const auto path_parts = split_segments(path);
    if (pattern_parts.size() != path_parts.size()) return false;
    for (size_t i = 0; i < pattern_parts.size(); ++i)
        if (!segment_matches(pattern_parts[i], path_parts[i])) return false;
    return true;
}

} // namespace ota::tuf
