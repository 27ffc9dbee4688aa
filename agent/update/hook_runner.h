// The integrator's hooks: the system health check after a boot and each model's health check after
// its activation. The real runner starts the program (agent/common/process.h); the engine's tests
// script the answers.
#pragma once
#include <string>
#include <vector>

namespace ota::update {

class HookRunner {
public:
    virtual ~HookRunner() = default;
    // Runs argv with extra environment variables. True when it exited with status 0 within
    // timeout_s; *output receives what it printed, or why it failed (not started, timed out).
    virtual bool run(const std::vector<std::string>& argv, int timeout_s, std::string* output,
                     const std::vector<std::string>& extra_env = {}) = 0;
};

class ProcessHookRunner : public HookRunner {
public:
    bool run(const std::vector<std::string>& argv, int timeout_s, std::string* output,
             const std::vector<std::string>& extra_env = {}) override;
};

} // namespace ota::update
