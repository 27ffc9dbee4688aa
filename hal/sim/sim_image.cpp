#include "hal/sim/sim_image.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <algorithm>
#include <fcntl.h>

namespace ota::hal::sim {

namespace {

const std::string kMagic = "OTA-SIM-IMAGE ";

// splitmix64: a tiny, well-mixed deterministic generator.
struct Prng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    void fill(char* out, size_t size) {
        size_t i = 0;
        for (; i + 8 <= size; i += 8) {
            uint64_t v = next();
            for (int b = 0; b < 8; ++b)
                out[i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
        }
        if (i < size) {
            uint64_t v = next();
            for (; i < size; ++i, v >>= 8)
                out[i] = static_cast<char>(v & 0xff);
        }
    }
};

bool parse_decimal(const std::string& s, uint64_t* out) {
    if (s.empty() || s.size() > 19) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    *out = v;
    return true;
}

} // namespace

const char* sim_health_name(SimHealth health) {
    switch (health) {
    case SimHealth::Ok: return "ok";
    case SimHealth::Fail: return "fail";
    case SimHealth::Panic: return "panic";
    }
    return "?";
}

SimHealth parse_sim_health(const std::string& name) {
    if (name == "ok") return SimHealth::Ok;
    if (name == "fail") return SimHealth::Fail;
    if (name == "panic") return SimHealth::Panic;
    throw Error(ErrorKind::Config, "health must be ok, fail or panic, got '" + name + "'");
}

std::string format_sim_image_header(const SimImageHeader& header) {
    return kMagic + "version=" + std::to_string(header.version) +
           " health=" + sim_health_name(header.health) + "\n";
}

std::optional<SimImageHeader> parse_sim_image_header(const std::string& start) {
    if (start.compare(0, kMagic.size(), kMagic) != 0) return std::nullopt;
    size_t nl = start.find('\n');
    if (nl == std::string::npos || nl >= kMaxSimHeaderSize) return std::nullopt;
    std::string rest = start.substr(kMagic.size(), nl - kMagic.size());
    const std::string v = "version=", h = " health=";
    if (rest.compare(0, v.size(), v) != 0) return std::nullopt;
    size_t hp = rest.find(h);
    if (hp == std::string::npos) return std::nullopt;
    SimImageHeader header;
    if (!parse_decimal(rest.substr(v.size(), hp - v.size()), &header.version)) return std::nullopt;
    std::string health = rest.substr(hp + h.size());
    if (health == "ok")
        header.health = SimHealth::Ok;
    else if (health == "fail")
        header.health = SimHealth::Fail;
    else if (health == "panic")
        header.health = SimHealth::Panic;
    else
        return std::nullopt;
    return header;
}

std::optional<SimImageHeader> read_sim_image_header(const std::string& path) {
    UniqueFd fd = open_or_throw(path, O_RDONLY);
    std::string start(kMaxSimHeaderSize, '\0');
    start.resize(read_full(fd.get(), start.data(), start.size(), path));
    return parse_sim_image_header(start);
}

std::string make_sim_image(uint64_t version, SimHealth health, uint64_t size, uint64_t seed) {
    std::string header = format_sim_image_header({version, health});
    if (size < header.size())
        throw Error(ErrorKind::Config,
                    "image size " + std::to_string(size) + " is smaller than its header");
    if (size > (uint64_t{4} << 30)) throw Error(ErrorKind::TooLarge, "image size above 4 GiB");
    // The body is generated at absolute offsets and the header written over its start, so the
    // same bytes sit at the same offsets whatever the header's length (version digits, health).
    std::string image(static_cast<size_t>(size), '\0');
    char* body = image.data();
    const size_t body_size = image.size();
    Prng base{seed};
    base.fill(body, body_size);
    // Version v = base + the changes of the last kChangeWindow versions up to v, so v+1 differs
    // from v in a few regions (its own changes, and the oldest ones reverting to the base) and
    // the cost does not grow with the version number.
    constexpr uint64_t kChangeWindow = 64;
    const size_t region = std::max<size_t>(1, std::min<size_t>(4096, body_size / 64));
    uint64_t first = version > kChangeWindow ? version - kChangeWindow + 1 : 2;
    for (uint64_t v = std::max<uint64_t>(first, 2); v <= version; ++v) {
        Prng changes{seed ^ (v * 0xd1b54a32d192ed03ULL)};
        for (int r = 0; r < 4 && body_size > 0; ++r) {
            size_t offset = static_cast<size_t>(changes.next() % body_size);
            size_t len = std::min(region, body_size - offset);
            changes.fill(body + offset, len);
        }
    }
    image.replace(0, header.size(), header);
    return image;
}

} // namespace ota::hal::sim
