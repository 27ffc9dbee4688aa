// Runs a few independent pieces of one op's encoding (its Diff variants, its zstd candidates)
// on threads of their own when the planner has cores to spare: a pair with fewer ops than cores
// would otherwise encode its largest op on one core while the others wait.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <future>
#include <vector>

namespace ota::delta {

// Calls work(0 .. count-1) with at most `threads` of them running at once (this thread is one of
// them; 0 or 1: all in order on this thread); returns when all are done (an exception from any
// is rethrown once all have ended).
inline void each_index(size_t count, unsigned threads, const std::function<void(size_t)>& work) {
    const size_t wave = std::max<size_t>(1, threads);
    for (size_t first = 0; first < count; first += wave) {
        const size_t last = std::min(count, first + wave);
        std::vector<std::future<void>> others;
        for (size_t i = first + 1; i < last; ++i)
            others.push_back(std::async(std::launch::async, [&work, i] { work(i); }));
        std::exception_ptr error;
        try {
            work(first);
        } catch (...) {
            error = std::current_exception();
        }
        for (auto& f : others) {
            try {
                f.get();
            } catch (...) {
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
    }
}

} // namespace ota::delta
