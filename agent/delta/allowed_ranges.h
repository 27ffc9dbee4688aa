// An op's allowed source extents, sorted and with touching ones merged: every read of the source
// slot an op makes is checked against them first.
#pragma once
#include "agent/bundle/format.h"

#include <algorithm>
#include <vector>

namespace ota::delta {

class AllowedRanges {
public:
    // Extents whose end overflows are dropped (they allow nothing).
    explicit AllowedRanges(const std::vector<bundle::Extent>& extents) {
        for (const auto& e : extents)
            if (e.length != 0 && e.offset + e.length >= e.offset) ranges_.push_back(e);
        std::sort(ranges_.begin(), ranges_.end(),
                  [](const auto& a, const auto& b) { return a.offset < b.offset; });
        std::vector<bundle::Extent> merged;
        for (const auto& e : ranges_) {
            if (!merged.empty() && e.offset <= merged.back().offset + merged.back().length) {
                const uint64_t end =
                    std::max(merged.back().offset + merged.back().length, e.offset + e.length);
                merged.back().length = end - merged.back().offset;
            } else {
                merged.push_back(e);
            }
        }
        ranges_.swap(merged);
    }

    bool contains(uint64_t offset, uint64_t length) const {
        auto it = std::upper_bound(ranges_.begin(), ranges_.end(), offset,
                                   [](uint64_t o, const auto& e) { return o < e.offset; });
        if (it == ranges_.begin()) return false;
        --it;
        return offset - it->offset <= it->length && length <= it->length - (offset - it->offset);
    }

private:
    std::vector<bundle::Extent> ranges_;
};

} // namespace ota::delta
