#include "manifests/publisher/director_cli.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/messages.h"
#include "manifests/publisher/director.h"

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace ota::publish {

namespace {

const char* kUsage = R"(usage: ota-publish director COMMAND [OPTIONS]

  init --repo DIR --vehicle VIN [--scheme ecdsa|rsa] [--expires-days N]
        create the director repository of one vehicle: keys, signed metadata (serve DIR/metadata/)
        and its inventory (DIR/inventory.json)
  add-ecu --repo DIR (--info FILE | --serial S --hardware-id HW --public-key PEM_FILE
          --key-scheme ecdsa|rsa|ed25519) [--primary]
        register an ECU of the vehicle with its public key; FILE is `ota-secondary info` output
  assign --repo DIR --image-repo IMAGE_DIR --serial S --target TARGET_PATH
        instruct ECU S to install TARGET_PATH of the image repository (its signed length, hashes
        and custom fields are copied); publishes new director metadata
  unassign --repo DIR --serial S
        drop the instruction for ECU S
  manifest --repo DIR --manifest FILE
        verify a vehicle version manifest (primary and ECU signatures, vehicle, report counters
        against replay), record it and print each ECU's state as JSON. Exit 0: every assigned ECU
        runs its assignment; 2: authentic, but some ECU does not (yet); 1: refused
)";

struct Args {
    std::map<std::string, std::string> values;
    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string need(const std::string& k) const {
        auto it = values.find(k);
        if (it == values.end()) throw Error(ErrorKind::Config, "missing --" + k);
        return it->second;
    }
};

Args parse(int argc, char** argv, int start) {
    Args a;
    for (int i = start; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) != 0) throw Error(ErrorKind::Config, "unexpected argument " + s);
        const std::string key = s.substr(2);
        if (key == "primary") {
            a.values[key] = "1";
            continue;
        }
        if (i + 1 >= argc) throw Error(ErrorKind::Config, s + " needs a value");
        a.values[key] = argv[++i];
    }
    return a;
}

std::string scheme_of(const std::string& s) {
    if (s == "ecdsa" || s == kSchemeEcdsaP256) return kSchemeEcdsaP256;
    if (s == "rsa" || s == kSchemeRsaPss) return kSchemeRsaPss;
    // An ECU key of a scheme the agent's verifier gains later is registered as named.
    if (s == "ed25519") return s;
    throw Error(ErrorKind::Config, "unknown scheme " + s + " (ecdsa, rsa or ed25519)");
}

Json status_json(const EcuStatus& s) {
    Json j{{"assigned", s.assigned.empty() ? Json(nullptr) : Json(s.assigned)},
           {"installed", s.installed.empty() ? Json(nullptr) : Json(s.installed)},
           {"installed_version", s.report.installed_version},
           {"status", s.status},
           {"report_counter", s.report.counter},
           {"attacks_detected", s.report.attacks_detected},
           {"pending", s.report.pending ? Json(*s.report.pending) : Json(nullptr)},
           {"last_result", Json(nullptr)}};
    if (s.report.last_result)
        j["last_result"] = Json{{"success", s.report.last_result->success},
                                {"filepath", s.report.last_result->filepath},
                                {"message", s.report.last_result->message}};
    return j;
}

} // namespace

int run_director(int argc, char** argv) {
    if (argc < 3 || std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
        std::fputs(kUsage, argc < 3 ? stderr : stdout);
        return argc < 3 ? 1 : 0;
    }
    const std::string cmd = argv[2];
    const Args a = parse(argc, argv, 3);

    if (cmd == "init") {
        RepositoryOptions options;
        if (a.has("scheme")) options.scheme = scheme_of(a.need("scheme"));
        if (a.has("expires-days")) {
            const std::string days = a.need("expires-days");
            if (days.empty() || days.size() > 6 ||
                days.find_first_not_of("0123456789") != std::string::npos)
                throw Error(ErrorKind::Config, "--expires-days must be a number of days");
            options.expires_days = std::stoll(days);
        }
        Director d = Director::create(a.need("repo"), a.need("vehicle"), options);
        std::printf("created director repository %s for vehicle %s (serve %s/metadata/)\n",
                    a.need("repo").c_str(), d.inventory().vehicle_id.c_str(),
                    a.need("repo").c_str());
        return 0;
    }
    if (cmd == "add-ecu") {
        Director d = Director::open(a.need("repo"));
        uptane::RegisteredEcu e;
        if (a.has("info")) {
            const std::string file = a.need("info");
            uptane::SecondaryInfo info = uptane::info_from_json(
                uptane::parse_bounded_json(read_file(file, 64 * 1024), file));
            e.serial = info.ecu_serial;
            e.hardware_id = info.hardware_id;
            e.key = info.key;
        } else {
            e.serial = a.need("serial");
            e.hardware_id = a.need("hardware-id");
            e.key.pem = read_file(a.need("public-key"), uptane::kMaxPublicKeyPem);
            e.key.scheme = scheme_of(a.need("key-scheme"));
        }
        e.primary = a.has("primary");
        d.add_ecu(e);
        std::printf("registered ECU %s (%s%s) in vehicle %s\n", e.serial.c_str(),
                    e.hardware_id.c_str(), e.primary ? ", primary" : "",
                    d.inventory().vehicle_id.c_str());
        return 0;
    }
    if (cmd == "assign") {
        Director d = Director::open(a.need("repo"));
        tuf::TargetFile t = d.assign(a.need("serial"), a.need("image-repo"), a.need("target"));
        std::printf("ECU %s: install %s (targets version %llu)\n", a.need("serial").c_str(),
                    t.path.c_str(),
                    static_cast<unsigned long long>(
                        d.repository().role("targets").body["version"].get<uint64_t>()));
        return 0;
    }
    if (cmd == "unassign") {
        Director d = Director::open(a.need("repo"));
        d.unassign(a.need("serial"));
        return 0;
    }
    if (cmd == "manifest") {
        Director d = Director::open(a.need("repo"));
        const std::string file = a.need("manifest");
        const Json manifest =
            uptane::parse_bounded_json(read_file(file, uptane::kMaxVehicleManifestSize), file);
        std::vector<EcuStatus> status = d.receive_manifest(manifest);
        Json ecus = Json::object();
        bool current = true;
        for (const auto& s : status) {
            ecus[s.ecu_serial] = status_json(s);
            current = current && (s.status == "up-to-date" || s.status == "no-assignment");
        }
        std::cout << Json{{"vehicle_id", d.inventory().vehicle_id},
                          {"verified", true},
                          {"ecus", ecus}}
                         .dump(1, ' ', false, Json::error_handler_t::replace)
                  << std::endl;
        return current ? 0 : 2;
    }
    throw Error(ErrorKind::Config, "unknown director command " + cmd + " (see --help)");
}

} // namespace ota::publish
