// ota-sim: drives the simulated ECU from the shell (tests, the demo, by hand).
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "hal/sim/sim_image.h"
#include "hal/sim/simulated_ecu.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

using ota::Error;
using ota::ErrorKind;
using namespace ota::hal;
using namespace ota::hal::sim;

const char* kUsage =
    "usage:\n"
    "  ota-sim create --dir D --slot-size BYTES --image-a FILE [--redundant-env]\n"
    "  ota-sim make-image --version N [--health ok|fail|panic] --size BYTES --seed S OUT\n"
    "  ota-sim boot --dir D\n"
    "  ota-sim reboot --dir D          (the agent's reboot_command: records the request)\n"
    "  ota-sim health --dir D\n"
    "  ota-sim state --dir D [--json]\n"
    "  ota-sim vehicle --file F [--parked yes|no] [--ignition on|off] [--battery PERCENT]\n"
    "                  [--consent yes|no] [--age SECONDS]\n"
    "                  (the vehicle state the agent reads: stamped now, or SECONDS ago)\n";

struct Args {
    std::map<std::string, std::string> options;
    std::vector<std::string> positional;
    bool has(const std::string& k) const { return options.count(k) > 0; }
    std::string get(const std::string& k) const {
        auto it = options.find(k);
        if (it == options.end()) throw Error(ErrorKind::Config, "missing option " + k);
        return it->second;
    }
};

Args parse_args(int argc, char** argv, const std::vector<std::string>& flags) {
    Args args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) == 0) {
            if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
                args.options[a] = "1";
            } else {
                if (i + 1 >= argc) throw Error(ErrorKind::Config, "option " + a + " needs a value");
                args.options[a] = argv[++i];
            }
        } else {
            args.positional.push_back(a);
        }
    }
    return args;
}

uint64_t parse_u64(const std::string& name, const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
        throw Error(ErrorKind::Config, name + " must be a decimal number, got '" + s + "'");
    return std::strtoull(s.c_str(), nullptr, 10);
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : " ") + s;
    return out;
}

void print_state_line(const BootState& state) {
    std::cout << "BOOT_ORDER=\"" << join(state.order) << "\"";
    for (const auto& [slot, left] : state.tries_left)
        std::cout << " BOOT_" << slot << "_LEFT=" << left;
    std::cout << "\n";
}

int cmd_create(const Args& args) {
    SimulatedEcu ecu =
        SimulatedEcu::create(args.get("--dir"), parse_u64("--slot-size", args.get("--slot-size")),
                             args.get("--image-a"), args.has("--redundant-env"));
    std::cout << "created simulated ECU in " << ecu.dir() << ", booted slot " << ecu.booted_slot()
              << "\n";
    print_state_line(ecu.boot_control()->state());
    return 0;
}

int cmd_make_image(const Args& args) {
    if (args.positional.size() != 1)
        throw Error(ErrorKind::Config, "make-image needs exactly one output file");
    SimHealth health =
        args.has("--health") ? parse_sim_health(args.get("--health")) : SimHealth::Ok;
    std::string image = make_sim_image(parse_u64("--version", args.get("--version")), health,
                                       parse_u64("--size", args.get("--size")),
                                       parse_u64("--seed", args.get("--seed")));
    ota::write_file_atomic(args.positional[0], image);
    return 0;
}

int cmd_boot(const Args& args) {
    SimulatedEcu ecu = SimulatedEcu::open(args.get("--dir"));
    BootOutcome outcome = ecu.power_on();
    for (const auto& line : outcome.log)
        std::cout << "  " << line << "\n";
    std::cout << "booted slot " << outcome.slot << " after " << outcome.power_ons
              << " power-on(s)\n";
    print_state_line(outcome.state);
    return 0;
}

int cmd_reboot(const Args& args) {
    SimulatedEcu ecu = SimulatedEcu::open(args.get("--dir"));
    ecu.request_reboot();
    std::cout << "reboot requested: `ota-sim boot --dir " << ecu.dir() << "` powers the ECU on\n";
    return 0;
}

bool yes_no(const Args& args, const std::string& key, const char* yes, const char* no) {
    const std::string v = args.get(key);
    if (v == yes) return true;
    if (v == no) return false;
    throw Error(ErrorKind::Config, key + " must be " + yes + " or " + no + ", got '" + v + "'");
}

// Writes the vehicle-state document (hal/json_vehicle_state.h) atomically, as a CAN gateway
// would; a signal not given is left out (the agent then treats it as unknown).
int cmd_vehicle(const Args& args) {
    nlohmann::json j = nlohmann::json::object();
    const uint64_t age = args.has("--age") ? parse_u64("--age", args.get("--age")) : 0;
    j["time"] = static_cast<int64_t>(::time(nullptr)) - static_cast<int64_t>(age);
    if (args.has("--parked")) j["parked"] = yes_no(args, "--parked", "yes", "no");
    if (args.has("--ignition")) j["ignition_on"] = yes_no(args, "--ignition", "on", "off");
    if (args.has("--consent")) j["user_consent"] = yes_no(args, "--consent", "yes", "no");
    if (args.has("--battery")) {
        const uint64_t b = parse_u64("--battery", args.get("--battery"));
        if (b > 100) throw Error(ErrorKind::Config, "--battery must be 0-100");
        j["battery_percent"] = b;
    }
    ota::write_file_atomic(args.get("--file"), j.dump() + "\n");
    return 0;
}

int cmd_health(const Args& args) {
    SimulatedEcu ecu = SimulatedEcu::open(args.get("--dir"));
    std::string message;
    bool ok = ecu.health_check(&message);
    (ok ? std::cout : std::cerr) << "health: " << message << "\n";
    return ok ? 0 : 1;
}

int cmd_state(const Args& args) {
    SimulatedEcu ecu = SimulatedEcu::open(args.get("--dir"));
    BootState state = ecu.boot_control()->state();
    nlohmann::json slots = nlohmann::json::object();
    for (const auto& slot : ecu.slots()) {
        auto image = ecu.slot_image(slot);
        slots[slot] = image ? nlohmann::json{{"version", image->version},
                                             {"health", sim_health_name(image->health)}}
                            : nlohmann::json(nullptr);
    }
    if (args.has("--json")) {
        nlohmann::json j;
        j["booted_slot"] = ecu.booted_slot();
        j["boot_order"] = state.order;
        j["tries_left"] = state.tries_left;
        j["slots"] = slots;
        j["reboot_requested"] = ecu.reboot_requested();
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << "booted slot: " << (ecu.booted_slot().empty() ? "-" : ecu.booted_slot()) << "\n";
    print_state_line(state);
    for (const auto& slot : ecu.slots()) {
        std::cout << "slot " << slot << ": ";
        if (slots[slot].is_null())
            std::cout << "no image\n";
        else
            std::cout << "version " << slots[slot]["version"].get<uint64_t>() << " health "
                      << slots[slot]["health"].get<std::string>() << "\n";
    }
    std::cout << "reboot requested: " << (ecu.reboot_requested() ? "yes" : "no") << "\n";
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << kUsage;
        return 2;
    }
    std::string cmd = argv[1];
    try {
        if (cmd == "create") return cmd_create(parse_args(argc, argv, {"--redundant-env"}));
        if (cmd == "make-image") return cmd_make_image(parse_args(argc, argv, {}));
        if (cmd == "boot") return cmd_boot(parse_args(argc, argv, {}));
        if (cmd == "reboot") return cmd_reboot(parse_args(argc, argv, {}));
        if (cmd == "health") return cmd_health(parse_args(argc, argv, {}));
        if (cmd == "vehicle") return cmd_vehicle(parse_args(argc, argv, {}));
        if (cmd == "state") return cmd_state(parse_args(argc, argv, {"--json"}));
        std::cerr << "unknown command '" << cmd << "'\n" << kUsage;
        return 2;
    } catch (const Error& e) {
        std::cerr << "ota-sim " << cmd << ": " << e.what() << " [" << ota::error_kind_name(e.kind())
                  << "]\n";
        return e.kind() == ErrorKind::Config ? 2 : 1;
    }
}
