#include "agent/update/targets.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"

#include <fcntl.h>

#include <set>

namespace ota::update {

namespace {

const Json& field(const Json& obj, const char* name, const std::string& what) {
    auto it = obj.find(name);
    if (it == obj.end())
        throw Error(ErrorKind::Malformed, what + ": custom field \"" + name + "\" is missing");
    return *it;
}

std::string hex_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_string() || v.get<std::string>().size() != 64 || !is_hex(v.get<std::string>()))
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a SHA-256 in hex");
    return v.get<std::string>();
}

uint64_t uint_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_number_unsigned())
        throw Error(ErrorKind::Malformed,
                    what + ": \"" + name + "\" must be a non-negative integer");
    return v.get<uint64_t>();
}

std::string string_field(const Json& obj, const char* name, const std::string& what) {
    const Json& v = field(obj, name, what);
    if (!v.is_string())
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a string");
    return v.get<std::string>();
}

} // namespace

BundleTarget parse_bundle_target(const tuf::TargetFile& target) {
    const std::string what = "target " + target.path;
    if (!target.custom.is_object()) throw Error(ErrorKind::Malformed, what + ": no custom fields");
    const Json& c = target.custom;
    BundleTarget t;
    t.target = target;
    t.hardware_id = string_field(c, "hardware_id", what);
    t.component = c.contains("component") ? string_field(c, "component", what) : "rootfs";
    t.kind = c.contains("kind") ? string_field(c, "kind", what) : "firmware";
    t.version = uint_field(c, "version", what);
    const Json& image = field(c, "image", what);
    t.image_sha256 = hex_field(image, "sha256", what + " image");
    t.image_length = uint_field(image, "length", what + " image");
    const Json& bundle = field(c, "bundle", what);
    t.header_sha256 = hex_field(bundle, "header_sha256", what + " bundle");
    t.header_length = uint_field(bundle, "header_length", what + " bundle");
    if (c.contains("delta_from") && !c["delta_from"].is_null()) {
        t.delta_from_version = uint_field(c["delta_from"], "version", what + " delta_from");
        t.delta_from_sha256 = hex_field(c["delta_from"], "sha256", what + " delta_from");
    }
    return t;
}

bool is_release_target(const tuf::TargetFile& target) {
    return target.custom.is_object() && target.custom.contains("kind") &&
           target.custom["kind"] == "release";
}

ReleaseTarget parse_release_target(const tuf::TargetFile& target) {
    const std::string what = "release target " + target.path;
    if (!is_release_target(target))
        throw Error(ErrorKind::Malformed, what + ": kind is not \"release\"");
    const Json& c = target.custom;
    ReleaseTarget r;
    r.target = target;
    r.hardware_id = string_field(c, "hardware_id", what);
    r.version = uint_field(c, "version", what);
    const Json& rel = field(c, "release", what);
    r.id = string_field(rel, "id", what + " release");
    if (r.id.empty() || r.id.size() > 128)
        throw Error(ErrorKind::Malformed, what + ": bad release id");
    const Json& comps = field(rel, "components", what + " release");
    if (!comps.is_array() || comps.empty() || comps.size() > 64)
        throw Error(ErrorKind::Malformed, what + ": \"components\" must list 1-64 components");
    std::set<std::string> seen;
    for (const auto& e : comps) {
        if (!e.is_object())
            throw Error(ErrorKind::Malformed, what + ": component entries must be objects");
        std::string name = string_field(e, "component", what + " component");
        if (!seen.insert(name).second)
            throw Error(ErrorKind::Malformed, what + ": component " + name + " listed twice");
        r.components.emplace_back(name, uint_field(e, "version", what + " component " + name));
    }
    return r;
}

TargetHash strongest_hash(const tuf::TargetFile& target) {
    if (auto it = target.hashes.find("sha512"); it != target.hashes.end())
        return TargetHash{HashAlgorithm::Sha512, "sha512", "SHA-512", it->second};
    if (auto it = target.hashes.find("sha256"); it != target.hashes.end())
        return TargetHash{HashAlgorithm::Sha256, "sha256", "SHA-256", it->second};
    throw Error(ErrorKind::Unsupported, "target " + target.path +
                                            " lists neither a sha512 nor a sha256 hash: the "
                                            "agent cannot check it, so it is refused");
}

std::string file_hash_hex(const std::string& path, HashAlgorithm algorithm) {
    UniqueFd fd = open_or_throw(path, O_RDONLY | O_CLOEXEC);
    Hasher hasher(algorithm);
    std::vector<char> buf(256 * 1024);
    while (size_t n = read_full(fd.get(), buf.data(), buf.size(), path))
        hasher.update(buf.data(), n);
    return hasher.finish_hex();
}

} // namespace ota::update
