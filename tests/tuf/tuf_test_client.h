// An in-process TUF client over HTTP for the trust tests: the agent's Updater with the real
// libcurl fetcher and a metadata folder of its own, initialised with the simulator's first root.
#pragma once
#include "agent/common/error.h"
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/updater.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"

#include <memory>
#include <optional>

namespace ota::test {

struct TestClient {
    TempDir tmp;
    std::string md;
    tuf::UpdaterConfig config;
    net::CurlFetcher fetcher;
    std::unique_ptr<tuf::Updater> updater;
    std::string last_error;

    explicit TestClient(RepoSim& repo, const std::string& root = "") : md(tmp.file("md")) {
        config.metadata_dir = md;
        config.metadata_base_url = repo.metadata_url();
        config.targets_base_url = repo.targets_url();
        tuf::Updater::initialize(md, root.empty() ? repo.initial_root : root);
    }

    // Runs a refresh with the clock shifted by `days`; the error kind on failure.
    std::optional<ErrorKind> refresh(int64_t days = 0) {
        updater = std::make_unique<tuf::Updater>(
            config, fetcher, [days] { return tuf::system_time_now() + days * 86400; });
        try {
            updater->refresh();
            return std::nullopt;
        } catch (const Error& e) {
            last_error = e.what();
            return e.kind();
        }
    }

    // Delegation search after a successful refresh.
    std::optional<ErrorKind> find(const std::string& path, tuf::TargetFile* out = nullptr) {
        try {
            auto t = updater->find_target(path);
            if (!t) return ErrorKind::NotFound;
            if (out) *out = *t;
            return std::nullopt;
        } catch (const Error& e) {
            last_error = e.what();
            return e.kind();
        }
    }

    // The metadata files (the root history apart: history()).
    std::map<std::string, std::string> files() const { return dir_files(md, "root_history"); }
    std::map<std::string, std::string> history() const { return dir_files(md + "/root_history"); }
    bool has(const std::string& role) const { return files().count(tuf::role_filename(role)) > 0; }
    uint64_t version(const std::string& role) const {
        return Json::parse(read_all(md + "/" + tuf::role_filename(role)))
            .at("signed")
            .at("version")
            .get<uint64_t>();
    }
};

} // namespace ota::test
