// POSTs the vehicle version manifest to the director's endpoint with the agent's transport
// settings (TLS, client certificate), through the service's post_json.
#pragma once
#include "agent/net/curl_fetcher.h"
#include "agent/uptane/manifest_sender.h"

#include <string>

namespace ota::uptane {

class HttpManifestSender : public ManifestSender {
public:
    HttpManifestSender(std::string url, net::TransportOptions transport = {});
    void send(const Json& signed_manifest) override;

private:
    std::string url_;
    net::TransportOptions transport_;
};

} // namespace ota::uptane
