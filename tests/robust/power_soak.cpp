#include "robust/power_soak.h"

#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "agent/tuf/metadata.h"
#include "agent/update/state.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace ota::test {

using namespace slice;

namespace {

// Runs `command` under /bin/sh in its own process group; kills the group with SIGKILL after
// `kill_after` unless it finished. Returns true if it was killed.
bool run_and_maybe_kill(const std::string& command, std::chrono::microseconds kill_after) {
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", (command + " >/dev/null 2>&1").c_str(), nullptr);
        _exit(127);
    }
    setpgid(pid, pid);
    auto deadline = std::chrono::steady_clock::now() + kill_after;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    return true;
}

std::string slot_prefix_sha256(const std::string& slot_file, uint64_t length) {
    return file_sha256_hex(slot_file, static_cast<int64_t>(length));
}

} // namespace

int cuts_from_environment(const char* name, int fallback) {
    const char* v = std::getenv(name);
    const int n = v && *v ? std::atoi(v) : fallback;
    return n > 0 ? n : fallback;
}

SoakFigures run_power_cut_soak(int target_cuts, int cuts_per_episode, uint64_t seed,
                               SoakStorage& storage) {
    SoakFigures f;
    std::mt19937_64 rng(seed);
    // Typical duration of each step (boot-check, update, power-on), learned from the runs that
    // were not cut; kill points are drawn over that span so that cuts land in every phase.
    double step_us[3] = {100000, 400000, 30000};

    while (f.cuts < target_cuts) {
        Slice s;
        ++f.episodes;
        const std::string v1 = s.image(1);
        const uint64_t image_size = file_size(v1);
        std::set<std::string> complete_images{file_sha256_hex(v1)};
        uint64_t offered = 0;
        // Publishes version k. Small operations (64 KiB) so that cuts land between many
        // checkpoints.
        auto offer = [&](uint64_t k) {
            const std::string img = s.image(k);
            const std::string bundle = s.path("v" + std::to_string(k) + ".bundle");
            complete_images.insert(file_sha256_hex(img));
            REQUIRE(s.publish("bundle --image " + quote(img) + " --out " + quote(bundle) +
                              " --chunk-size 65536")
                        .status == 0);
            REQUIRE(s.publish("add --repo " + quote(s.repo_dir()) + " --bundle " + quote(bundle) +
                              " --hardware-id " + kHardwareId + " --version " + std::to_string(k))
                        .status == 0);
            offered = k;
        };
        offer(2);
        const std::string slot_b = s.ecu_dir() + "/slot-B.img";
        const std::string b_factory_hash = slot_prefix_sha256(slot_b, image_size);
        storage.attach(s);
        // Detached before the Slice removes its folders, also when an invariant fails.
        struct Detach {
            SoakStorage& storage;
            ~Detach() { storage.detach(); }
        } detach_at_end{storage};
        const std::string agent = built_program("ota-agent") + " --config " + quote(s.config());
        const std::string sim = built_program("ota-sim");
        // What a real ECU runs: the boot-check service at every boot, then the update; the
        // update's reboot request is the simulator's next power-on.
        const std::string steps[3] = {agent + " boot-check", agent + " update",
                                      sim + " boot --dir " + quote(s.ecu_dir())};
        const int episode_start = f.cuts;
        // What was once seen done must stay done, whatever the cuts: the committed version and
        // the versions of the trusted metadata never go back.
        uint64_t committed_version = 0;
        std::map<std::string, uint64_t> metadata_version;

        bool committed = false;
        for (int round = 0; round < 2000; ++round) {
            bool cut = false;
            // Three rounds in four cut one step: the update (check, download, install, verify,
            // switch) half of the time, the boot-check (health check, commit) or the power-on
            // otherwise.
            int victim = -1;
            if (rng() % 4 != 0) {
                unsigned r = static_cast<unsigned>(rng() % 4);
                victim = r < 2 ? 1 : (r == 2 ? 0 : 2);
            }
            for (int step = 0; step < 3 && !cut; ++step) {
                if (step == 2 && !s.reboot_requested()) continue;
                bool cut_here = step == victim;
                std::uniform_real_distribution<double> when(0, step_us[step] * 1.2);
                auto delay =
                    std::chrono::microseconds(cut_here ? static_cast<long>(when(rng)) : 600000000L);
                auto started = std::chrono::steady_clock::now();
                if (run_and_maybe_kill(steps[step], delay)) {
                    cut = true;
                    ++f.cuts;
                    ++f.killed_in[step];
                } else {
                    double took = std::chrono::duration<double, std::micro>(
                                      std::chrono::steady_clock::now() - started)
                                      .count();
                    step_us[step] = 0.7 * step_us[step] + 0.3 * took;
                }
            }
            if (cut) {
                storage.cut(rng);
                // Power back on: the boot script picks a slot; it must be a complete image.
                Result boot = s.sim("boot --dir " + quote(s.ecu_dir()));
                INFO("after cut " << f.cuts << ": " << boot.output);
                REQUIRE(boot.status == 0);
            }
            // Invariants after every round, cut or not.
            const std::string booted = s.booted_slot();
            const std::string booted_hash =
                slot_prefix_sha256(s.ecu_dir() + "/slot-" + booted + ".img", image_size);
            INFO("cut " << f.cuts << ", round " << round << ", booted " << booted);
            REQUIRE(complete_images.count(booted_hash) == 1);
            auto env = s.printenv();
            // No partially written slot is ever bootable: a slot may be in BOOT_ORDER with tries
            // left only while it holds a complete image (or slot B is still untouched).
            for (const std::string slot : {"A", "B"}) {
                if (env["BOOT_ORDER"].find(slot) == std::string::npos ||
                    env["BOOT_" + slot + "_LEFT"] == "0")
                    continue;
                const std::string h =
                    slot_prefix_sha256(s.ecu_dir() + "/slot-" + slot + ".img", image_size);
                INFO("bootable slot " << slot);
                REQUIRE((complete_images.count(h) == 1 || (slot == "B" && h == b_factory_hash)));
            }
            // Trusted metadata: every file complete and parseable, never older than before;
            // agent state parseable.
            for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
                const std::string file = s.state_dir() + "/metadata/" + role + ".json";
                uint64_t version = 0;
                if (file_exists(file)) {
                    tuf::Envelope e;
                    REQUIRE_NOTHROW(e = tuf::parse_envelope(read_file(file, 1 << 20), role));
                    version = e.version;
                }
                INFO("trusted " << role << " metadata");
                REQUIRE(version >= metadata_version[role]);
                metadata_version[role] = version;
            }
            REQUIRE_NOTHROW(update::load_state(s.state_dir()));
            update::AgentState st = update::load_state(s.state_dir());
            auto it = st.installed.find("rootfs");
            const uint64_t installed = it == st.installed.end() ? 0 : it->second.version;
            REQUIRE(installed >= committed_version);
            committed_version = installed;
            committed = installed == offered;
            if (committed) {
                ++f.completed;
                if (f.cuts - episode_start >= cuts_per_episode) break;
                offer(offered + 1); // the fleet's next release
                committed = false;
            } else if (st.failed_versions["rootfs"].count(offered)) {
                // Cuts during the first boots of the new slot used up its tries: the bootloader
                // fell back, as designed, and that version is never retried. The fleet then
                // offers a newer version, which must install in the end.
                ++f.rollbacks;
                offer(offered + 1);
            }
        }
        std::printf("episode %d: %d cuts so far, %d updates completed, %d fallbacks\n", f.episodes,
                    f.cuts, f.completed, f.rollbacks);
        std::fflush(stdout);
        // The update completed in the end, and the ECU runs it from a verified slot B.
        REQUIRE(committed);
        const std::string running = s.ecu_dir() + "/slot-" + s.booted_slot() + ".img";
        REQUIRE(slot_prefix_sha256(running, image_size) == file_sha256_hex(s.image(offered)));
        REQUIRE(s.printenv()["BOOT_ORDER"].rfind(s.booted_slot(), 0) == 0);
    }
    return f;
}

} // namespace ota::test
