// libFuzzer target: the U-Boot environment parsers (single and redundant copies, entries,
// fw_env.config) and the RAUC boot-state reader.
#include "agent/common/error.h"
#include "hal/uboot_boot_control.h"
#include "hal/uboot_env.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace ota::hal;
    const std::string input(reinterpret_cast<const char*>(data), size);
    for (bool redundant : {false, true}) {
        try {
            EnvCopy copy = inspect_env_copy(input, redundant);
            EnvVars vars = decode_env_entries(copy.data);
            boot_state_from_env(vars, {"A", "B"}, kDefaultBootTries);
        } catch (const ota::Error&) {
        }
    }
    try {
        decode_env_entries(input);
    } catch (const ota::Error&) {
    }
    try {
        parse_fw_env_config(input);
    } catch (const ota::Error&) {
    }
    return 0;
}
