#include "agent/uptane/http_manifest_sender.h"

#include "agent/service/report.h"

namespace ota::uptane {

HttpManifestSender::HttpManifestSender(std::string url, net::TransportOptions transport)
    : url_(std::move(url)), transport_(std::move(transport)) {}

void HttpManifestSender::send(const Json& signed_manifest) {
    service::post_json(url_, signed_manifest.dump(), transport_);
}

} // namespace ota::uptane
