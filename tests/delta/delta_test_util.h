// Helpers for the delta tests: images as files on disk read through the real file BlockDevice,
// with a wrapper that records every read so tests can check the applier stays inside its extents.
#pragma once
#include "agent/bundle/format.h"
#include "agent/delta/diff_encode.h"
#include "hal/block_device.h"
#include "support/test_support.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ota::test {

class RecordingDevice : public hal::BlockDevice {
public:
    explicit RecordingDevice(std::unique_ptr<hal::BlockDevice> inner) : inner_(std::move(inner)) {}
    uint64_t size() const override { return inner_->size(); }
    void read(uint64_t offset, void* buf, size_t len) override {
        reads.emplace_back(offset, len);
        inner_->read(offset, buf, len);
    }
    void write(uint64_t offset, const void* buf, size_t len) override {
        inner_->write(offset, buf, len);
    }
    void sync() override { inner_->sync(); }
    const std::string& path() const override { return inner_->path(); }

    // True when every recorded read lies inside one of the extents (touching extents joined).
    bool reads_within(const std::vector<bundle::Extent>& extents) const {
        for (const auto& r : reads) {
            uint64_t pos = r.first, end = r.first + r.second;
            bool progress = true;
            while (pos < end && progress) {
                progress = false;
                for (const auto& e : extents)
                    if (e.offset <= pos && pos < e.offset + e.length) {
                        pos = e.offset + e.length;
                        progress = true;
                    }
            }
            if (pos < end) return false;
        }
        return true;
    }

    std::vector<std::pair<uint64_t, size_t>> reads;

private:
    std::unique_ptr<hal::BlockDevice> inner_;
};

// Writes `contents` to dir/name and opens it read-only as a recording device.
inline std::unique_ptr<RecordingDevice> image_device(const TempDir& dir, const std::string& name,
                                                     const std::string& contents) {
    write_all_file(dir.file(name), contents);
    return std::make_unique<RecordingDevice>(hal::open_block_device(dir.file(name), false));
}

// Pairs of (old, new) images used by several tests.
struct ImagePair {
    std::string name;
    std::string old_image;
    std::string new_image;
};

inline std::vector<ImagePair> synthetic_pairs() {
    std::vector<ImagePair> pairs;
    std::string base = pseudo_random_bytes(200000, 1);
    // Text-like data with repeats, so matches are approximate rather than exact.
    std::string text;
    for (int i = 0; i < 6000; ++i)
        text += "line " + std::to_string(i * 7 % 1000) + " value\n";

    pairs.push_back({"empty to empty", "", ""});
    pairs.push_back({"empty old", "", base.substr(0, 5000)});
    pairs.push_back({"empty new", base.substr(0, 5000), ""});
    pairs.push_back({"tiny", "a", "b"});
    pairs.push_back({"tiny grown", "abc", "abcdefgh"});
    pairs.push_back({"identical", base, base});
    pairs.push_back({"grown", base.substr(0, 150000), base});
    pairs.push_back({"shrunk", base, base.substr(0, 120000)});
    pairs.push_back(
        {"completely different", base.substr(0, 50000), pseudo_random_bytes(60000, 99)});
    {
        std::string n = base;
        n.insert(30000, pseudo_random_bytes(777, 5)); // insertion shifts the rest
        n.erase(120000, 3000);                        // deletion shifts it back
        for (size_t i = 500; i < n.size(); i += 4096)
            n[i] = static_cast<char>(n[i] ^ 0x5a);
        pairs.push_back({"insertions, deletions and sparse edits", base, n});
    }
    {
        std::string n = text;
        for (size_t i = 0; i < n.size(); i += 97)
            n[i] = static_cast<char>(n[i] + 1);
        n.insert(n.size() / 2, text.substr(1000, 5000)); // a moved block
        pairs.push_back({"text with byte-wise changes", text, n});
    }
    {
        std::string o = base, n = base;
        o.replace(40000, 30000, std::string(30000, '\0'));
        n.replace(60000, 50000, std::string(50000, '\0'));
        pairs.push_back({"zero runs", o, n});
    }
    return pairs;
}

inline void put_word(std::string& s, size_t at, uint32_t w) {
    for (int i = 0; i < 4; ++i)
        s[at + i] = static_cast<char>(w >> (8 * i));
}

// ARM64-like code, linked: random words (none looking like BL or ADRP) with a BL every 8 words to
// one of 64 functions spread over the image and an ADRP every 16 words to one of 64 pages. `gap`
// bytes of other code are inserted before word `gap_at`, which moves every later word and target,
// as a new build does.
inline std::string fake_arm64_code(size_t words, uint64_t seed, size_t gap_at = 0, size_t gap = 0) {
    std::string body = pseudo_random_bytes(words * 4, seed);
    auto addr = [&](size_t word) { return word * 4 + (gap > 0 && word >= gap_at ? gap : 0); };
    std::string code;
    for (size_t i = 0; i < words; ++i) {
        if (gap > 0 && i == gap_at) code += pseudo_random_bytes(gap, seed + 1);
        std::string w = body.substr(i * 4, 4);
        w[3] = static_cast<char>(w[3] & 0x7f); // other instructions: no BL or ADRP look-alikes
        int64_t at = static_cast<int64_t>(addr(i));
        if (i % 8 == 3) {
            int64_t target = static_cast<int64_t>(addr((i * 7919) % 64 * (words / 64)));
            uint32_t imm = static_cast<uint32_t>((target - at) / 4);
            put_word(w, 0, 0x94000000u | (imm & 0x03FFFFFFu));
        } else if (i % 64 == 63) {
            put_word(w, 0, 0xd65f03c0u); // RET: what tells code from data (looks_like_arm64_code)
        } else if (i % 16 == 5) {
            int64_t page = static_cast<int64_t>(addr((i * 31) % 64 * (words / 64)) >> 12);
            uint32_t imm = static_cast<uint32_t>(page - (at >> 12)) & 0x1FFFFF;
            put_word(w, 0, 0x90000000u | ((imm & 3) << 29) | ((imm >> 2) << 5) | 3);
        }
        code += w;
    }
    return code;
}

// Whether a Diff blob adds to the ARM64-filtered source (its magic alone does not say: the flagged
// layout carries the filter as a flag).
inline bool is_filtered(const std::string& blob) {
    if (blob.compare(0, 8, "OTADIFF3") == 0) return false; // a deflate blob: no filter flag
    return delta::unpack_diff(blob, {}).arm64_filter;
}

} // namespace ota::test
