#include "agent/tuf/metadata.h"

#include "agent/tuf/path_pattern.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <cctype>
#include <cstdio>

namespace ota::tuf {

namespace {

constexpr size_t kMaxKeys = 1024;
constexpr size_t kMaxSignatures = 1024;
constexpr size_t kMaxEntries = 1u << 20; // targets or snapshot entries
constexpr uint64_t kMaxThreshold = 1024;

[[noreturn]] void malformed(const std::string& what, const std::string& why) {
    throw Error(ErrorKind::Malformed, what + ": " + why);
}

const Json& member(const Json& obj, const char* name, const std::string& what) {
    auto it = obj.find(name);
    if (it == obj.end()) malformed(what, std::string("missing \"") + name + "\"");
    return *it;
}

std::string get_string(const Json& obj, const char* name, const std::string& what) {
    const Json& v = member(obj, name, what);
    if (!v.is_string()) malformed(what, std::string("\"") + name + "\" must be a string");
    return v.get<std::string>();
}

uint64_t get_uint(const Json& v, const std::string& what) {
    if (!v.is_number_integer()) malformed(what, "must be an integer");
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    int64_t i = v.get<int64_t>();
    if (i < 0) malformed(what, "must not be negative");
    return static_cast<uint64_t>(i);
}

const Json& get_object(const Json& obj, const char* name, const std::string& what) {
    const Json& v = member(obj, name, what);
    if (!v.is_object()) malformed(what, std::string("\"") + name + "\" must be an object");
    return v;
}

std::map<std::string, std::string> parse_hashes(const Json& v, const std::string& what) {
    if (!v.is_object() || v.empty()) malformed(what, "\"hashes\" must be a non-empty object");
    std::map<std::string, std::string> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (!it.value().is_string()) malformed(what, "hash values must be strings");
        std::string hex = it.value().get<std::string>();
        if (!is_hex(hex)) malformed(what, "hash \"" + it.key() + "\" is not hex");
        out[it.key()] = hex;
    }
    return out;
}

MetaFile parse_metafile(const Json& v, const std::string& what) {
    if (!v.is_object()) malformed(what, "must be an object");
    MetaFile m;
    m.version = get_uint(member(v, "version", what), what + " version");
    if (m.version < 1) malformed(what, "version must be at least 1");
    if (auto it = v.find("length"); it != v.end()) m.length = get_uint(*it, what + " length");
    if (auto it = v.find("hashes"); it != v.end()) m.hashes = parse_hashes(*it, what);
    return m;
}

std::map<std::string, Key> parse_keys(const Json& v, const std::string& what) {
    if (!v.is_object()) malformed(what, "\"keys\" must be an object");
    if (v.size() > kMaxKeys) malformed(what, "too many keys");
    std::map<std::string, Key> keys;
    for (auto it = v.begin(); it != v.end(); ++it) {
        const Json& k = it.value();
        std::string kwhat = what + " key " + it.key();
        if (!k.is_object()) malformed(kwhat, "must be an object");
        Key key;
        key.keytype = get_string(k, "keytype", kwhat);
        key.scheme = get_string(k, "scheme", kwhat);
        const Json& keyval = get_object(k, "keyval", kwhat);
        // A key without a "public" string (or of an unknown type) is kept: it simply cannot
        // produce a valid signature. Unsupported schemes must not make the metadata unusable.
        if (auto p = keyval.find("public"); p != keyval.end() && p->is_string())
            key.public_key = p->get<std::string>();
        keys[it.key()] = std::move(key);
    }
    return keys;
}

RoleKeys parse_role_keys(const Json& v, const std::string& what) {
    if (!v.is_object()) malformed(what, "must be an object");
    RoleKeys r;
    const Json& ids = member(v, "keyids", what);
    if (!ids.is_array()) malformed(what, "\"keyids\" must be an array");
    if (ids.size() > kMaxKeys) malformed(what, "too many keyids");
    for (const auto& id : ids) {
        if (!id.is_string()) malformed(what, "keyids must be strings");
        std::string s = id.get<std::string>();
        for (const auto& existing : r.keyids)
            if (existing == s) malformed(what, "duplicate keyid " + s);
        r.keyids.push_back(s);
    }
    r.threshold = get_uint(member(v, "threshold", what), what + " threshold");
    if (r.threshold < 1 || r.threshold > kMaxThreshold)
        malformed(what, "threshold must be between 1 and " + std::to_string(kMaxThreshold));
    return r;
}

std::vector<std::string> parse_string_array(const Json& v, const std::string& what) {
    if (!v.is_array()) malformed(what, "must be an array");
    if (v.size() > kMaxEntries) malformed(what, "too many entries");
    std::vector<std::string> out;
    for (const auto& s : v) {
        if (!s.is_string()) malformed(what, "entries must be strings");
        out.push_back(s.get<std::string>());
    }
    return out;
}

SuccinctRoles parse_succinct_roles(const Json& v, const std::string& dwhat) {
    const std::string what = dwhat + " succinct_roles";
    if (!v.is_object()) malformed(what, "must be an object");
    SuccinctRoles s;
    s.keys = parse_role_keys(v, what);
    uint64_t bits = get_uint(member(v, "bit_length", what), what + " bit_length");
    if (bits < 1 || bits > 32) malformed(what, "bit_length must be between 1 and 32");
    s.bit_length = static_cast<uint32_t>(bits);
    s.name_prefix = get_string(v, "name_prefix", what);
    return s;
}

// Hex digits of the largest bin number: every bin name has exactly this many.
size_t succinct_suffix_length(uint32_t bit_length) {
    return (bit_length + 3) / 4;
}

} // namespace

std::string SuccinctRoles::role_for_target(const std::string& target_path) const {
    const std::vector<uint8_t> digest = sha256(target_path.data(), target_path.size());
    uint32_t first = (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) |
                     (uint32_t{digest[2]} << 8) | uint32_t{digest[3]};
    uint64_t bin = bit_length == 32 ? first : (first >> (32 - bit_length));
    std::string hex = to_hex(
        std::vector<uint8_t>{static_cast<uint8_t>(bin >> 24), static_cast<uint8_t>(bin >> 16),
                             static_cast<uint8_t>(bin >> 8), static_cast<uint8_t>(bin)});
    return name_prefix + "-" + hex.substr(8 - succinct_suffix_length(bit_length));
}

bool SuccinctRoles::is_delegated_role(const std::string& role) const {
    const size_t digits = succinct_suffix_length(bit_length);
    if (role.size() != name_prefix.size() + 1 + digits) return false;
    if (role.compare(0, name_prefix.size(), name_prefix) != 0 || role[name_prefix.size()] != '-')
        return false;
    uint64_t bin = 0;
    for (char c : role.substr(name_prefix.size() + 1)) {
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) return false; // lower-case hex only, as the names are generated
        bin = bin * 16 + static_cast<uint64_t>(v);
    }
    return bin < (uint64_t{1} << bit_length);
}

std::vector<DelegationStep> Delegations::roles_for_target(const std::string& target_path) const {
    if (succinct_roles) return {{succinct_roles->role_for_target(target_path), true}};
    std::vector<DelegationStep> out;
    for (const auto& r : roles)
        if (r.matches(target_path)) out.push_back({r.name, r.terminating});
    return out;
}

const RoleKeys* Delegations::role_keys(const std::string& role) const {
    if (succinct_roles)
        return succinct_roles->is_delegated_role(role) ? &succinct_roles->keys : nullptr;
    for (const auto& r : roles)
        if (r.name == role) return &r.keys;
    return nullptr;
}

std::string normalized_key(const Key& key) {
    std::string out;
    for (char c : key.public_key)
        if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
    // Hex is case-insensitive (Ed25519 keys); PEM's base64 is not.
    if (key.keytype == "ed25519")
        for (auto& c : out)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Calendar arithmetic in 64 bits rather than timegm/gmtime_r: time_t of the 32-bit targets (armhf)
// ends in January 2038, and metadata routinely expires later. Proleptic Gregorian calendar, days
// counted from 1970-01-01 (the civil-date algorithms of H. Hinnant's "chrono-compatible low-level
// date algorithms").
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t& y, int& m, int& d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    y = yoe + era * 400 + (m <= 2);
}

int64_t parse_expiry(const std::string& s) {
    // Only the form the specification uses: YYYY-MM-DDTHH:MM:SSZ.
    int y, mo, d, h, mi, se;
    char tail = 0;
    if (s.size() != 20 ||
        std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%c", &y, &mo, &d, &h, &mi, &se, &tail) !=
            6 ||
        s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        throw Error(ErrorKind::Malformed,
                    "\"expires\" is not of the form YYYY-MM-DDTHH:MM:SSZ: " + s);
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        throw Error(ErrorKind::Malformed, "\"expires\" is not a valid date: " + s);
    return days_from_civil(y, mo, d) * 86400 + int64_t{h} * 3600 + int64_t{mi} * 60 + se;
}

std::string format_expiry(int64_t epoch_seconds) {
    const int64_t days = (epoch_seconds >= 0 ? epoch_seconds : epoch_seconds - 86399) / 86400;
    const int64_t secs = epoch_seconds - days * 86400;
    int64_t y = 0;
    int m = 0, d = 0;
    civil_from_days(days, y, m, d);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02dZ", static_cast<long long>(y), m,
                  d, static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                  static_cast<int>(secs % 60));
    return buf;
}

Envelope parse_envelope(const std::string& raw, const std::string& expected_type) {
    const std::string what = expected_type + " metadata";
    Envelope env;
    env.raw = raw;
    Json doc = parse_json(raw, what);
    if (!doc.is_object()) malformed(what, "top level must be an object");
    const Json& sigs = member(doc, "signatures", what);
    if (!sigs.is_array()) malformed(what, "\"signatures\" must be an array");
    if (sigs.size() > kMaxSignatures) malformed(what, "too many signatures");
    for (const auto& s : sigs) {
        if (!s.is_object()) malformed(what, "each signature must be an object");
        Signature sig;
        sig.keyid = get_string(s, "keyid", what + " signature");
        sig.sig_hex = get_string(s, "sig", what + " signature");
        env.signatures.push_back(std::move(sig));
    }
    get_object(doc, "signed", what);            // present and an object
    env.signed_json = std::move(doc["signed"]); // moved: never copied
    env.type = get_string(env.signed_json, "_type", what);
    if (env.type != expected_type)
        throw Error(ErrorKind::Malformed, what + ": \"_type\" is \"" + env.type +
                                              "\", expected \"" + expected_type + "\"");
    std::string spec = get_string(env.signed_json, "spec_version", what);
    if (spec.rfind("1.", 0) != 0)
        throw Error(ErrorKind::Unsupported, what + ": unsupported spec_version " + spec);
    env.version = get_uint(member(env.signed_json, "version", what), what + " version");
    if (env.version < 1) malformed(what, "version must be at least 1");
    env.expires = parse_expiry(get_string(env.signed_json, "expires", what));
    env.canonical_signed = canonical_json(env.signed_json);
    return env;
}

RootMeta parse_root(const Envelope& env) {
    const std::string what = "root metadata";
    RootMeta r;
    const Json& s = env.signed_json;
    if (auto it = s.find("consistent_snapshot"); it != s.end()) {
        if (!it->is_boolean()) malformed(what, "\"consistent_snapshot\" must be a boolean");
        r.consistent_snapshot = it->get<bool>();
    }
    r.keys = parse_keys(get_object(s, "keys", what), what);
    const Json& roles = get_object(s, "roles", what);
    for (const char* name : {"root", "timestamp", "snapshot", "targets"}) {
        auto it = roles.find(name);
        if (it == roles.end()) malformed(what, std::string("missing role \"") + name + "\"");
        r.roles[name] = parse_role_keys(*it, what + " role " + name);
    }
    // Only the four top-level roles exist in root (python-tuf rejects others too).
    if (roles.size() != r.roles.size())
        malformed(what, "\"roles\" lists a role that is not top-level");
    return r;
}

TimestampMeta parse_timestamp(const Envelope& env) {
    const std::string what = "timestamp metadata";
    const Json& meta = get_object(env.signed_json, "meta", what);
    auto it = meta.find("snapshot.json");
    if (it == meta.end() || meta.size() != 1)
        malformed(what, "\"meta\" must list exactly \"snapshot.json\"");
    TimestampMeta t;
    t.snapshot = parse_metafile(*it, what + " snapshot.json");
    return t;
}

SnapshotMeta parse_snapshot(const Envelope& env) {
    const std::string what = "snapshot metadata";
    const Json& meta = get_object(env.signed_json, "meta", what);
    if (meta.size() > kMaxEntries) malformed(what, "too many entries");
    SnapshotMeta s;
    for (auto it = meta.begin(); it != meta.end(); ++it)
        s.meta[it.key()] = parse_metafile(it.value(), what + " " + it.key());
    return s;
}

TargetsMeta parse_targets(const Envelope& env) {
    const std::string what = "targets metadata";
    TargetsMeta t;
    const Json& targets = get_object(env.signed_json, "targets", what);
    if (targets.size() > kMaxEntries) malformed(what, "too many targets");
    for (auto it = targets.begin(); it != targets.end(); ++it) {
        std::string twhat = what + " target " + it.key();
        if (!it.value().is_object()) malformed(twhat, "must be an object");
        TargetFile f;
        f.path = it.key();
        f.length = get_uint(member(it.value(), "length", twhat), twhat + " length");
        f.hashes = parse_hashes(member(it.value(), "hashes", twhat), twhat);
        if (auto c = it.value().find("custom"); c != it.value().end()) f.custom = *c;
        t.targets[it.key()] = std::move(f);
    }
    if (auto d = env.signed_json.find("delegations"); d != env.signed_json.end()) {
        std::string dwhat = what + " delegations";
        if (!d->is_object()) malformed(dwhat, "must be an object");
        Delegations del;
        del.keys = parse_keys(get_object(*d, "keys", dwhat), dwhat);
        const bool has_roles = d->contains("roles");
        if (has_roles == d->contains("succinct_roles"))
            malformed(dwhat, "exactly one of \"roles\" and \"succinct_roles\" must be set");
        if (!has_roles) {
            del.succinct_roles = parse_succinct_roles((*d)["succinct_roles"], dwhat);
            t.delegations = std::move(del);
            return t;
        }
        const Json& roles = member(*d, "roles", dwhat);
        if (!roles.is_array()) malformed(dwhat, "\"roles\" must be an array");
        if (roles.size() > kMaxKeys) malformed(dwhat, "too many roles");
        for (const auto& r : roles) {
            if (!r.is_object()) malformed(dwhat, "each role must be an object");
            DelegatedRole role;
            role.name = get_string(r, "name", dwhat + " role");
            std::string rwhat = dwhat + " role " + role.name;
            for (const auto& existing : del.roles)
                if (existing.name == role.name) malformed(rwhat, "duplicate role name");
            if (role.name.empty() || role.name == "root" || role.name == "timestamp" ||
                role.name == "snapshot" || role.name == "targets")
                malformed(rwhat, "invalid delegated role name");
            role.keys = parse_role_keys(r, rwhat);
            if (auto term = r.find("terminating"); term != r.end()) {
                if (!term->is_boolean()) malformed(rwhat, "\"terminating\" must be a boolean");
                role.terminating = term->get<bool>();
            }
            bool has_paths = r.contains("paths");
            bool has_prefixes = r.contains("path_hash_prefixes");
            if (has_paths == has_prefixes)
                malformed(rwhat, "exactly one of \"paths\" and \"path_hash_prefixes\" must be set");
            if (has_paths) role.paths = parse_string_array(r["paths"], rwhat + " paths");
            if (has_prefixes)
                role.path_hash_prefixes =
                    parse_string_array(r["path_hash_prefixes"], rwhat + " path_hash_prefixes");
            del.roles.push_back(std::move(role));
        }
        t.delegations = std::move(del);
    }
    return t;
}

bool DelegatedRole::matches(const std::string& target_path) const {
    if (paths) {
        for (const auto& p : *paths)
            if (path_pattern_matches(p, target_path)) return true;
        return false;
    }
    if (path_hash_prefixes) {
        std::string digest = sha256_hex(target_path);
        for (const auto& prefix : *path_hash_prefixes)
            if (digest.compare(0, prefix.size(), prefix) == 0) return true;
        return false;
    }
    return false; // neither set: the role is trusted for nothing
}

std::string percent_encode(const std::string& s) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 0xf]);
        }
    }
    return out;
}

} // namespace ota::tuf
