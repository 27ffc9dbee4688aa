// The engine in-process over fakes of every interface (tests/update/fakes): a fake ECU (U-Boot's
// boot counting in memory, real slot files), a state store in memory, scripted hooks, a fetcher
// reading a signed repository that the real ota-publish built, and the real vehicle gate. A
// World is one ECU; start_agent() is one process of the agent on it, run_agent() one start as the
// daemon does it (boot-check, then one update attempt).
#pragma once
#include "agent/update/engine.h"
#include "agent/update/gating.h"
#include "support/test_support.h"
#include "tests/update/fakes/fake_ecu.h"
#include "tests/update/fakes/fake_platform.h"

#include <memory>
#include <string>
#include <vector>

namespace ota::test {

constexpr const char* kEngineHw = "test-ecu";
constexpr uint64_t kEngineImageSize = 256 * 1024;
constexpr uint64_t kEngineSlotSize = 512 * 1024;

// What the fleet offers: firmware 2 as a full bundle; as a delta from 1 (and the full bundle);
// release R1 = firmware 2 + model "perception" 1; or a firmware 2 whose health check fails (the
// bootloader must fall back to 1).
enum class Flow { Full, Delta, Release, Unhealthy };
const char* flow_name(Flow flow);

// A signed repository per flow, built once per test program with the real ota-publish.
struct Repo {
    std::string dir;
    std::string image_v1, image_v2; // firmware images (files)
    std::string model_dir;          // model "perception" version 1's files (release flow)
};
const Repo& repo_for(Flow flow);
// Signs extra targets into a copy of a flow's repository (tests that need odd metadata).
std::string copy_repo(Flow flow, const std::string& to);

// A directory in memory when /dev/shm exists (the engine fsyncs a lot), removed at the end.
class ScratchDir {
public:
    ScratchDir();
    ~ScratchDir();
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

class World;

// One process of the agent: its platform (thin handles over the World's fakes), its gate and its
// engine.
struct AgentProcess {
    update::Platform platform;
    std::unique_ptr<update::InstallGate> gate;
    std::unique_ptr<update::Engine> engine;
};

struct RunResult {
    bool crashed = false;            // a fake stopped it as a crash or power cut does
    bool stopped = false;            // it was asked to stop (SIGTERM) during the run
    std::string boot_check;          // outcome, or "" when boot-check failed
    std::vector<std::string> errors; // what the daemon would log: failed steps
};

class World {
public:
    explicit World(Flow flow, const std::string& repo_dir = "");

    Flow flow;
    ScratchDir scratch;
    const Repo& repo;
    fakes::Transitions transitions;
    fakes::FakeEcu ecu;
    fakes::FakeStateStore state{transitions};
    fakes::FakeClock clock;
    fakes::FakeHookRunner hooks;
    fakes::FakeFetcher fetcher;
    hal::VehicleState vehicle; // what the vehicle reports (parked by default)
    update::ControlFlags flags;
    update::AgentConfig config;
    std::vector<update::Event> events;
    std::function<void(const update::Event&)> on_event;

    std::unique_ptr<AgentProcess> start_agent();
    // One start of the agent, as the daemon does it: boot-check, then one update attempt. A crash
    // (fakes::Crash) ends it; errors are collected as the daemon logs them.
    RunResult run_agent(const update::UpdateOptions& options = {});

    // The slot file's first kEngineImageSize bytes, hashed.
    std::string slot_image_sha256(const std::string& slot) const;
    bool has_event(const std::string& text) const;
};

} // namespace ota::test
