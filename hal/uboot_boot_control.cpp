#include "hal/uboot_boot_control.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <sstream>

namespace ota::hal {

namespace {

std::vector<std::string> split_words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> words;
    std::string w;
    while (in >> w)
        words.push_back(w);
    return words;
}

std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ' ';
        out += w;
    }
    return out;
}

void check_tries(int tries) {
    if (tries < 0 || tries > kMaxBootTries)
        throw Error(ErrorKind::Config, "boot tries must be within [0, " +
                                           std::to_string(kMaxBootTries) + "], got " +
                                           std::to_string(tries));
}

} // namespace

std::string rauc_slot_from_cmdline(const std::string& cmdline) {
    const std::string key = "rauc.slot=";
    std::string found;
    for (const auto& word : split_words(cmdline))
        if (word.rfind(key, 0) == 0) found = word.substr(key.size()); // last one wins, as Linux
    return found;
}

int parse_boot_tries(const std::string& value) {
    std::string digits = value;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        digits = digits.substr(2);
    if (digits.empty() || digits.size() > 8)
        throw Error(ErrorKind::Malformed, "boot tries value '" + value + "' is not hex");
    // Eight hex digits fit 32 unsigned bits; tries must also fit the int they are kept in.
    uint32_t v = 0;
    for (char c : digits) {
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            throw Error(ErrorKind::Malformed, "boot tries value '" + value + "' is not hex");
        v = v * 16 +
            static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c))
                                      ? c - '0'
                                      : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    if (v > static_cast<uint32_t>(std::numeric_limits<int>::max()))
        throw Error(ErrorKind::Malformed, "boot tries value '" + value + "' is out of range");
    return static_cast<int>(v);
}

std::string format_boot_tries(int tries) {
    std::ostringstream s;
    s << std::hex << tries;
    return s.str();
}

std::string boot_left_variable(const std::string& slot) {
    return "BOOT_" + slot + "_LEFT";
}

BootState boot_state_from_env(const EnvVars& vars, const std::vector<std::string>& slots,
                              int default_tries) {
    BootState state;
    auto order = vars.find("BOOT_ORDER");
    if (order == vars.end() || split_words(order->second).empty())
        state.order = slots; // the script's `test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"`
    else
        state.order = split_words(order->second);
    for (const auto& slot : slots) {
        auto left = vars.find(boot_left_variable(slot));
        state.tries_left[slot] = (left == vars.end() || left->second.empty())
                                     ? default_tries
                                     : parse_boot_tries(left->second);
    }
    return state;
}

UBootBootControl::UBootBootControl(std::shared_ptr<EnvStorage> env, UBootBootControlOptions options)
    : env_(std::move(env)), options_(std::move(options)) {
    if (!env_) throw Error(ErrorKind::Config, "boot control needs an environment");
    if (options_.slots.empty()) throw Error(ErrorKind::Config, "boot control needs slots");
    for (const auto& s : options_.slots)
        if (s.empty() || s.find_first_of(" \t=\n") != std::string::npos)
            throw Error(ErrorKind::Config, "bad slot name '" + s + "'");
    if (options_.default_tries < 1) throw Error(ErrorKind::Config, "default tries must be >= 1");
    check_tries(options_.default_tries);
}

void UBootBootControl::require_slot(const std::string& slot) const {
    if (std::find(options_.slots.begin(), options_.slots.end(), slot) == options_.slots.end())
        throw Error(ErrorKind::Config, "unknown slot '" + slot + "'");
}

std::string UBootBootControl::booted_slot() {
    std::string slot;
    if (options_.booted_slot_provider) {
        slot = options_.booted_slot_provider();
    } else {
        slot = rauc_slot_from_cmdline(read_file(options_.cmdline_path, 64 * 1024));
        if (slot.empty())
            throw Error(ErrorKind::State,
                        "no rauc.slot= on the kernel command line (" + options_.cmdline_path + ")");
    }
    require_slot(slot);
    return slot;
}

void UBootBootControl::mark_bad(const std::string& slot) {
    require_slot(slot);
    env_->update([&](EnvVars& vars) {
        BootState current = boot_state_from_env(vars, options_.slots, options_.default_tries);
        std::vector<std::string> order;
        for (const auto& s : current.order)
            if (s != slot) order.push_back(s);
        vars["BOOT_ORDER"] = join_words(order);
        vars[boot_left_variable(slot)] = format_boot_tries(0);
    });
}

void UBootBootControl::set_primary(const std::string& slot, int tries) {
    require_slot(slot);
    check_tries(tries);
    if (tries < 1) throw Error(ErrorKind::Config, "a primary slot needs at least one try");
    env_->update([&](EnvVars& vars) {
        BootState current = boot_state_from_env(vars, options_.slots, options_.default_tries);
        std::vector<std::string> order{slot};
        for (const auto& s : current.order)
            if (s != slot) order.push_back(s);
        vars["BOOT_ORDER"] = join_words(order);
        vars[boot_left_variable(slot)] = format_boot_tries(tries);
    });
}

void UBootBootControl::mark_good(const std::string& slot) {
    require_slot(slot);
    env_->update([&](EnvVars& vars) {
        vars[boot_left_variable(slot)] = format_boot_tries(options_.default_tries);
    });
}

BootState UBootBootControl::state() {
    return boot_state_from_env(env_->read(), options_.slots, options_.default_tries);
}

} // namespace ota::hal
