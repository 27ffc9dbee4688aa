// BootControl on a U-Boot environment with RAUC's variables:
//   BOOT_ORDER="A B"   slots in the order the boot script tries them
//   BOOT_A_LEFT=3      tries left for slot A, hex. Written as RAUC writes them ("%x": "3", "a"),
//                      read as hex with or without "0x".
// Missing variables read as the boot script's defaults (BOOT_ORDER "A B", 3 tries), because that
// is what U-Boot will do with them. Every state change is one environment write; all other
// variables are kept.
#pragma once
#include "hal/boot_control.h"
#include "hal/uboot_env.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ota::hal {

// Tries are bounded to [0, 9] so that U-Boot's `test` (decimal) and `setexpr`/`itest` (hex) read
// the same number in any boot script.
constexpr int kMaxBootTries = 9;
constexpr int kDefaultBootTries = 3;

struct UBootBootControlOptions {
    std::vector<std::string> slots{"A", "B"};
    int default_tries = kDefaultBootTries; // mark_good() and the boot script's default
    // Where booted_slot() comes from: the provider if set, else `rauc.slot=X` in this file.
    std::string cmdline_path = "/proc/cmdline";
    std::function<std::string()> booted_slot_provider;
};

// "rauc.slot=B" from a kernel command line; "" when absent.
std::string rauc_slot_from_cmdline(const std::string& cmdline);

// Parses a BOOT_<slot>_LEFT value: hex digits, optional 0x. Throws Error(Malformed).
int parse_boot_tries(const std::string& value);
// The RAUC spelling of a tries value: lowercase hex without prefix.
std::string format_boot_tries(int tries);

// BootState as the boot script will see it, defaults applied for missing variables.
BootState boot_state_from_env(const EnvVars& vars, const std::vector<std::string>& slots,
                              int default_tries);
std::string boot_left_variable(const std::string& slot);

class UBootBootControl : public BootControl {
public:
    UBootBootControl(std::shared_ptr<EnvStorage> env, UBootBootControlOptions options = {});

    std::vector<std::string> slots() const override { return options_.slots; }
    std::string booted_slot() override;
    void mark_bad(const std::string& slot) override;
    void set_primary(const std::string& slot, int tries) override;
    void mark_good(const std::string& slot) override;
    BootState state() override;

private:
    void require_slot(const std::string& slot) const;

    std::shared_ptr<EnvStorage> env_;
    UBootBootControlOptions options_;
};

} // namespace ota::hal
