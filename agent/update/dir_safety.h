// The folders the agent writes must be its own. A folder another user can write lets that user
// plant a link where the agent (usually root) writes, or swap a file the agent then trusts.
#pragma once
#include "agent/update/config.h"

namespace ota::update {

// Throws Error(Config) naming the folder, its owner and its mode when the state folder (with its
// metadata/ and download/), or the model store, is owned by anyone but the agent's user or root, or
// is writable by group or others; likewise any folder above them (a world-writable one only with
// the sticky bit, like /tmp). Folders that do not exist yet are checked through the nearest one
// that does, where the agent will create them.
void require_private_directories(const AgentConfig& config);

} // namespace ota::update
