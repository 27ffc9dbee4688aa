// Images for the simulated ECU. A simulated image is a one-line text header
//   OTA-SIM-IMAGE version=N health=ok|fail|panic\n
// followed by data. The header tells the boot simulator what "booting" the slot does:
//   panic (or no valid header): the kernel never comes up, the board resets (a failed boot);
//   fail: the system comes up but its health check fails;
//   ok:   the system comes up healthy.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace ota::hal::sim {

enum class SimHealth { Ok, Fail, Panic };

const char* sim_health_name(SimHealth health);
// "ok" / "fail" / "panic"; throws Error(Config) otherwise.
SimHealth parse_sim_health(const std::string& name);

struct SimImageHeader {
    uint64_t version = 0;
    SimHealth health = SimHealth::Ok;
};

// The header line is at most this long (newline included); anything longer is not a header.
constexpr size_t kMaxSimHeaderSize = 128;

std::string format_sim_image_header(const SimImageHeader& header);
// Parses the header at the start of `start` (the first bytes of a slot); nullopt if there is none
// or it is malformed (which the simulator treats as an unbootable slot).
std::optional<SimImageHeader> parse_sim_image_header(const std::string& start);
// Reads the first kMaxSimHeaderSize bytes of a slot file and parses them.
std::optional<SimImageHeader> read_sim_image_header(const std::string& path);

// A deterministic test image of exactly `size` bytes: header + pseudo-random body. The body of
// version N+1 equals that of version N except for a few changed regions, so images compress
// poorly but delta well. Same (version, size, seed) = same bytes, whatever the health.
std::string make_sim_image(uint64_t version, SimHealth health, uint64_t size, uint64_t seed);

} // namespace ota::hal::sim
