#include "agent/update/dir_safety.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ota::update {

namespace {

std::string user_name(uid_t uid) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(4096);
    std::string name = "uid " + std::to_string(uid);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found)
        name = std::string(found->pw_name) + " (" + name + ")";
    return name;
}

std::string mode_string(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// What is wrong with one existing folder, or "" when it is safe. `last`: the folder the agent
// writes into (a sticky world-writable folder is acceptable only above it).
std::string folder_problem(const std::string& dir, bool last) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return "cannot be inspected: " + std::string(std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) return "is not a folder";
    const uid_t me = ::geteuid();
    const std::string facts =
        " (owner " + user_name(st.st_uid) + ", mode " + mode_string(st.st_mode) + ")";
    if (st.st_uid != me && st.st_uid != 0)
        return "is owned by another user" + facts + "; the agent runs as " + user_name(me);
    const bool sticky_above = !last && (st.st_mode & S_ISVTX);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_above)
        return std::string("is writable by ") + ((st.st_mode & S_IWOTH) ? "others" : "its group") +
               facts;
    return "";
}

// Checks `dir` (resolved) and every folder above it; when `dir` does not exist yet, the nearest
// existing folder above it is the one the agent will create it in.
void require_private(const std::string& key, const std::string& dir) {
    std::string existing = dir;
    while (!existing.empty() && ::access(existing.c_str(), F_OK) != 0 && errno == ENOENT &&
           existing != "/" && existing != ".")
        existing = parent_directory(existing);
    char resolved[PATH_MAX];
    if (!::realpath(existing.c_str(), resolved))
        throw Error(ErrorKind::Config, "configuration: \"" + key + "\" " + dir +
                                           " cannot be resolved: " + std::strerror(errno));
    std::string path = resolved;
    bool last = existing == dir;
    for (;;) {
        const std::string problem = folder_problem(path, last);
        if (!problem.empty())
            throw Error(ErrorKind::Config,
                        "configuration: \"" + key + "\" " + dir +
                            (last ? " " : ": the folder " + path + " ") + problem +
                            ". Another user could plant files or links the agent would write "
                            "through or trust: make it owned by the agent's user (or root) and "
                            "not writable by group or others (chmod go-w)");
        if (path == "/") break;
        path = parent_directory(path);
        last = false;
    }
}

} // namespace

void require_private_directories(const AgentConfig& config) {
    require_private("state_dir", config.state_dir);
    require_private("state_dir", config.metadata_dir());
    require_private("state_dir", join_path(config.state_dir, "download"));
    if (!config.models.store.empty()) require_private("models.store", config.models.store);
}

} // namespace ota::update
