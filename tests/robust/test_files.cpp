// Local files another user can touch: a link planted where the agent (root) writes is never
// written through, and the agent refuses to start when its folders are not its own.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/update/state.h"
#include "hal/uboot_env.h"
#include "slice/slice_fixture.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

bool is_symlink(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A world-writable folder (as a careless image might ship it) holding a file an attacker wants
// root to overwrite.
struct PlantedLinks {
    TempDir dir;
    std::string folder = dir.file("state");
    std::string victim = dir.file("victim");
    const std::string precious = "root:precious contents\n";
    PlantedLinks() {
        make_directories(folder);
        ::chmod(folder.c_str(), 0777);
        write_all_file(victim, precious);
    }
    void plant(const std::string& name) {
        REQUIRE(::symlink(victim.c_str(), (folder + "/" + name).c_str()) == 0);
    }
};

} // namespace

TEST_CASE("a link planted at the temporary file's name is never written through",
          "[robust][files]") {
    PlantedLinks p;
    p.plant("agent-state.json.tmp");
    p.plant("agent-state.json.bak.tmp");
    update::AgentState s;
    s.installed["rootfs"] = update::InstalledComponent{2, "B", ""};
    update::save_state(p.folder, s);
    CHECK(read_all(p.victim) == p.precious);
    CHECK_FALSE(is_symlink(p.folder + "/agent-state.json"));
    CHECK(update::load_state(p.folder).installed.at("rootfs").version == 2);

    write_file_atomic(p.folder + "/agent-state.json", "{}\n"); // the primitive itself
    CHECK(read_all(p.victim) == p.precious);
    CHECK(read_all(p.folder + "/agent-state.json") == "{}\n");
}

TEST_CASE("a link planted at the download's name is not written through", "[robust][files]") {
    PlantedLinks p;
    write_all_file(p.dir.file("bundle"), "bundle bytes");
    net::CurlFetcher fetcher;
    for (bool resume : {false, true}) {
        INFO("resume " << resume);
        if (!is_symlink(p.folder + "/download.bundle")) p.plant("download.bundle");
        CHECK_THROWS_AS(fetcher.fetch_to_file("file://" + p.dir.file("bundle"),
                                              p.folder + "/download.bundle", 1 << 20, resume,
                                              nullptr),
                        Error);
        CHECK(read_all(p.victim) == p.precious);
    }
}

TEST_CASE("the U-Boot environment's lock file is never created through a link", "[robust][files]") {
    PlantedLinks p;
    const std::string target = p.dir.file("created-through-link");
    REQUIRE(::symlink(target.c_str(), (p.folder + "/fw_printenv.lock").c_str()) == 0);
    write_all_file(p.dir.file("uboot.env"), std::string(0x4000, '\0'));
    hal::EnvConfig config = hal::parse_fw_env_config(p.dir.file("uboot.env") + " 0x0 0x4000\n");
    hal::UBootEnv env(config, p.folder + "/fw_printenv.lock");
    env.initialize({{"BOOT_ORDER", "A B"}});
    CHECK(env.read().at("BOOT_ORDER") == "A B");
    CHECK_FALSE(file_exists(target));
}

TEST_CASE("leftovers of interrupted writes are removed, a write in progress is not",
          "[robust][files]") {
    TempDir dir;
    const std::string path = dir.file("state.json");
    const std::string old_leftover = path + ".tmp.0badc0de";
    const std::string fresh = path + ".tmp.0000beef";
    const std::string legacy = path + ".tmp";
    const std::string other = dir.file("other.json.tmp.12345678");
    for (const auto& f : {old_leftover, fresh, legacy, other})
        write_all_file(f, "half");
    // Two hours old: what a power cut between creating and renaming leaves.
    struct timeval old_times[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
    for (const auto& f : {old_leftover, legacy, other})
        REQUIRE(::utimes(f.c_str(), old_times) == 0);

    write_file_atomic(path, "new\n");
    CHECK(read_all(path) == "new\n");
    CHECK_FALSE(file_exists(old_leftover));
    CHECK_FALSE(file_exists(legacy));
    CHECK(file_exists(fresh)); // may be another process's write in progress
    CHECK(file_exists(other)); // another file's business
}

namespace {

struct RefusalCase {
    const char* what;
    std::function<void(Slice&)> spoil;
    std::string folder;     // named in the error
    std::string complaint;  // what is wrong with it
    std::string owner_mode; // "(owner ..., mode ....)"
};

void require_refused(const Slice& s, const std::string& command, const RefusalCase& c) {
    Result r = s.agent(command);
    INFO(c.what << ": ota-agent " << command << "\n" << r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "[config]"));
    CHECK(contains(r.output, c.folder + " " + c.complaint));
    CHECK(contains(r.output, c.owner_mode));
}

} // namespace

TEST_CASE("ota-agent refuses folders another user can write, naming folder, owner and mode",
          "[robust][files]") {
    Slice s;
    s.release(s.image(2), 2);
    make_directories(s.state_dir());
    const std::string state = s.state_dir();
    const std::string top = parent_directory(state);
    std::vector<RefusalCase> cases{
        {"state folder world-writable", [&](Slice&) { ::chmod(state.c_str(), 0777); }, state,
         "is writable by others", "(owner root (uid 0), mode 0777)"},
        {"state folder group-writable", [&](Slice&) { ::chmod(state.c_str(), 0775); }, state,
         "is writable by its group", "(owner root (uid 0), mode 0775)"},
        {"state folder owned by another user",
         [&](Slice&) { REQUIRE(::chown(state.c_str(), 65534, 65534) == 0); }, state,
         "is owned by another user", "(owner nobody (uid 65534), mode 0755)"},
        {"download folder world-writable",
         [&](Slice&) {
             make_directories(state + "/download");
             ::chmod((state + "/download").c_str(), 0777);
         },
         state + "/download", "is writable by others", "mode 0777"},
        {"a folder above the state folder world-writable",
         [&](Slice&) { ::chmod(top.c_str(), 0777); }, state + ": the folder " + top,
         "is writable by others", "mode 0777"},
        {"model store world-writable",
         [&](Slice& sl) {
             const std::string store = sl.path("models");
             make_directories(store);
             ::chmod(store.c_str(), 0757);
             Json c = parse_json(read_all(sl.config()), "config");
             c["models"] = Json{{"store", store}};
             write_all_file(sl.config(), c.dump());
         },
         s.path("models"), "is writable by others", "mode 0757"},
    };
    const std::string config = read_all(s.config());
    for (auto& c : cases) {
        c.spoil(s);
        // Planted while the folder was open; the refusal must come before any write.
        const std::string victim = s.path("victim");
        write_all_file(victim, "precious\n");
        ::symlink(victim.c_str(), (state + "/agent-state.json.tmp").c_str());
        for (const char* command : {"status", "update", "boot-check", "validate", "daemon --once"})
            require_refused(s, command, c);
        CHECK(read_all(victim) == "precious\n");
        CHECK(s.booted_slot() == "A");
        // Put right again: the agent works.
        REQUIRE(::chown(state.c_str(), 0, 0) == 0);
        for (const auto& d : {state, state + "/download", top, s.path("models")})
            ::chmod(d.c_str(), 0755);
        write_all_file(s.config(), config);
        Result r = s.agent("status");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }
    // World-writable with the sticky bit above the state folder, as /tmp: accepted.
    ::chmod(top.c_str(), 01777);
    Result r = s.agent("check");
    INFO(r.output);
    CHECK(r.status == 0);
    ::chmod(top.c_str(), 0755);
}
