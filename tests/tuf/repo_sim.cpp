#include "tuf/repo_sim.h"

#include "agent/tuf/metadata.h"
#include "manifests/publisher/repository.h"

#include <catch2/catch.hpp>
#include <ctime>
#include <dirent.h>
#include <sys/stat.h>

#include "support/test_support.h"

namespace ota::test {

namespace {
constexpr const char* kSpec = "1.0.31";

Json role_keys_entry() {
    return Json{{"keyids", Json::array()}, {"threshold", 1}};
}
} // namespace

KeyPtr new_key(const std::string& scheme) {
    return std::make_shared<SigningKey>(SigningKey::generate(scheme, 2048));
}

std::string expires_in_days(int64_t days) {
    return tuf::format_expiry(static_cast<int64_t>(::time(nullptr)) + days * 86400);
}

std::string sign_bytes(const Json& body, const std::vector<KeyPtr>& keys) {
    std::vector<const SigningKey*> raw;
    for (const auto& k : keys)
        raw.push_back(k.get());
    return publish::to_bytes(publish::sign_envelope(body, raw));
}

RepoSim::RepoSim(TestHttpServer& srv, const std::string& sch,
                 const std::map<std::string, std::string>& role_schemes)
    : server(srv), scheme(sch), key_scheme(role_schemes) {
    Json roles = Json::object();
    for (const char* r : {"root", "timestamp", "snapshot", "targets"})
        roles[r] = role_keys_entry();
    md["root"] = Json{{"_type", "root"},
                      {"spec_version", kSpec},
                      {"version", 1},
                      {"expires", expires_in_days(365)},
                      {"consistent_snapshot", true},
                      {"keys", Json::object()},
                      {"roles", roles}};
    md["timestamp"] = Json{{"_type", "timestamp"},
                           {"spec_version", kSpec},
                           {"version", 1},
                           {"expires", expires_in_days(30)},
                           {"meta", Json::object()}};
    md["snapshot"] = Json{{"_type", "snapshot"},
                          {"spec_version", kSpec},
                          {"version", 1},
                          {"expires", expires_in_days(30)},
                          {"meta", Json::object()}};
    md["targets"] = Json{{"_type", "targets"},
                         {"spec_version", kSpec},
                         {"version", 1},
                         {"expires", expires_in_days(365)},
                         {"targets", Json::object()}};
    for (const char* r : {"root", "timestamp", "snapshot", "targets"})
        add_key(r);
    publish_root();
    initial_root = published.at("root");
    publish_role("targets");
    publish_snapshot();
    publish_timestamp();
}

uint64_t RepoSim::version(const std::string& role) const {
    return md.at(role).at("version").get<uint64_t>();
}

bool RepoSim::consistent() const {
    return md.at("root").value("consistent_snapshot", false);
}

std::string RepoSim::role_path(const std::string& role, uint64_t v) const {
    if (role == "timestamp") return "/metadata/timestamp.json";
    const std::string name = tuf::percent_encode(role) + ".json";
    if (role == "root" || consistent()) return "/metadata/" + std::to_string(v) + "." + name;
    return "/metadata/" + name;
}

std::string RepoSim::sign(const std::string& role) const {
    return sign_bytes(md.at(role), signers.at(role));
}

void RepoSim::publish_root(const std::vector<KeyPtr>& extra_signers) {
    std::vector<KeyPtr> keys = signers.at("root");
    keys.insert(keys.end(), extra_signers.begin(), extra_signers.end());
    std::string bytes = sign_bytes(root(), keys);
    published["root"] = bytes;
    server.put(role_path("root", version("root")), bytes);
}

void RepoSim::publish_role(const std::string& role) {
    std::string bytes = sign(role);
    published[role] = bytes;
    server.put(role_path(role, version(role)), bytes);
}

Json RepoSim::metafile(const std::string& role) const {
    Json m{{"version", version(role)}};
    if (metafile_hashes) {
        const std::string& bytes = published.at(role);
        m["length"] = bytes.size();
        m["hashes"] = Json{{"sha256", sha256_hex(bytes)}};
    }
    return m;
}

void RepoSim::publish_snapshot() {
    Json meta = Json::object();
    for (const auto& [role, body] : md) {
        if (role == "root" || role == "timestamp" || role == "snapshot") continue;
        if (!published.count(role)) publish_role(role);
        meta[role + ".json"] = metafile(role);
    }
    snapshot()["meta"] = meta;
    publish_role("snapshot");
}

void RepoSim::publish_timestamp() {
    timestamp()["meta"] = Json{{"snapshot.json", metafile("snapshot")}};
    publish_role("timestamp");
}

void RepoSim::bump_root(const std::vector<KeyPtr>& extra_signers) {
    root()["version"] = version("root") + 1;
    publish_root(extra_signers);
}

void RepoSim::bump_timestamp() {
    timestamp()["version"] = version("timestamp") + 1;
    publish_timestamp();
}

void RepoSim::bump_snapshot() {
    snapshot()["version"] = version("snapshot") + 1;
    publish_snapshot();
    bump_timestamp();
}

void RepoSim::bump_targets(const std::string& role) {
    md.at(role)["version"] = version(role) + 1;
    publish_role(role);
    bump_snapshot();
}

std::string RepoSim::scheme_for(const std::string& role) const {
    auto it = key_scheme.find(role);
    return it == key_scheme.end() ? scheme : it->second;
}

KeyPtr RepoSim::add_key(const std::string& role) {
    KeyPtr k = new_key(scheme_for(role));
    const std::string id = publish::key_id(*k);
    root()["keys"][id] = publish::key_object(*k);
    root()["roles"][role]["keyids"].push_back(id);
    signers[role].push_back(k);
    return k;
}

std::vector<KeyPtr> RepoSim::rotate_keys(const std::string& role) {
    std::vector<KeyPtr> old = signers[role];
    for (const auto& k : old)
        root()["keys"].erase(publish::key_id(*k));
    root()["roles"][role]["keyids"] = Json::array();
    signers[role].clear();
    add_key(role);
    return old;
}

std::string RepoSim::artifact_path(const std::string& target_path,
                                   const std::string& content) const {
    std::string dir, base = target_path;
    if (auto pos = target_path.rfind('/'); pos != std::string::npos) {
        dir = target_path.substr(0, pos + 1);
        base = target_path.substr(pos + 1);
    }
    if (consistent()) base = sha256_hex(content) + "." + base;
    return "/targets/" + dir + base;
}

void RepoSim::add_artifact(const std::string& role, const std::string& path,
                           const std::string& content) {
    md.at(role)["targets"][path] =
        Json{{"length", content.size()}, {"hashes", Json{{"sha256", sha256_hex(content)}}}};
    server.put(artifact_path(path, content), content);
}

void RepoSim::add_delegation(const std::string& delegator, const std::string& name,
                             const Json& paths, bool terminating,
                             const std::string& pattern_field) {
    KeyPtr k = new_key(scheme_for(name));
    const std::string id = publish::key_id(*k);
    Json& d = md.at(delegator);
    if (!d.contains("delegations"))
        d["delegations"] = Json{{"keys", Json::object()}, {"roles", Json::array()}};
    d["delegations"]["keys"][id] = publish::key_object(*k);
    d["delegations"]["roles"].push_back(Json{{"name", name},
                                             {"keyids", Json::array({id})},
                                             {"threshold", 1},
                                             {"terminating", terminating},
                                             {pattern_field, paths}});
    signers[name].push_back(k);
    delegator_of[name] = delegator;
    if (!md.count(name))
        md[name] = Json{{"_type", "targets"},
                        {"spec_version", kSpec},
                        {"version", 1},
                        {"expires", expires_in_days(365)},
                        {"targets", Json::object()}};
}

static void serve_below(TestHttpServer& server, const std::string& dir, const std::string& rel) {
    DIR* d = ::opendir((dir + "/" + rel).c_str());
    REQUIRE(d != nullptr);
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string r = rel.empty() ? name : rel + "/" + name;
        struct stat st {};
        REQUIRE(::stat((dir + "/" + r).c_str(), &st) == 0);
        if (S_ISDIR(st.st_mode))
            serve_below(server, dir, r);
        else
            server.put("/" + r, read_all(dir + "/" + r));
    }
    ::closedir(d);
}

void serve_tree(TestHttpServer& server, const std::string& dir) {
    serve_below(server, dir, "");
}

std::map<std::string, std::string> dir_files(const std::string& dir, const std::string& skip) {
    std::map<std::string, std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == skip) continue;
        struct stat st {};
        if (::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
            out[name] = read_all(dir + "/" + name);
        else
            out[name + "/"] = "";
    }
    ::closedir(d);
    return out;
}

} // namespace ota::test
