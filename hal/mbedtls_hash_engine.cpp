// The portable engine: mbedTLS through its PSA API, the same code ota::Hasher uses by default.
#include "hal/hash_engine.h"

namespace ota::hal {

namespace {

class MbedtlsHashEngine : public HashEngine {
public:
    std::string name() const override { return "mbedtls"; }
    std::unique_ptr<HashStream> start(HashAlgorithm algorithm) override {
        return mbedtls_hash_stream(algorithm);
    }
};

} // namespace

EngineProbe open_mbedtls_engine() {
    return {std::make_unique<MbedtlsHashEngine>(), ""};
}

} // namespace ota::hal
