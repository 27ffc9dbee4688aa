// libFuzzer target: TUF metadata parsing and verification. The input is offered as each role's
// metadata to a trusted set built on a real root, so parsing, canonicalization, signature checks
// and version/expiry logic all see hostile bytes.
#include "agent/common/error.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/trusted_set.h"
#include "manifests/publisher/repository.h"

#include <cstdint>
#include <memory>
#include <string>

namespace {
std::string g_root;
// Built once: verifying the root's own signature on every input would dominate the run time.
std::unique_ptr<ota::tuf::TrustedSet> g_trusted;

std::string make_root() {
    using namespace ota;
    SigningKey key = SigningKey::generate(kSchemeEcdsaP256);
    Json keys{{publish::key_id(key), publish::key_object(key)}};
    Json roles = Json::object();
    for (const char* r : {"root", "timestamp", "snapshot", "targets"})
        roles[r] = Json{{"keyids", Json::array({publish::key_id(key)})}, {"threshold", 1}};
    Json body{{"_type", "root"},
              {"spec_version", "1.0.31"},
              {"version", 1},
              {"expires", "2099-01-01T00:00:00Z"},
              {"consistent_snapshot", true},
              {"keys", keys},
              {"roles", roles}};
    return publish::to_bytes(publish::sign_envelope(body, {&key}));
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_root = make_root();
    g_trusted = std::make_unique<ota::tuf::TrustedSet>(g_root, 1700000000);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace ota;
    const std::string input(reinterpret_cast<const char*>(data), size);
    for (const char* type : {"root", "timestamp", "snapshot", "targets"}) {
        try {
            tuf::Envelope env = tuf::parse_envelope(input, type);
            if (env.type == "root") tuf::parse_root(env);
            if (env.type == "timestamp") tuf::parse_timestamp(env);
            if (env.type == "snapshot") tuf::parse_snapshot(env);
            if (env.type == "targets") {
                tuf::TargetsMeta t = tuf::parse_targets(env);
                if (t.delegations)
                    for (const auto& r : t.delegations->roles)
                        r.matches("a/b/c.bin");
            }
        } catch (const Error&) {
        }
    }
    try {
        tuf::TrustedSet set = *g_trusted;
        try {
            set.update_root(input);
        } catch (const Error&) {
        }
        set.update_timestamp(input);
    } catch (const Error&) {
    }
    return 0;
}
