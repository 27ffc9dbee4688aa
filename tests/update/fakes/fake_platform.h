// Fakes of the engine's other interfaces: clock, persistent state store, hook runner, fetcher and
// vehicle state. Each persistent fake is a "device" that outlives the engines started over it (a
// restart builds a new engine over the same devices) and hands out thin interface objects.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/fetcher.h"
#include "agent/update/clock.h"
#include "agent/update/hook_runner.h"
#include "agent/update/state_store.h"
#include "hal/vehicle_state.h"
#include "tests/update/fakes/transitions.h"

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ota::test::fakes {

class FakeClock : public update::Clock {
public:
    explicit FakeClock(int64_t now = static_cast<int64_t>(::time(nullptr))) : now_(now) {}
    int64_t now() override { return now_; }
    void advance(int64_t seconds) { now_ += seconds; }

private:
    int64_t now_;
};

// The agent state as the file store keeps it: the serialized JSON (so every field must survive a
// save and a load), replaced atomically; each save is a transition.
class FakeStateStore {
public:
    explicit FakeStateStore(Transitions& transitions) : transitions_(transitions) {}
    update::AgentState load() const {
        return text_ ? update::AgentState::from_json(parse_json(*text_, "fake state"))
                     : update::AgentState{};
    }
    void save(const update::AgentState& state) {
        const std::string what = "save " + summary(state);
        transitions_.before(what);
        text_ = state.to_json().dump();
        transitions_.after(what);
        ++saves_;
    }
    int saves() const { return saves_; }
    std::unique_ptr<update::StateStore> handle() {
        struct Handle : update::StateStore {
            FakeStateStore& store;
            explicit Handle(FakeStateStore& s) : store(s) {}
            update::AgentState load() override { return store.load(); }
            void save(const update::AgentState& s) override { store.save(s); }
        };
        return std::make_unique<Handle>(*this);
    }

private:
    static std::string summary(const update::AgentState& s) {
        std::string out = s.last_result ? s.last_result->outcome : "-";
        if (s.pending)
            out += s.pending->stage == update::PendingStage::Installing ? " (installing)"
                                                                        : " (switched)";
        return out;
    }
    Transitions& transitions_;
    std::optional<std::string> text_;
    int saves_ = 0;
};

// Hooks by argv[0]: a scripted answer per program name (default: healthy); `calls` counts them.
class FakeHookRunner : public update::HookRunner {
public:
    std::map<std::string, std::function<bool(std::string*)>> answers;
    std::map<std::string, int> calls;
    bool run(const std::vector<std::string>& argv, int, std::string* output,
             const std::vector<std::string>&) override {
        if (argv.empty()) return true;
        ++calls[argv[0]];
        auto it = answers.find(argv[0]);
        if (it == answers.end()) return true;
        std::string out;
        const bool ok = it->second(&out);
        if (output) *output = out;
        return ok;
    }
};

// Serves file:// URLs from the disk, bounded like the real fetcher.
class FakeFetcher : public net::Fetcher {
public:
    int fetches = 0;
    std::string fetch(const std::string& url, uint64_t max_length) override {
        ++fetches;
        const std::string path = local(url);
        if (file_size(path) > max_length)
            throw Error(ErrorKind::TooLarge, url + " is larger than " + std::to_string(max_length));
        return read_file(path, max_length);
    }
    void fetch_to_file(const std::string& url, const std::string& path, uint64_t max_length, bool,
                       const net::ProgressFn& progress) override {
        std::string body = fetch(url, max_length);
        write_file_atomic(path, body);
        if (progress) progress(body.size(), body.size());
    }

private:
    static std::string local(const std::string& url) {
        if (url.rfind("file://", 0) != 0) throw Error(ErrorKind::Network, "not a file URL: " + url);
        const std::string path = url.substr(7);
        if (!file_exists(path)) throw Error(ErrorKind::NotFound, url + " not found");
        return path;
    }
};

// The vehicle as its gateway reports it: fresh at every read unless told otherwise.
class FakeVehicleState : public hal::VehicleStateProvider {
public:
    FakeVehicleState(update::Clock& clock, hal::VehicleState state)
        : clock_(clock), state_(state) {}
    hal::VehicleState read() override {
        hal::VehicleState s = state_;
        if (!s.time) s.time = clock_.now();
        return s;
    }

private:
    update::Clock& clock_;
    hal::VehicleState state_;
};

} // namespace ota::test::fakes
