// A TUF repository simulator for the trust tests: every role's "signed" body is a mutable JSON
// object, signers are kept per role, and publish_* functions sign and serve the current state
// over TestHttpServer (metadata under /metadata/, artifacts under /targets/). Tests mutate bodies,
// signers or the served bytes directly to perform attacks.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "tuf/http_server.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ota::test {

using KeyPtr = std::shared_ptr<SigningKey>;

KeyPtr new_key(const std::string& scheme = kSchemeEcdsaP256);
std::string expires_in_days(int64_t days);
// Signs `body` with each key (in order) into published envelope bytes.
std::string sign_bytes(const Json& body, const std::vector<KeyPtr>& keys);

class RepoSim {
public:
    // `role_schemes`: the scheme of the first key of each role named (others: `scheme`).
    explicit RepoSim(TestHttpServer& server, const std::string& scheme = kSchemeEcdsaP256,
                     const std::map<std::string, std::string>& role_schemes = {});

    TestHttpServer& server;
    std::string scheme;
    std::map<std::string, Json> md; // role -> "signed" body (top-level + delegated)
    std::map<std::string, std::vector<KeyPtr>> signers; // role -> keys that sign it
    std::map<std::string, std::string> delegator_of;    // delegated role -> delegating role
    std::map<std::string, std::string> key_scheme;      // role -> scheme of its new keys
    bool metafile_hashes = true;                        // length+hashes in timestamp/snapshot meta

    Json& root() { return md.at("root"); }
    Json& timestamp() { return md.at("timestamp"); }
    Json& snapshot() { return md.at("snapshot"); }
    Json& targets() { return md.at("targets"); }
    uint64_t version(const std::string& role) const;
    bool consistent() const;

    std::string metadata_url() const { return server.url("/metadata/"); }
    std::string targets_url() const { return server.url("/targets/"); }
    // Server path of a role's metadata at a version (as the client must request it).
    std::string role_path(const std::string& role, uint64_t version) const;

    std::string sign(const std::string& role) const;
    // Publishing (no version change).
    void publish_root(const std::vector<KeyPtr>& extra_signers = {});
    void publish_role(const std::string& role); // targets or a delegated role
    void publish_snapshot();                    // lists the published targets and delegated roles
    void publish_timestamp();                   // lists the published snapshot

    // Repository steps: bump the version and publish, cascading like a real repository.
    void bump_root(const std::vector<KeyPtr>& extra_signers = {});
    void bump_timestamp();
    void bump_snapshot();                                   // + timestamp
    void bump_targets(const std::string& role = "targets"); // + snapshot + timestamp

    // Keys of a top-level role in root (not published: call bump_root()). New keys are of
    // key_scheme[role] when set, else of `scheme`.
    KeyPtr add_key(const std::string& role);
    std::string scheme_for(const std::string& role) const;
    // Replaces all keys of a top-level role; returns the old keys.
    std::vector<KeyPtr> rotate_keys(const std::string& role);

    // Lists `path` in `role` (body only) and serves the content at its consistent URL.
    void add_artifact(const std::string& role, const std::string& path, const std::string& content);
    // Adds a delegated role (own new key) to `delegator`, with an empty targets body.
    void add_delegation(const std::string& delegator, const std::string& name,
                        const Json& paths = Json::array({"*"}), bool terminating = false,
                        const std::string& pattern_field = "paths");
    std::string artifact_path(const std::string& target_path, const std::string& content) const;

    // The bytes of root version 1 (what a client is initialised with).
    std::string initial_root;
    std::map<std::string, std::string> published; // role -> bytes last published

private:
    Json metafile(const std::string& role) const;
};

// Serves every file below `dir` at "/" + its path relative to `dir`.
void serve_tree(TestHttpServer& server, const std::string& dir);

// Every regular file of a directory (name -> bytes), for byte-identical before/after checks;
// sub-directories are listed as "name/" -> "", except `skip` (the root history of a metadata
// folder, compared on its own).
std::map<std::string, std::string> dir_files(const std::string& dir, const std::string& skip = "");

} // namespace ota::test
