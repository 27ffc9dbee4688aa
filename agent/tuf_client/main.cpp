// ota-tuf-client: a thin, single-shot command line front end over the agent's TUF verifier
// (agent/tuf), speaking the client-under-test protocol third-party TUF test suites use:
//   ota-tuf-client --metadata-dir MD init TRUSTED_ROOT_FILE
//   ota-tuf-client --metadata-url MURL --metadata-dir MD refresh
//   ota-tuf-client --metadata-url MURL --metadata-dir MD --target-name T [--target-name T2 ...]
//                  --target-dir TD --target-base-url TURL download
//   ota-tuf-client --metadata-dir MD [--json] root-history
// Exit status: 0 on complete success, 1 on any failure (never anything else).
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/net/curl_fetcher.h"
#include "agent/tuf/root_history.h"
#include "agent/tuf/trusted_set.h"
#include "agent/tuf/updater.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kMaxTrustedRootFile = 1 << 20;

struct Options {
    std::string metadata_dir;
    std::string metadata_url;
    std::string target_dir;
    std::string target_base_url;
    std::vector<std::string> target_names;
    bool json = false;
    std::string command;
    std::vector<std::string> arguments;
};

[[noreturn]] void usage_error(const std::string& message) {
    throw ota::Error(ota::ErrorKind::Config,
                     message +
                         "\nusage: ota-tuf-client --metadata-dir MD init ROOT_FILE\n"
                         "       ota-tuf-client --metadata-url MURL --metadata-dir MD refresh\n"
                         "       ota-tuf-client --metadata-url MURL --metadata-dir MD "
                         "--target-name T... --target-dir TD --target-base-url TURL download\n"
                         "       ota-tuf-client --metadata-dir MD [--json] root-history");
}

Options parse_arguments(int argc, char** argv) {
    Options o;
    int i = 1;
    // Options come before the subcommand; "--name value" and "--name=value" are both accepted.
    for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
        std::string name = argv[i], value;
        if (name == "--json") {
            o.json = true;
            continue;
        }
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else {
            if (i + 1 >= argc) usage_error(name + " needs a value");
            value = argv[++i];
        }
        if (name == "--metadata-dir")
            o.metadata_dir = value;
        else if (name == "--metadata-url")
            o.metadata_url = value;
        else if (name == "--target-dir")
            o.target_dir = value;
        else if (name == "--target-base-url")
            o.target_base_url = value;
        else if (name == "--target-name")
            o.target_names.push_back(value);
        else if (name == "--verbose" || name == "-v") {
        } else
            usage_error("unknown option " + name);
    }
    if (i >= argc) usage_error("missing command");
    o.command = argv[i++];
    for (; i < argc; ++i)
        o.arguments.emplace_back(argv[i]);
    if (o.metadata_dir.empty()) usage_error("--metadata-dir is required");
    return o;
}

std::string with_slash(std::string url) {
    if (!url.empty() && url.back() != '/') url.push_back('/');
    return url;
}

void run_init(const Options& o) {
    if (o.arguments.size() != 1) usage_error("init takes exactly one TRUSTED_ROOT_FILE");
    const std::string root = ota::read_file(o.arguments[0], kMaxTrustedRootFile);
    // Refuse to trust a root that is not even valid on its own (shape, self-signatures).
    ota::tuf::TrustedSet check(root, ota::tuf::system_time_now());
    ota::tuf::Updater::initialize(o.metadata_dir, root);
}

ota::tuf::UpdaterConfig updater_config(const Options& o) {
    if (o.metadata_url.empty()) usage_error("--metadata-url is required");
    ota::tuf::UpdaterConfig c;
    c.metadata_dir = o.metadata_dir;
    c.metadata_base_url = with_slash(o.metadata_url);
    c.targets_base_url = with_slash(o.target_base_url);
    return c;
}

void run_refresh(const Options& o) {
    if (!o.arguments.empty()) usage_error("refresh takes no arguments");
    ota::net::CurlFetcher fetcher;
    ota::tuf::Updater updater(updater_config(o), fetcher);
    updater.refresh();
}

void run_download(const Options& o) {
    if (!o.arguments.empty()) usage_error("download takes no arguments");
    if (o.target_names.empty()) usage_error("download needs at least one --target-name");
    if (o.target_dir.empty()) usage_error("--target-dir is required");
    if (o.target_base_url.empty()) usage_error("--target-base-url is required");
    ota::net::CurlFetcher fetcher;
    ota::tuf::Updater updater(updater_config(o), fetcher);
    updater.refresh();
    ota::make_directories(o.target_dir);
    for (const auto& name : o.target_names) {
        auto target = updater.find_target(name);
        if (!target)
            throw ota::Error(ota::ErrorKind::NotFound,
                             "target " + name + " is not listed by any trusted targets role");
        // Stored under the percent-encoded target path, as python-tuf does: one flat folder, no
        // path can escape it.
        const std::string dest = ota::join_path(o.target_dir, ota::tuf::percent_encode(name));
        updater.download_target(*target, dest);
        LOG_INFO("target " << name << " verified: " << dest);
    }
}

// One line per trusted root version, oldest first: when it was accepted and who signs each role.
void print_root_history(const ota::Json& history) {
    for (const auto& entry : history) {
        std::printf("root version %llu", entry.at("version").get<unsigned long long>());
        if (entry.contains("accepted"))
            std::printf("  accepted %s", entry.at("accepted").get<std::string>().c_str());
        if (!entry.at("intact").get<bool>()) {
            std::printf("  DAMAGED: %s\n", entry.at("error").get<std::string>().c_str());
            continue;
        }
        std::printf("  expires %s\n", entry.at("expires").get<std::string>().c_str());
        for (const auto& [role, keys] : entry.at("roles").items()) {
            std::printf("    %-9s %llu of", role.c_str(),
                        keys.at("threshold").get<unsigned long long>());
            const auto& ids = keys.at("keyids");
            for (size_t i = 0; i < ids.size(); ++i)
                std::printf(" %s:%.16s", keys.at("keytypes").at(i).get<std::string>().c_str(),
                            ids.at(i).get<std::string>().c_str());
            std::printf("\n");
        }
    }
}

void run_root_history(const Options& o) {
    if (!o.arguments.empty()) usage_error("root-history takes no arguments");
    const ota::Json history = ota::tuf::root_history_json(o.metadata_dir);
    if (o.json)
        std::printf("%s\n", history.dump(1).c_str());
    else
        print_root_history(history);
}

int run(int argc, char** argv) {
    Options o = parse_arguments(argc, argv);
    if (o.command == "init")
        run_init(o);
    else if (o.command == "refresh")
        run_refresh(o);
    else if (o.command == "download")
        run_download(o);
    else if (o.command == "root-history")
        run_root_history(o);
    else
        usage_error("unknown command " + o.command);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    ota::set_log_level(ota::LogLevel::Warn);
    try {
        return run(argc, argv);
    } catch (const ota::Error& e) {
        std::fprintf(stderr, "ota-tuf-client: %s error: %s\n", ota::error_kind_name(e.kind()),
                     e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ota-tuf-client: error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "ota-tuf-client: unexpected error\n");
    }
    return 1;
}
