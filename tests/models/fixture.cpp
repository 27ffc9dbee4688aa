#include "models/fixture.h"

#include "agent/common/fs.h"
#include "hal/sim/sim_image.h"
#include "hal/sim/simulated_ecu.h"
#include "support/sim_platform.h"

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ota::test {

namespace {
const uint64_t kSlotSize = 1 << 20;
const uint64_t kImageSize = 256 * 1024;
} // namespace

EcuFixture::EcuFixture() {
    repo = tmp.file("repo");
    sim = tmp.file("ecu");
    state = tmp.file("state");
    store = tmp.file("models");
    config_path = tmp.file("agent.json");
    vehicle_file = tmp.file("vehicle.json");
    publish("init --repo " + repo);
    write_all_file(tmp.file("fw-1.img"),
                   hal::sim::make_sim_image(1, hal::sim::SimHealth::Ok, kImageSize, 7));
    hal::sim::SimulatedEcu::create(sim, kSlotSize, tmp.file("fw-1.img"));
    config = Json{
        {"hardware_id", kHw},
        {"state_dir", state},
        {"trusted_root", repo + "/metadata/1.root.json"},
        {"metadata_url", "file://" + repo + "/metadata/"},
        {"targets_url", "file://" + repo + "/targets/"},
        {"installed_version", 1},
        {"poll_interval_s", 3600},
        {"poll_jitter_s", 0},
        {"models",
         Json{{"store", store},
              {"components",
               Json{{"perception",
                     Json{{"health_check",
                           "grep -q '\"health\": \"ok\"' \"$OTA_MODEL_DIR/config.json\""}}},
                    {"voice",
                     Json{{"health_check",
                           "grep -q '\"health\": \"ok\"' \"$OTA_MODEL_DIR/config.json\""}}}}}}}};
    add_sim_platform(config, sim);
    save_config();
}

void EcuFixture::save_config() {
    write_all_file(config_path, config.dump(1));
}

std::string EcuFixture::publish(const std::string& args) {
    std::string out;
    int rc = run_command(built_program("ota-publish") + " " + args + " 2>&1", &out);
    INFO("ota-publish " << args << "\n" << out);
    REQUIRE(rc == 0);
    return out;
}

int EcuFixture::agent(const std::string& args, std::string* output) {
    std::string out;
    int rc = run_command(
        built_program("ota-agent") + " --config " + config_path + " " + args + " 2>&1", &out);
    if (output) *output = out;
    return rc;
}

std::string EcuFixture::make_model(const std::string& name, uint64_t version,
                                   const std::string& health) {
    const std::string dir = tmp.file("src-" + name + "-" + std::to_string(version));
    make_directories(dir + "/labels");
    // Versions share most of their weights, as retrained models do.
    std::string weights = pseudo_random_bytes(300 * 1024, 11);
    std::string patch = pseudo_random_bytes(4096, 100 + version);
    weights.replace(static_cast<size_t>(version % 50) * 4096, patch.size(), patch);
    write_all_file(dir + "/weights.bin", weights);
    write_all_file(dir + "/labels/classes.txt",
                   "car\npedestrian\ncyclist\nv" + std::to_string(version) + "\n");
    write_all_file(dir + "/config.json", "{\"model\": \"" + name +
                                             "\", \"version\": " + std::to_string(version) +
                                             ", \"health\": \"" + health + "\"}\n");
    return dir;
}

std::string EcuFixture::add_model(const std::string& name, uint64_t version,
                                  const std::string& health) {
    const std::string dir = make_model(name, version, health);
    const std::string out = tmp.file(name + "-" + std::to_string(version) + ".bundle");
    publish("model-bundle --dir " + dir + " --out " + out + " --chunk-size 65536");
    publish("add --repo " + repo + " --bundle " + out + " --hardware-id " + kHw + " --version " +
            std::to_string(version) + " --component " + name + " --kind model");
    return out;
}

std::string EcuFixture::add_model_delta(const std::string& name, uint64_t from, uint64_t version) {
    const std::string out = tmp.file(name + "-" + std::to_string(version) + ".from-" +
                                     std::to_string(from) + ".bundle");
    publish("model-delta --old-dir " + tmp.file("src-" + name + "-" + std::to_string(from)) +
            " --new-dir " + tmp.file("src-" + name + "-" + std::to_string(version)) + " --out " +
            out);
    publish("add --repo " + repo + " --bundle " + out + " --hardware-id " + kHw + " --version " +
            std::to_string(version) + " --component " + name +
            " --kind model --delta-from-version " + std::to_string(from));
    return out;
}

std::string EcuFixture::add_firmware(uint64_t version, const std::string& health) {
    const std::string img = tmp.file("fw-" + std::to_string(version) + ".img");
    write_all_file(
        img, hal::sim::make_sim_image(version, hal::sim::parse_sim_health(health), kImageSize, 7));
    const std::string out = tmp.file("fw-" + std::to_string(version) + ".bundle");
    publish("bundle --image " + img + " --out " + out);
    publish("add --repo " + repo + " --bundle " + out + " --hardware-id " + kHw + " --version " +
            std::to_string(version));
    return out;
}

void EcuFixture::add_release(const std::string& id, uint64_t version,
                             const std::vector<std::string>& components) {
    std::string args = "add-release --repo " + repo + " --hardware-id " + kHw + " --id " + id +
                       " --version " + std::to_string(version);
    for (const auto& c : components)
        args += " --component " + c;
    publish(args);
}

std::string EcuFixture::target_file(const std::string& target_path) {
    Json targets = parse_json(read_all(repo + "/metadata/targets.json"), "targets");
    const Json& t = targets["signed"]["targets"].at(target_path);
    std::string dir = target_path.substr(0, target_path.rfind('/') + 1);
    std::string base = target_path.substr(target_path.rfind('/') + 1);
    return repo + "/targets/" + dir + t["hashes"]["sha256"].get<std::string>() + "." + base;
}

std::string EcuFixture::current_file(const std::string& name, const std::string& file) const {
    return store + "/" + name + "/current/" + file;
}
std::string EcuFixture::model_file(const std::string& name, uint64_t version,
                                   const std::string& file) const {
    return tmp.file("src-" + name + "-" + std::to_string(version)) + "/" + file;
}

Json EcuFixture::agent_state() const {
    return parse_json(read_all(state + "/agent-state.json"), "state");
}

std::string EcuFixture::boot_order() {
    auto ecu = hal::sim::SimulatedEcu::open(sim);
    std::string s;
    for (const auto& o : ecu.boot_control()->state().order)
        s += (s.empty() ? "" : " ") + o;
    return s;
}

void EcuFixture::set_vehicle(bool parked, bool consent, int battery) {
    std::string out;
    const int rc = run_command(
        built_program("ota-sim") + " vehicle --file " + vehicle_file + " --parked " +
            (parked ? "yes" : "no") + " --ignition " + (parked ? "off" : "on") + " --battery " +
            std::to_string(battery) + " --consent " + (consent ? "yes" : "no") + " 2>&1",
        &out);
    INFO(out);
    REQUIRE(rc == 0);
}

std::string EcuFixture::power_on() {
    auto ecu = hal::sim::SimulatedEcu::open(sim);
    return ecu.power_on().slot;
}

pid_t spawn_shell(const std::string& command, const std::string& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", ("exec " + command + " >" + log + " 2>&1").c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

int wait_exit(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace ota::test
