// Wall-clock time for what the agent stamps and compares: result times, the user's deferral, the
// age of the vehicle state, TUF expiry. Behind an interface so the engine's tests choose the time.
#pragma once
#include <cstdint>
#include <ctime>

namespace ota::update {

class Clock {
public:
    virtual ~Clock() = default;
    virtual int64_t now() = 0; // unix seconds
};

// libc's time() (so faketime applies, as for the TUF expiry checks).
class SystemClock : public Clock {
public:
    int64_t now() override { return static_cast<int64_t>(::time(nullptr)); }
};

} // namespace ota::update
