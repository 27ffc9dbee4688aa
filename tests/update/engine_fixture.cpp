#include "tests/update/engine_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/models/model_store.h"
#include "hal/sim/sim_image.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <unistd.h>

namespace ota::test {

namespace {

void publish(const std::string& args) {
    std::string out;
    const int rc = run_command(built_program("ota-publish") + " " + args + " 2>&1", &out);
    INFO("ota-publish " << args << "\n" << out);
    REQUIRE(rc == 0);
}

std::string make_image(const std::string& path, uint64_t version,
                       hal::sim::SimHealth health = hal::sim::SimHealth::Ok) {
    write_all_file(path, hal::sim::make_sim_image(version, health, kEngineImageSize, 5));
    return path;
}

Repo build_repo(Flow flow, const std::string& dir) {
    Repo r;
    r.dir = dir + "/repo";
    r.image_v1 = make_image(dir + "/v1.img", 1);
    r.image_v2 =
        make_image(dir + "/v2.img", 2,
                   flow == Flow::Unhealthy ? hal::sim::SimHealth::Fail : hal::sim::SimHealth::Ok);
    publish("init --repo " + r.dir);
    const std::string common = " --hardware-id " + std::string(kEngineHw) + " --version ";
    switch (flow) {
    case Flow::Full:
    case Flow::Unhealthy:
        // 64 KiB operations: four of them, so that a write can stop between two.
        publish("bundle --image " + r.image_v2 + " --out " + dir +
                "/fw-2.bundle --chunk-size 65536");
        publish("add --repo " + r.dir + " --bundle " + dir + "/fw-2.bundle" + common + "2");
        break;
    case Flow::Delta:
        publish("release --repo " + r.dir + " --image " + r.image_v2 + common + "2 --from " +
                r.image_v1 + ":1");
        break;
    case Flow::Release: {
        publish("bundle --image " + r.image_v2 + " --out " + dir +
                "/fw-2.bundle --chunk-size 65536");
        publish("add --repo " + r.dir + " --bundle " + dir + "/fw-2.bundle" + common + "2");
        r.model_dir = dir + "/perception-1";
        make_directories(r.model_dir);
        write_all_file(r.model_dir + "/weights.bin", pseudo_random_bytes(96 * 1024, 3));
        write_all_file(r.model_dir + "/config.json", "{\"model\": \"perception\"}\n");
        publish("model-bundle --dir " + r.model_dir + " --out " + dir + "/perception-1.bundle");
        publish("add --repo " + r.dir + " --bundle " + dir + "/perception-1.bundle" + common +
                "1 --component perception --kind model");
        publish("add-release --repo " + r.dir + " --hardware-id " + kEngineHw +
                " --id R1 --version 1 --component rootfs:2 --component perception:1");
        break;
    }
    }
    return r;
}

} // namespace

const char* flow_name(Flow flow) {
    switch (flow) {
    case Flow::Full: return "full update";
    case Flow::Delta: return "delta update";
    case Flow::Release: return "release (model + firmware)";
    case Flow::Unhealthy: return "full update of a version that fails its health check";
    }
    return "?";
}

const Repo& repo_for(Flow flow) {
    static TempDir dir; // removed at exit
    static std::map<Flow, Repo> repos;
    auto it = repos.find(flow);
    if (it == repos.end()) {
        const std::string sub = dir.file("flow-" + std::to_string(static_cast<int>(flow)));
        make_directories(sub);
        it = repos.emplace(flow, build_repo(flow, sub)).first;
    }
    return it->second;
}

std::string copy_repo(Flow flow, const std::string& to) {
    REQUIRE(run_command("cp -a '" + repo_for(flow).dir + "' '" + to + "'") == 0);
    return to;
}

ScratchDir::ScratchDir() {
    std::string tmpl =
        ::access("/dev/shm", W_OK) == 0 ? "/dev/shm/ota-engine-XXXXXX" : "/tmp/ota-engine-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

ScratchDir::~ScratchDir() {
    if (std::getenv("OTA_KEEP_TEST_DIRS")) return;
    try {
        models::remove_tree(path_);
    } catch (const std::exception&) {
    }
}

namespace {

std::map<std::string, std::string> make_slots(const ScratchDir& scratch, const Repo& repo) {
    std::string a = read_all(repo.image_v1);
    a.resize(kEngineSlotSize, '\0');
    write_all_file(scratch.file("slot-A.img"), a);
    write_all_file(scratch.file("slot-B.img"), std::string(kEngineSlotSize, '\0'));
    return {{"A", scratch.file("slot-A.img")}, {"B", scratch.file("slot-B.img")}};
}

} // namespace

World::World(Flow f, const std::string& repo_dir)
    : flow(f), repo(repo_for(f)), ecu(make_slots(scratch, repo), transitions) {
    const std::string served = repo_dir.empty() ? repo.dir : repo_dir;
    config.hardware_id = kEngineHw;
    config.state_dir = scratch.file("state");
    config.trusted_root = served + "/metadata/1.root.json";
    config.metadata_url = "file://" + served + "/metadata/";
    config.targets_url = "file://" + served + "/targets/";
    config.installed_version = 1;
    config.slots = ecu.slot_files();
    config.health_check = {"system-health"};
    if (flow == Flow::Release) {
        config.models.store = scratch.file("models");
        config.models.models["perception"].health_check = {"model-health"};
    }
    config.vehicle.type = "file"; // the gate gets the fake vehicle below
    config.vehicle.require_parked = true;
    config.vehicle.poll_ms = 10;
    vehicle.parked = true;
    vehicle.ignition_on = false;
    vehicle.battery_percent = 80;
    // The system health check reports what the booted image says, as `ota-sim health` does.
    hooks.answers["system-health"] = [this](std::string* out) {
        auto image = hal::sim::read_sim_image_header(ecu.slot_files().at(ecu.booted_slot()));
        *out = image ? hal::sim::sim_health_name(image->health) : "no image";
        return image && image->health == hal::sim::SimHealth::Ok;
    };
    transitions.on_clean_stop([this] { flags.stop = true; });
}

std::unique_ptr<AgentProcess> World::start_agent() {
    auto p = std::make_unique<AgentProcess>();
    p->platform.boot = ecu.boot_control();
    p->platform.rebooter = ecu.rebooter();
    p->platform.boot_id = ecu.boot_id_source();
    struct ClockHandle : update::Clock {
        update::Clock& clock;
        explicit ClockHandle(update::Clock& c) : clock(c) {}
        int64_t now() override { return clock.now(); }
    };
    struct HooksHandle : update::HookRunner {
        update::HookRunner& hooks;
        explicit HooksHandle(update::HookRunner& h) : hooks(h) {}
        bool run(const std::vector<std::string>& argv, int timeout_s, std::string* output,
                 const std::vector<std::string>& env) override {
            return hooks.run(argv, timeout_s, output, env);
        }
    };
    p->platform.clock = std::make_unique<ClockHandle>(clock);
    p->platform.state = state.handle();
    p->platform.hooks = std::make_unique<HooksHandle>(hooks);
    p->platform.slots = config.slots;
    flags.stop = false; // a new process
    p->gate = std::make_unique<update::InstallGate>(
        config.vehicle, std::make_unique<fakes::FakeVehicleState>(clock, vehicle), &flags,
        *p->platform.clock);
    p->engine = std::make_unique<update::Engine>(config, p->platform, fetcher,
                                                 [this](const update::Event& e) {
                                                     events.push_back(e);
                                                     if (on_event) on_event(e);
                                                 });
    update::InstallGate* gate = p->gate.get();
    p->engine->set_gate([gate](const std::string& phase) { gate->wait(phase); });
    p->engine->set_stop_request([this] { return flags.stop.load(); });
    return p;
}

RunResult World::run_agent(const update::UpdateOptions& options) {
    RunResult r;
    try {
        auto agent = start_agent();
        try {
            r.boot_check = agent->engine->boot_check(options);
        } catch (const std::exception& e) {
            r.errors.push_back(std::string("boot-check: ") + e.what());
        }
        try {
            agent->engine->update(options);
        } catch (const std::exception& e) {
            r.errors.push_back(std::string("update: ") + e.what());
        }
    } catch (const fakes::Crash&) {
        r.crashed = true;
    }
    r.stopped = flags.stop.load();
    return r;
}

std::string World::slot_image_sha256(const std::string& slot) const {
    return file_sha256_hex(ecu.slot_files().at(slot), static_cast<int64_t>(kEngineImageSize));
}

bool World::has_event(const std::string& text) const {
    for (const auto& e : events)
        if (e.message.find(text) != std::string::npos) return true;
    return false;
}

} // namespace ota::test
