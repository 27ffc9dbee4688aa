// Runs a few independent pieces of one op's encoding (its Diff variants, its zstd candidates)
// on threads of their own when the planner has cores to spare: a pair with fewer ops than cores
// would otherwise encode its largest op on one core while the others wait.
#pragma once
#include <cstddef>
#include <functional>
#include <future>
#include <vector>

namespace ota::delta {

// Calls work(0 .. count-1), on `count` threads at once when `parallel`, else in order on this
// thread; returns when all are done (an exception from any is rethrown).
inline void each_index(size_t count, bool parallel, const std::function<void(size_t)>& work) {
    if (!parallel || count < 2) {
        for (size_t i = 0; i < count; ++i)
            work(i);
        return;
    }
    std::vector<std::future<void>> others;
    for (size_t i = 1; i < count; ++i)
        others.push_back(std::async(std::launch::async, [&work, i] { work(i); }));
    work(0);
    for (auto& f : others)
        f.get();
}

} // namespace ota::delta
