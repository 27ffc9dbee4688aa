#include "uptane/uptane_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/primary.h"
#include "agent/uptane/vehicle_manifest.h"
#include "agent/uptane/version_report.h"
#include "manifests/publisher/repository.h"
#include "support/sim_platform.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ota::test::uptane {

using slice::quote;
using namespace ota::uptane;

std::string file_hash(const std::string& path) {
    return file_exists(path) ? file_sha256_hex(path) : "";
}

bool wait_for_file(const std::string& path) {
    for (int i = 0; i < 3000 && !file_exists(path); ++i)
        ::usleep(10000);
    return file_exists(path);
}

std::map<std::string, std::string> tree_hashes(const std::string& dir) {
    std::map<std::string, std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) {
        const std::string p = dir + "/" + n;
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) continue;
        if (S_ISLNK(st.st_mode)) {
            char buf[256];
            ssize_t len = ::readlink(p.c_str(), buf, sizeof buf);
            out[n] = "-> " + std::string(buf, len > 0 ? static_cast<size_t>(len) : 0);
        } else if (S_ISDIR(st.st_mode)) {
            for (const auto& [k, v] : tree_hashes(p))
                out[n + "/" + k] = v;
        } else {
            out[n] = file_sha256_hex(p);
        }
    }
    return out;
}

namespace {

// `command` through /bin/sh with stdout and stderr to `log`; returns the pid.
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

} // namespace

// --- ManifestReceiver ---------------------------------------------------------------------------

ManifestReceiver::ManifestReceiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 8) == 0);
    thread_ = std::thread([this] { serve(); });
}

ManifestReceiver::~ManifestReceiver() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
}

std::string ManifestReceiver::url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/director/" + kVehicle + "/manifest";
}

std::vector<std::string> ManifestReceiver::bodies() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bodies_;
}

void ManifestReceiver::serve() {
    while (true) {
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, 200);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (stop_) return;
        }
        if (r <= 0) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        std::string in;
        char buf[4096];
        size_t need = std::string::npos;
        while (true) {
            const auto end = in.find("\r\n\r\n");
            if (end != std::string::npos && need == std::string::npos) {
                std::string head = in.substr(0, end);
                for (auto& ch : head)
                    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                auto cl = head.find("content-length:");
                need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15)));
            }
            if (need != std::string::npos && in.size() >= need) break;
            pollfd q{c, POLLIN, 0};
            if (::poll(&q, 1, 30000) <= 0) break;
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            in.append(buf, static_cast<size_t>(n));
        }
        if (need != std::string::npos && in.size() >= need) {
            std::lock_guard<std::mutex> lock(mutex_);
            const size_t start = in.find("\r\n\r\n") + 4;
            bodies_.push_back(in.substr(start, need - start));
        }
        const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
        ::close(c);
    }
}

// --- Vehicle -------------------------------------------------------------------------------------

Vehicle::Vehicle() {
    // nginx's workers may run as another user (nobody, when the tests run as root).
    ::chmod(tmp_.path().c_str(), 0755);
    make_directories(path("www"));
    publish("init --repo " + quote(image_repo()));
    publish("director init --repo " + quote(director_repo()) + " --vehicle " + kVehicle);
    // The roots each ECU ships with.
    write_all_file(path("image-root.json"), read_all(image_repo() + "/metadata/1.root.json"));
    write_all_file(path("director-root.json"), read_all(director_repo() + "/metadata/1.root.json"));
    nginx_ = std::make_unique<slice::Nginx>(path("www"), path("nginx-run"));

    primary_key_ = std::make_unique<SigningKey>(SigningKey::generate(kSchemeEcdsaP256));
    write_all_file(path("primary.pub"), primary_key_->public_pem());
    publish("director add-ecu --repo " + quote(director_repo()) + " --serial " + kPrimarySerial +
            " --hardware-id " + kPrimaryHw + " --public-key " + quote(path("primary.pub")) +
            " --key-scheme ecdsa --primary");

    const std::string v1 = image(1);
    const std::string health = built_program("ota-sim");
    for (const auto& [serial, hw, mode] : {std::tuple{"brake-1", "brake-ecu", "full"},
                                           std::tuple{"door-1", "door-ecu", "partial"}}) {
        Secondary s;
        s.serial = serial;
        s.hardware_id = hw;
        s.mode = mode;
        s.dir = path(std::string(serial) + "/ecu");
        s.config = path(std::string(serial) + "/secondary.json");
        s.state_dir = path(std::string(serial) + "/state");
        s.key = path(std::string(serial) + "/ecu.key");
        s.log = path(std::string(serial) + "/log");
        make_directories(path(serial));
        sim("create --dir " + quote(s.dir) + " --slot-size " + std::to_string(kSlotSize) +
            " --image-a " + quote(v1));
        write_all_file(s.key, SigningKey::generate(kSchemeEcdsaP256).private_pem());
        Json health_argv = Json::array();
        std::istringstream words(built_program("ota-sim"));
        for (std::string w; words >> w;)
            health_argv.push_back(w);
        for (const char* a : {"health", "--dir"})
            health_argv.push_back(a);
        health_argv.push_back(s.dir);
        Json config{{"ecu_serial", serial},
                    {"hardware_id", hw},
                    {"verification", mode},
                    {"vehicle_id", kVehicle},
                    {"listen", "127.0.0.1:0"},
                    {"key", s.key},
                    {"state_dir", s.state_dir},
                    {"director_root", path("director-root.json")},
                    {"installed_version", 1},
                    {"slots", Json{{"A", s.dir + "/slot-A.img"}, {"B", s.dir + "/slot-B.img"}}},
                    {"bootloader", Json{{"fw_env_config", s.dir + "/fw_env.config"},
                                        {"booted_slot_file", s.dir + "/booted-slot"}}},
                    {"reboot_command", Json::array({"touch", s.dir + "/reboot-requested"})},
                    {"health_check", health_argv},
                    {"timeout_s", 30}};
        if (std::string(mode) == "full") config["image_root"] = path("image-root.json");
        write_all_file(s.config, config.dump(1) + "\n");
        // Provisioning: the ECU's identity as it reports it, registered with the director.
        slice::Result info =
            slice::run(built_program("ota-secondary") + " --config " + quote(s.config) +
                       " info 2>&1 >" + quote(path(std::string(serial) + "/info.json")));
        INFO(info.output);
        REQUIRE(info.status == 0);
        publish("director add-ecu --repo " + quote(director_repo()) + " --info " +
                quote(path(std::string(serial) + "/info.json")));
        secondaries_.push_back(s);
    }
    for (auto& s : secondaries_)
        start(s);
}

Vehicle::~Vehicle() {
    for (auto& s : secondaries_)
        if (s.pid > 0) {
            ::kill(s.pid, SIGKILL);
            wait_exit(s.pid);
        }
}

std::string Vehicle::base_url() const {
    return "http://127.0.0.1:" + std::to_string(nginx_->port());
}

Secondary& Vehicle::secondary(const std::string& serial) {
    for (auto& s : secondaries_)
        if (s.serial == serial) return s;
    FAIL("no secondary " << serial);
    throw std::logic_error("unreachable");
}

std::string Vehicle::publish(const std::string& args) {
    slice::Result r = publish_status(args);
    INFO("ota-publish " << args << "\n" << r.output);
    REQUIRE(r.status == 0);
    return r.output;
}

slice::Result Vehicle::publish_status(const std::string& args) {
    return slice::run(built_program("ota-publish") + " " + args + " 2>&1");
}

std::string Vehicle::sim(const std::string& args) {
    slice::Result r = slice::run(built_program("ota-sim") + " " + args + " 2>&1");
    INFO("ota-sim " << args << "\n" << r.output);
    REQUIRE(r.status == 0);
    return r.output;
}

std::string Vehicle::image(uint64_t version, const std::string& health) {
    const std::string key = std::to_string(version) + "-" + health;
    if (auto it = images_.find(key); it != images_.end()) return it->second;
    const std::string out = path("v" + key + ".img");
    sim("make-image --version " + std::to_string(version) + " --health " + health + " --size " +
        std::to_string(kImageSize) + " --seed 11 " + quote(out));
    images_[key] = out;
    return out;
}

std::string Vehicle::full_target(const std::string& hw, uint64_t version) {
    return hw + "/rootfs-" + std::to_string(version) + ".full.bundle";
}

std::string Vehicle::delta_target(const std::string& hw, uint64_t version) {
    return hw + "/rootfs-" + std::to_string(version) + ".from-1.delta.bundle";
}

void Vehicle::release(const std::string& hw, uint64_t version, bool delta_from_v1,
                      const std::string& health) {
    std::string args = "release --repo " + quote(image_repo()) + " --image " +
                       quote(image(version, health)) + " --version " + std::to_string(version) +
                       " --hardware-id " + hw;
    if (delta_from_v1) args += " --from " + quote(image(1) + ":1");
    publish(args);
}

void Vehicle::assign(const std::string& serial, const std::string& target) {
    publish("director assign --repo " + quote(director_repo()) + " --image-repo " +
            quote(image_repo()) + " --serial " + serial + " --target " + quote(target));
}

void Vehicle::start(Secondary& s) {
    const std::string ready = s.state_dir + ".port";
    ::unlink(ready.c_str());
    s.pid = spawn_shell(built_program("ota-secondary") + " --config " + quote(s.config) +
                            " serve --ready-file " + quote(ready),
                        s.log + "." + std::to_string(++starts_));
    // Wait (bounded) until it listens; the port comes from the ready file.
    for (int i = 0; i < 3000 && !file_exists(ready); ++i) {
        int status = 0;
        if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
            s.pid = -1;
            FAIL("ota-secondary " << s.serial << " exited at start");
        }
        ::usleep(10000);
    }
    REQUIRE(file_exists(ready));
    s.port = std::stoi(read_all(ready));
}

void Vehicle::stop(Secondary& s) {
    REQUIRE(s.pid > 0);
    ::kill(s.pid, SIGTERM);
    const int status = wait_exit(s.pid);
    s.pid = -1;
    REQUIRE(status == 0);
}

void Vehicle::power_cycle(Secondary& s) {
    stop(s);
    sim("boot --dir " + quote(s.dir));
    start(s);
}

std::string Vehicle::booted_slot(const Secondary& s) const {
    std::string b = read_all(s.dir + "/booted-slot");
    while (!b.empty() && (b.back() == '\n' || b.back() == '\r'))
        b.pop_back();
    return b;
}

std::map<std::string, std::string> Vehicle::printenv(const Secondary& s) const {
    std::string out;
    REQUIRE(run_command("fw_printenv -c " + quote(s.dir + "/fw_env.config"), &out) == 0);
    std::map<std::string, std::string> vars;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
        if (auto eq = line.find('='); eq != std::string::npos)
            vars[line.substr(0, eq)] = line.substr(eq + 1);
    return vars;
}

UptaneConfig Vehicle::primary_config(const std::string& manifest_url) const {
    Json secondaries = Json::array();
    for (const auto& s : secondaries_) {
        Json info = parse_json(read_all(tmp_.file(s.serial + "/info.json")), "info");
        write_all_file(tmp_.file(s.serial + "/ecu.pub"), info["public_key"]["public"]);
        secondaries.push_back(Json{{"ecu_serial", s.serial},
                                   {"hardware_id", s.hardware_id},
                                   {"address", "127.0.0.1:" + std::to_string(s.port)},
                                   {"verification", s.mode},
                                   {"public_key_file", s.serial + "/ecu.pub"},
                                   {"key_scheme", info["public_key"]["scheme"]}});
    }
    write_all_file(tmp_.file("primary.key"), primary_key_->private_pem());
    const Json config{
        {"vehicle_id", kVehicle},
        {"primary",
         Json{{"ecu_serial", kPrimarySerial}, {"hardware_id", kPrimaryHw}, {"key", "primary.key"}}},
        {"state_dir", "primary"},
        {"repositories",
         Json{{"director", Json{{"metadata_url", base_url() + "/director/metadata/"},
                                {"trusted_root", "director-root.json"}}},
              {"image", Json{{"metadata_url", base_url() + "/image/metadata/"},
                             {"targets_url", base_url() + "/image/targets/"},
                             {"trusted_root", "image-root.json"}}}}},
        {"mapping", Json::array({Json{{"paths", Json::array({"*"})},
                                      {"repositories", Json::array({"director", "image"})}}})},
        {"secondaries", secondaries},
        {"secondary_timeout_s", 30}};
    Json file = config;
    if (!manifest_url.empty()) file["manifest_url"] = manifest_url;
    write_all_file(tmp_.file("primary.json"), file.dump(1) + "\n");
    return load_uptane_config(tmp_.file("primary.json"));
}

Vehicle::Cycle Vehicle::primary_update(tuf::Clock clock) {
    net::CurlFetcher fetcher;
    Primary primary(primary_config(), fetcher, std::move(clock));
    Cycle cycle;
    cycle.verification = primary.refresh();
    cycle.secondaries = primary.update_secondaries(path("primary/downloads"));
    return cycle;
}

Json Vehicle::primary_manifest(ManifestSender& sender) {
    net::CurlFetcher fetcher;
    Primary primary(primary_config(), fetcher);
    EcuVersionReport own;
    own.installed_version = 1;
    own.time = tuf::system_time_now();
    own.counter = ++primary_counter_;
    Json manifest = primary.vehicle_manifest(own);
    last_reports = primary.last_reports();
    primary.send_manifest(manifest, sender);
    return manifest;
}

slice::Result Vehicle::director_manifest(const Json& manifest) {
    static int n = 0;
    const std::string file = path("manifest-" + std::to_string(++n) + ".json");
    write_all_file(file, manifest.dump());
    return publish_status("director manifest --repo " + quote(director_repo()) + " --manifest " +
                          quote(file));
}

void Vehicle::edit_director(const std::function<void(Json&)>& change) {
    publish::Repository repo = publish::Repository::open(director_repo());
    change(repo.role("targets").body);
    repo.publish();
}

namespace {
RepositoryMetadata served_repository(const std::string& dir, uint64_t receiver_root, bool full) {
    RepositoryMetadata m;
    for (uint64_t v = receiver_root + 1; file_exists(dir + "/" + std::to_string(v) + ".root.json");
         ++v)
        m.roots[v] = read_all(dir + "/" + std::to_string(v) + ".root.json");
    m.targets = read_all(dir + "/targets.json");
    if (full) {
        m.timestamp = read_all(dir + "/timestamp.json");
        m.snapshot = read_all(dir + "/snapshot.json");
    }
    return m;
}
} // namespace

SecondaryClient Vehicle::client(const Secondary& s) const {
    return SecondaryClient("127.0.0.1", static_cast<uint16_t>(s.port), 30);
}

SecondaryMetadata Vehicle::served_metadata(const Secondary& s) {
    SecondaryClient c = client(s);
    SecondaryInfo info = c.get_info();
    const bool full = info.verification == VerificationMode::Full;
    SecondaryMetadata m;
    m.director = served_repository(director_repo() + "/metadata", info.director_root_version, full);
    if (full)
        m.image = served_repository(image_repo() + "/metadata", info.image_root_version, true);
    return m;
}

std::optional<ImageOffer> Vehicle::push(const Secondary& s, const SecondaryMetadata& m) {
    SecondaryClient c = client(s);
    return c.put_metadata(m);
}

Json Vehicle::raw_report(const Secondary& s) {
    SecondaryClient c = client(s);
    return c.version_report("test");
}

SecondarySnapshot Vehicle::snapshot(const Secondary& s) const {
    SecondarySnapshot snap;
    snap.slot_a = file_hash(s.dir + "/slot-A.img");
    snap.slot_b = file_hash(s.dir + "/slot-B.img");
    snap.env = file_hash(s.dir + "/uboot.env");
    snap.booted = booted_slot(s);
    for (const auto& [name, hash] : tree_hashes(s.state_dir + "/trust"))
        snap.trust += name + " " + hash + "\n";
    const std::string state = s.state_dir + "/state.json";
    snap.state = file_exists(state) ? parse_json(read_all(state), "state") : Json(nullptr);
    // The report counter advances with every report, and a refused attack is recorded to be
    // reported: neither is part of what an attack may change.
    if (snap.state.is_object()) {
        snap.state.erase("report_counter");
        snap.state.erase("attacks_detected");
    }
    return snap;
}

std::map<std::string, std::string> Vehicle::primary_trust() const {
    return tree_hashes(tmp_.file("primary/trust"));
}

std::string Vehicle::agent_config(const std::string& manifest_url) {
    const std::string dir = primary_dir();
    if (!file_exists(dir + "/slot-A.img"))
        sim("create --dir " + quote(dir) + " --slot-size " + std::to_string(kSlotSize) +
            " --image-a " + quote(image(1)));
    primary_config(manifest_url);
    Json config{{"hardware_id", kPrimaryHw},
                {"state_dir", path("primary-agent")},
                {"uptane", "primary.json"},
                {"installed_version", 1}};
    add_sim_platform(config, dir);
    config["health_check"] = sim_command({"health", "--dir", dir});
    write_all_file(path("agent.json"), config.dump(1) + "\n");
    return path("agent.json");
}

slice::Result Vehicle::agent(const std::string& args) const {
    return slice::run(built_program("ota-agent") + " --config " + quote(path("agent.json")) + " " +
                      args + " 2>&1");
}

slice::Result Vehicle::primary_power_cycle() {
    sim("boot --dir " + quote(primary_dir()));
    return agent("boot-check");
}

std::map<std::string, std::string> Vehicle::primary_env() const {
    slice::Result r = slice::run("fw_printenv -c " + quote(primary_dir() + "/fw_env.config"));
    std::map<std::string, std::string> vars;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
        if (auto eq = line.find('='); eq != std::string::npos)
            vars[line.substr(0, eq)] = line.substr(eq + 1);
    return vars;
}

} // namespace ota::test::uptane
