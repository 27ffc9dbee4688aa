// The power-cut soak: an ECU taken through successive updates while its programs are killed at
// random moments, with the invariants checked after every round. Run once with process death only
// (SIGKILL, the page cache survives) and once over folders that also lose what was not synced.
#pragma once
#include "slice/slice_fixture.h"

#include <cstdint>
#include <random>

namespace ota::test {

// What a power cut does to the ECU's storage beyond stopping every program.
class SoakStorage {
public:
    virtual ~SoakStorage() = default;
    // A new ECU (episode) begins / ends.
    virtual void attach(slice::Slice&) {}
    virtual void detach() {} // must not throw
    // Called after every program of the cut step was killed, before the ECU powers on again.
    virtual void cut(std::mt19937_64&) {}
};

struct SoakFigures {
    int cuts = 0;
    int episodes = 0;
    int completed = 0;            // updates committed
    int rollbacks = 0;            // versions the bootloader fell back from
    int killed_in[3] = {0, 0, 0}; // boot-check, update, power-on
};

// Runs episodes until `target_cuts` cuts; each episode ends with the newest version committed
// after about `cuts_per_episode` cuts. Every failed invariant is a Catch2 failure.
SoakFigures run_power_cut_soak(int target_cuts, int cuts_per_episode, uint64_t seed,
                               SoakStorage& storage);

// The number of cuts a soak aims at: the environment variable `name` when it holds a positive
// number (a longer soak than CI's), else `fallback`.
int cuts_from_environment(const char* name, int fallback);

} // namespace ota::test
