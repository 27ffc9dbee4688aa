#include "manifests/publisher/repository.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"
#include "agent/tuf/metadata.h"

#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>

namespace ota::publish {

namespace {
constexpr const char* kSpecVersion = "1.0.31";
const char* const kTopRoles[] = {"root", "timestamp", "snapshot", "targets"};

std::string metafile_hash(const std::string& bytes) {
    return sha256_hex(bytes);
}

Json metafile(uint64_t version, const std::string& bytes) {
    return Json{{"version", version},
                {"length", bytes.size()},
                {"hashes", Json{{"sha256", metafile_hash(bytes)}}}};
}
} // namespace

Json key_object(const SigningKey& key) {
    return Json{{"keytype", key.keytype()},
                {"scheme", key.scheme()},
                {"keyval", Json{{"public", key.tuf_public_key()}}}};
}

std::string key_id(const SigningKey& key) {
    return sha256_hex(canonical_json(key_object(key)));
}

Json sign_envelope(const Json& signed_body, const std::vector<const SigningKey*>& keys) {
    const std::string canonical = canonical_json(signed_body);
    Json sigs = Json::array();
    for (const SigningKey* k : keys) {
        auto sig = k->sign(canonical);
        sigs.push_back(Json{{"keyid", key_id(*k)}, {"sig", to_hex(sig)}});
    }
    return Json{{"signatures", sigs}, {"signed", signed_body}};
}

std::string to_bytes(const Json& envelope) {
    return envelope.dump(1) + "\n";
}

std::string Repository::expiry(int64_t days) const {
    return tuf::format_expiry(static_cast<int64_t>(::time(nullptr)) + days * 86400);
}

Json Repository::root_body() const {
    return roles_.at("root").body;
}

void Repository::save_keys(const std::string& role) {
    make_directories(dir_ + "/keys");
    const auto& keys = roles_.at(role).keys;
    for (size_t i = 0; i < keys.size(); ++i) {
        std::string path = dir_ + "/keys/" + role + "-" + std::to_string(i) + ".pem";
        write_file_atomic(path, keys[i].private_pem());
        ::chmod(path.c_str(), 0600);
    }
}

static std::vector<const SigningKey*> key_pointers(const RoleState& r) {
    std::vector<const SigningKey*> out;
    for (const auto& k : r.keys)
        out.push_back(&k);
    return out;
}

void Repository::write_role(const std::string& name) {
    RoleState& r = roles_.at(name);
    std::string bytes = to_bytes(sign_envelope(r.body, key_pointers(r)));
    uint64_t version = r.body.at("version").get<uint64_t>();
    if (name != "timestamp")
        write_file_atomic(metadata_dir() + "/" + std::to_string(version) + "." + name + ".json",
                          bytes);
    write_file_atomic(metadata_dir() + "/" + name + ".json", bytes);
}

Repository Repository::create(const std::string& dir, const RepositoryOptions& options) {
    Repository repo;
    repo.dir_ = dir;
    repo.options_ = options;
    make_directories(repo.metadata_dir());
    make_directories(repo.targets_dir());
    for (const char* role : kTopRoles) {
        RoleState r;
        r.keys.push_back(SigningKey::generate(options.scheme));
        repo.roles_[role] = std::move(r);
        repo.save_keys(role);
    }
    Json keys = Json::object(), roles = Json::object();
    for (const char* role : kTopRoles) {
        Json ids = Json::array();
        for (const auto& k : repo.roles_[role].keys) {
            keys[key_id(k)] = key_object(k);
            ids.push_back(key_id(k));
        }
        roles[role] = Json{{"keyids", ids}, {"threshold", repo.roles_[role].threshold}};
    }
    repo.roles_["root"].body = Json{{"_type", "root"},
                                    {"spec_version", kSpecVersion},
                                    {"version", 1},
                                    {"expires", repo.expiry(options.expires_days)},
                                    {"consistent_snapshot", options.consistent_snapshot},
                                    {"keys", keys},
                                    {"roles", roles}};
    repo.roles_["targets"].body = Json{{"_type", "targets"},
                                       {"spec_version", kSpecVersion},
                                       {"version", 0},
                                       {"expires", ""},
                                       {"targets", Json::object()}};
    repo.roles_["snapshot"].body = Json{{"_type", "snapshot"},
                                        {"spec_version", kSpecVersion},
                                        {"version", 0},
                                        {"expires", ""},
                                        {"meta", Json::object()}};
    repo.roles_["timestamp"].body = Json{{"_type", "timestamp"},
                                         {"spec_version", kSpecVersion},
                                         {"version", 0},
                                         {"expires", ""},
                                         {"meta", Json::object()}};
    write_file_atomic(dir + "/publisher.json", Json{{"scheme", options.scheme},
                                                    {"expires_days", options.expires_days},
                                                    {"timestamp_days", options.timestamp_days}}
                                                   .dump(1));
    repo.write_role("root");
    repo.publish();
    return repo;
}

Repository Repository::open(const std::string& dir) {
    Repository repo;
    repo.dir_ = dir;
    Json cfg = parse_json(read_file(dir + "/publisher.json", 1 << 16), "publisher.json");
    repo.options_.scheme = cfg.value("scheme", std::string(kSchemeEcdsaP256));
    repo.options_.expires_days = cfg.value("expires_days", int64_t{365});
    repo.options_.timestamp_days = cfg.value("timestamp_days", int64_t{7});
    for (const char* role : kTopRoles) {
        RoleState r;
        Json env = parse_json(read_file(repo.metadata_dir() + "/" + role + ".json", 64 << 20),
                              std::string(role) + ".json");
        r.body = env.at("signed");
        for (int i = 0;; ++i) {
            std::string path = dir + "/keys/" + role + "-" + std::to_string(i) + ".pem";
            if (!file_exists(path)) break;
            r.keys.push_back(SigningKey::from_pem(read_file(path, 1 << 16)));
        }
        if (r.keys.empty())
            throw Error(ErrorKind::Config,
                        std::string("no signing key for role ") + role + " in " + dir + "/keys");
        repo.roles_[role] = std::move(r);
    }
    repo.options_.consistent_snapshot =
        repo.roles_["root"].body.value("consistent_snapshot", false);
    for (const char* role : kTopRoles)
        repo.roles_[role].threshold =
            repo.roles_["root"].body.at("roles").at(role).at("threshold").get<uint64_t>();
    return repo;
}

void Repository::add_target(const std::string& target_path, const std::string& file,
                            const Json& custom) {
    if (target_path.empty() || target_path.front() == '/' ||
        target_path.find("..") != std::string::npos)
        throw Error(ErrorKind::Config, "invalid target path: " + target_path);
    const uint64_t length = file_size(file);
    const std::string hash = file_sha256_hex(file);
    std::string dir, base = target_path;
    if (auto pos = target_path.rfind('/'); pos != std::string::npos) {
        dir = target_path.substr(0, pos + 1);
        base = target_path.substr(pos + 1);
    }
    make_directories(targets_dir() + "/" + dir);
    std::string dest =
        targets_dir() + "/" + dir + (options_.consistent_snapshot ? hash + "." : "") + base;
    std::string tmp = dest + ".tmp";
    {
        UniqueFd in = open_or_throw(file, O_RDONLY);
        UniqueFd out = open_or_throw(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char> buf(1 << 20);
        size_t n;
        while ((n = read_full(in.get(), buf.data(), buf.size(), file)) > 0)
            write_all(out.get(), buf.data(), n, tmp);
        fsync_or_throw(out.get(), tmp);
    }
    rename_durable(tmp, dest);
    Json entry{{"length", length}, {"hashes", Json{{"sha256", hash}}}};
    if (!custom.is_null()) entry["custom"] = custom;
    roles_.at("targets").body["targets"][target_path] = entry;
}

void Repository::remove_target(const std::string& target_path) {
    roles_.at("targets").body["targets"].erase(target_path);
}

void Repository::publish() {
    Json& targets = roles_.at("targets").body;
    targets["version"] = targets.at("version").get<uint64_t>() + 1;
    targets["expires"] = expiry(options_.expires_days);
    write_role("targets");
    std::string targets_bytes = read_file(metadata_dir() + "/targets.json", 64 << 20);

    Json& snapshot = roles_.at("snapshot").body;
    snapshot["version"] = snapshot.at("version").get<uint64_t>() + 1;
    snapshot["expires"] = expiry(options_.timestamp_days);
    snapshot["meta"]["targets.json"] =
        metafile(targets.at("version").get<uint64_t>(), targets_bytes);
    write_role("snapshot");
    refresh_timestamp();
}

void Repository::refresh_timestamp() {
    std::string snapshot_bytes = read_file(metadata_dir() + "/snapshot.json", 64 << 20);
    Json& ts = roles_.at("timestamp").body;
    ts["version"] = ts.at("version").get<uint64_t>() + 1;
    ts["expires"] = expiry(options_.timestamp_days);
    ts["meta"] =
        Json{{"snapshot.json",
              metafile(roles_.at("snapshot").body.at("version").get<uint64_t>(), snapshot_bytes)}};
    write_role("timestamp");
}

void Repository::rotate_keys(const std::string& role, const std::string& scheme) {
    if (!roles_.count(role)) throw Error(ErrorKind::Config, "unknown role " + role);
    RoleState old_root_state;
    for (const auto& k : roles_.at("root").keys)
        old_root_state.keys.push_back(SigningKey::from_pem(k.private_pem()));

    RoleState& r = roles_.at(role);
    Json& root = roles_.at("root").body;
    for (const auto& k : r.keys) {
        bool used_elsewhere = false;
        for (const char* other : kTopRoles)
            if (role != other)
                for (const auto& id : root["roles"][other]["keyids"])
                    used_elsewhere = used_elsewhere || id == key_id(k);
        if (!used_elsewhere) root["keys"].erase(key_id(k));
    }
    r.keys.clear();
    r.keys.push_back(SigningKey::generate(scheme.empty() ? options_.scheme : scheme));
    Json ids = Json::array();
    for (const auto& k : r.keys) {
        root["keys"][key_id(k)] = key_object(k);
        ids.push_back(key_id(k));
    }
    root["roles"][role]["keyids"] = ids;
    root["version"] = root.at("version").get<uint64_t>() + 1;
    root["expires"] = expiry(options_.expires_days);
    save_keys(role);

    // Root N+1 must carry the old root keys' signatures as well as the new ones.
    std::vector<const SigningKey*> signers = key_pointers(roles_.at("root"));
    if (role == "root")
        for (const auto& k : old_root_state.keys)
            signers.push_back(&k);
    std::string bytes = to_bytes(sign_envelope(root, signers));
    std::string version = std::to_string(root.at("version").get<uint64_t>());
    write_file_atomic(metadata_dir() + "/" + version + ".root.json", bytes);
    write_file_atomic(metadata_dir() + "/root.json", bytes);
    publish();
}

} // namespace ota::publish
