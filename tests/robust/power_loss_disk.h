// A folder on a disk that can lose power: served by ota-test-lossfs (tests/robust/lossfs.cpp), so
// programs use it as usual, while only what they synced (file data by fsync, names by the
// folder's fsync) survives cut().
#pragma once
#include <cstdint>
#include <string>
#include <sys/types.h>

namespace ota::test {

class PowerLossDisk {
public:
    // Moves the contents of `dir` (created if missing) to dir + ".disk", the durable image, and
    // mounts the file system on `dir`.
    explicit PowerLossDisk(std::string dir);
    ~PowerLossDisk(); // cut (nothing more is kept) and unmount
    PowerLossDisk(const PowerLossDisk&) = delete;
    PowerLossDisk& operator=(const PowerLossDisk&) = delete;

    enum class Cut {
        Drop, // every change not yet durable is lost
        Torn, // each unsynced block, size, mode and folder survives or not (from `seed`)
    };
    // Power off: what was not synced is lost as `how` says; the folder is unmounted. Stop every
    // program using it first (a real power cut stops them too).
    void cut(Cut how, uint64_t seed = 0);
    // Power on: the folder is served again from what survived.
    void power_on();
    bool mounted() const { return pid_ > 0; }
    const std::string& backing() const { return backing_; }

private:
    std::string log() const; // what the file system wrote to stderr

    std::string dir_, backing_, log_;
    pid_t pid_ = -1;
    int to_fs_ = -1, from_fs_ = -1; // the daemon's stdin and stdout
};

} // namespace ota::test
