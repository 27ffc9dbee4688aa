// The files the transport settings name (CA bundle, client certificate and key, pinned public
// key), checked when the configuration is validated: a missing or unreadable file would otherwise
// only show up as a TLS failure at the first download.
#pragma once
#include "agent/net/curl_fetcher.h"

namespace ota::net {

// Throws Error(Config) naming the setting ("transport.ca_file", ...) when a named file is missing,
// not a regular file or not readable.
void check_transport_files(const TransportOptions& options);

// Throws Error(Config) naming `key` unless `path` is a regular file this process can read. Opens
// it without blocking, so a FIFO in its place cannot stall the check.
void require_readable_file(const std::string& key, const std::string& path);

} // namespace ota::net
