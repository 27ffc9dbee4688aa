#include "slice/slice_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "support/sim_platform.h"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <functional>
#include <sstream>
#include <sys/stat.h>

namespace ota::test::slice {

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

Result run(const std::string& command) {
    Result r;
    r.status = run_command(command, &r.output);
    return r;
}

Nginx::Nginx(const std::string& root, const std::string& run_dir) : run_dir_(run_dir) {
    // free_tcp_port() can race with other processes: try a few ports.
    Result r;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_tcp_port();
        r = run(quote(source_path("scripts/serve-repo.sh")) + " start " + quote(root) + " " +
                std::to_string(port_) + " " + quote(run_dir_));
        if (r.status == 0 && file_exists(run_dir_ + "/nginx.pid")) return;
    }
    INFO(r.output);
    FAIL("nginx did not start on 127.0.0.1");
}

Nginx::~Nginx() {
    run(quote(source_path("scripts/serve-repo.sh")) + " stop " + quote(run_dir_));
}

Slice::Slice() {
    // nginx's workers may run as another user (nobody, when the tests run as root).
    ::chmod(tmp_.path().c_str(), 0755);
    const std::string v1 = image(1);
    Result r = sim("create --dir " + quote(ecu_dir()) + " --slot-size " +
                   std::to_string(kSlotSize) + " --image-a " + quote(v1));
    INFO(r.output);
    REQUIRE(r.status == 0);
    r = publish("init --repo " + quote(repo_dir()));
    INFO(r.output);
    REQUIRE(r.status == 0);
    // The root the ECU ships with: a copy, so later rotations in the repository do not touch it.
    write_all_file(path("factory-root.json"), read_all(repo_dir() + "/metadata/1.root.json"));
    nginx_ = std::make_unique<Nginx>(repo_dir(), path("nginx-run"));
    write_config("agent.json", port());
}

std::string Slice::image(uint64_t version, const std::string& health) {
    const std::string key = std::to_string(version) + "-" + health;
    auto it = images_.find(key);
    if (it != images_.end()) return it->second;
    const std::string out = path("v" + key + ".img");
    Result r = sim("make-image --version " + std::to_string(version) + " --health " + health +
                   " --size " + std::to_string(kImageSize) + " --seed " +
                   std::to_string(kImageSeed) + " " + quote(out));
    INFO(r.output);
    REQUIRE(r.status == 0);
    images_[key] = out;
    return out;
}

void Slice::release(const std::string& image_path, uint64_t version, const std::string& hardware_id,
                    bool delta_from_v1) {
    std::string args = "release --repo " + quote(repo_dir()) + " --image " + quote(image_path) +
                       " --version " + std::to_string(version) + " --hardware-id " +
                       quote(hardware_id);
    if (delta_from_v1) args += " --from " + quote(image(1) + ":1");
    Result r = publish(args);
    INFO(r.output);
    REQUIRE(r.status == 0);
}

std::string Slice::write_config(const std::string& name, int port,
                                uint64_t installed_version) const {
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    Json config{{"hardware_id", kHardwareId},
                {"state_dir", state_dir()},
                {"trusted_root", path("factory-root.json")},
                {"metadata_url", base + "/metadata/"},
                {"targets_url", base + "/targets/"},
                {"installed_version", installed_version}};
    add_sim_platform(config, ecu_dir());
    config["health_check"] = sim_command({"health", "--dir", ecu_dir()});
    const std::string file = path(name);
    write_all_file(file, config.dump(1) + "\n");
    return file;
}

Result Slice::agent(const std::string& args, const std::string& config,
                    const std::string& wrapper) const {
    return run((wrapper.empty() ? "" : wrapper + " ") + built_program("ota-agent") + " --config " +
               quote(config.empty() ? this->config() : config) + " " + args);
}

Result Slice::publish(const std::string& args) const {
    return run(built_program("ota-publish") + " " + args);
}

Result Slice::sim(const std::string& args) const {
    return run(built_program("ota-sim") + " " + args);
}

std::map<std::string, std::string> Slice::printenv() const {
    Result r = run("fw_printenv -c " + quote(ecu_dir() + "/fw_env.config"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    std::map<std::string, std::string> vars;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return vars;
}

Json Slice::status() const {
    // stdout only: the JSON document.
    Result r = agent("status --json 2>/dev/null");
    INFO(r.output);
    REQUIRE(r.status == 0);
    return parse_json(r.output, "ota-agent status --json");
}

std::string Slice::booted_slot() const {
    std::string s = read_all(ecu_dir() + "/booted-slot");
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

bool Slice::reboot_requested() const {
    return file_exists(ecu_dir() + "/reboot-requested");
}

DeviceSnapshot Slice::snapshot() const {
    DeviceSnapshot s;
    s.slot_a_sha256 = file_sha256_hex(ecu_dir() + "/slot-A.img");
    s.slot_b_sha256 = file_sha256_hex(ecu_dir() + "/slot-B.img");
    s.env_sha256 = file_sha256_hex(ecu_dir() + "/uboot.env");
    s.booted_slot = booted_slot();
    // Every file below state/metadata (the root history in its sub-folder too).
    std::function<void(const std::string&)> add = [&](const std::string& rel) {
        const std::string dir = state_dir() + "/metadata" + (rel.empty() ? "" : "/" + rel);
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        while (dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            const std::string path = rel.empty() ? name : rel + "/" + name;
            struct stat st {};
            if (::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
                add(path);
            else
                s.metadata_sha256[path] = file_sha256_hex(dir + "/" + name);
        }
        ::closedir(d);
    };
    add("");
    return s;
}

void require_rejected(const Slice& slice, const Result& result, const std::string& error_kind,
                      const std::string& message, const DeviceSnapshot& before,
                      const std::set<std::string>& may_advance) {
    INFO("agent output:\n" << result.output);
    CHECK(result.status == 1);
    CHECK(result.output.find("[" + error_kind + "]") != std::string::npos);
    CHECK(result.output.find(message) != std::string::npos);

    const DeviceSnapshot after = slice.snapshot();
    CHECK(after.slot_a_sha256 == before.slot_a_sha256); // the running slot
    CHECK(after.env_sha256 == before.env_sha256);       // the boot configuration
    CHECK(after.booted_slot == before.booted_slot);
    // Everything here is rejected before the first write, so the inactive slot is untouched too.
    CHECK(after.slot_b_sha256 == before.slot_b_sha256);
    CHECK_FALSE(slice.reboot_requested());

    std::set<std::string> names;
    for (const auto& [name, hash] : before.metadata_sha256)
        names.insert(name);
    for (const auto& [name, hash] : after.metadata_sha256)
        names.insert(name);
    for (const auto& name : names) {
        INFO("trusted metadata file state/metadata/" << name);
        auto b = before.metadata_sha256.find(name);
        auto a = after.metadata_sha256.find(name);
        const std::string before_hash = b == before.metadata_sha256.end() ? "(absent)" : b->second;
        const std::string after_hash = a == after.metadata_sha256.end() ? "(absent)" : a->second;
        const bool history_record = name.rfind("root_history/", 0) == 0;
        if (history_record && may_advance.count("root.json") && after_hash != before_hash &&
            a != after.metadata_sha256.end()) {
            // A root that may advance brings its root history record: the server's root of that
            // version ("root_history/N.json" holds it as "root").
            const std::string version = name.substr(13, name.size() - 13 - 5);
            const Json record = Json::parse(read_all(slice.state_dir() + "/metadata/" + name));
            CHECK(record.at("root") ==
                  read_all(slice.repo_dir() + "/metadata/" + version + ".root.json"));
        } else if (may_advance.count(name) && after_hash != before_hash) {
            // Advanced: only to the server's validly signed current copy.
            CHECK(after_hash == file_sha256_hex(slice.repo_dir() + "/metadata/" + name));
        } else {
            CHECK(after_hash == before_hash);
        }
    }
    Json status = slice.status();
    CHECK(status["pending"].is_null());
    CHECK(status["booted_slot"] == before.booted_slot);
}

} // namespace ota::test::slice
