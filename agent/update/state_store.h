// Where the agent's persistent state (AgentState) lives. The engine loads it at the start of each
// step and saves it after each transition; the file store is agent-state.json in state_dir
// (load_state/save_state), the engine's tests use one in memory that can stop the engine at any
// save.
#pragma once
#include "agent/update/state.h"

#include <string>

namespace ota::update {

class StateStore {
public:
    virtual ~StateStore() = default;
    virtual AgentState load() = 0;
    // Atomic: after a crash the store holds the previous state or this one.
    virtual void save(const AgentState& state) = 0;
};

class FileStateStore : public StateStore {
public:
    explicit FileStateStore(std::string state_dir) : state_dir_(std::move(state_dir)) {}
    AgentState load() override { return load_state(state_dir_); }
    void save(const AgentState& state) override { save_state(state_dir_, state); }

private:
    std::string state_dir_;
};

} // namespace ota::update
