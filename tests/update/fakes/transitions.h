// Every persisted transition of the engine (each state save, each boot-control write, each reboot
// request) passes through the fakes, which report it here. The model-based test counts them in an
// undisturbed run, then stops the engine at each one in turn.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace ota::test::fakes {

// Thrown by a fake to stop the engine as a crash or a power cut does. It derives from nothing the
// agent catches, so, as in a real crash, none of the agent's error handlers runs.
struct Crash {
    std::string at;
};

class Transitions {
public:
    enum class Stop {
        None,
        CrashBefore, // the process dies just before the transition: it never happened
        CrashAfter,  // the process dies right after it
        CleanStop,   // right after it, the agent is asked to stop (SIGTERM) and finishes cleanly
    };

    // Stops at transition `index` (0-based, counted over the whole run).
    void arm(size_t index, Stop how) {
        armed_ = index;
        armed_name_.clear();
        how_ = how;
    }
    // Stops at the first transition named `name` from now on.
    void arm_at(const std::string& name, Stop how) {
        armed_name_ = name;
        how_ = how;
    }
    void disarm() { how_ = Stop::None; }
    // What CleanStop does: raise the agent's stop flag.
    void on_clean_stop(std::function<void()> f) { clean_stop_ = std::move(f); }

    // Called by a fake before it persists `what`, and after.
    void before(const std::string& what) {
        if (how_ == Stop::CrashBefore && hit(what)) {
            how_ = Stop::None;
            throw Crash{what};
        }
    }
    void after(const std::string& what) {
        const bool here = hit(what);
        names_.push_back(what);
        if (how_ == Stop::None || how_ == Stop::CrashBefore || !here) return;
        const Stop how = how_;
        how_ = Stop::None;
        if (how == Stop::CrashAfter) throw Crash{what};
        if (how == Stop::CleanStop && clean_stop_) clean_stop_();
    }

    size_t count() const { return names_.size(); }
    const std::vector<std::string>& names() const { return names_; }

private:
    bool hit(const std::string& what) const {
        return armed_name_.empty() ? names_.size() == armed_ : what == armed_name_;
    }
    std::vector<std::string> names_;
    size_t armed_ = 0;
    std::string armed_name_;
    Stop how_ = Stop::None;
    std::function<void()> clean_stop_;
};

} // namespace ota::test::fakes
