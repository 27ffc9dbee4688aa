// Where the primary's vehicle version manifest goes (Uptane Standard, "Construct and send vehicle
// version manifest"). An interface, so the primary's logic does not depend on the transport:
// HttpManifestSender POSTs it to the director; tests may collect it in memory.
#pragma once
#include "agent/common/canonical_json.h"

#include <string>

namespace ota::uptane {

class ManifestSender {
public:
    virtual ~ManifestSender() = default;
    // Throws ota::Error when the director did not take it.
    virtual void send(const Json& signed_manifest) = 0;
};

} // namespace ota::uptane
