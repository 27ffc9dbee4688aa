// Boot control: A/B slots with boot counting, in RAUC's U-Boot convention. BOOT_ORDER lists the
// slots to try ("A B"); BOOT_<slot>_LEFT (hex) counts the tries left. The bootloader decrements
// the counter before each boot and skips slots at 0, so a slot that never reaches mark_good()
// falls back by itself. Each method is exactly one environment write.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace ota::hal {

struct BootState {
    std::vector<std::string> order;        // BOOT_ORDER, first = tried first
    std::map<std::string, int> tries_left; // BOOT_<slot>_LEFT
};

class BootControl {
public:
    virtual ~BootControl() = default;
    virtual std::vector<std::string> slots() const = 0; // e.g. {"A", "B"}
    // The slot the running system booted from.
    virtual std::string booted_slot() = 0;
    // Before writing a slot: drop it from BOOT_ORDER and set its tries to 0, so a half-written
    // slot can never be booted.
    virtual void mark_bad(const std::string& slot) = 0;
    // After the written slot verified: put it first in BOOT_ORDER with `tries` attempts.
    virtual void set_primary(const std::string& slot, int tries) = 0;
    // After the health check passed on the booted slot: it keeps its place with full tries.
    virtual void mark_good(const std::string& slot) = 0;
    virtual BootState state() = 0;
};

// Restarts the ECU. The simulated ECU records the request instead.
class Rebooter {
public:
    virtual ~Rebooter() = default;
    virtual void reboot() = 0;
};

} // namespace ota::hal
