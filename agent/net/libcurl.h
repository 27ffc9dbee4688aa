// libcurl, loaded at the first network transfer instead of at process start.
//
// Debian's libcurl pulls in some thirty libraries (OpenSSL, GnuTLS, Kerberos, LDAP, libssh2, ...)
// whose pages would count in the resident memory of every ota-agent command, including the offline
// ones (`apply`, `status`, `mark-good`) that never open a connection. Loading it on demand keeps
// those commands small; the functions below are the whole part of libcurl the agent uses.
#pragma once
#include <curl/curl.h>

namespace ota::net {

struct LibCurl {
    decltype(&::curl_easy_init) easy_init;
    decltype(&::curl_easy_setopt) easy_setopt;
    decltype(&::curl_easy_perform) easy_perform;
    decltype(&::curl_easy_getinfo) easy_getinfo;
    decltype(&::curl_easy_cleanup) easy_cleanup;
    decltype(&::curl_easy_reset) easy_reset;
    decltype(&::curl_easy_strerror) easy_strerror;
    decltype(&::curl_slist_append) slist_append;
    decltype(&::curl_slist_free_all) slist_free_all;
};

// Loads libcurl and runs curl_global_init once (thread-safe). Throws Error(Network) naming the
// library when it cannot be loaded or lacks one of the functions above.
const LibCurl& libcurl();

} // namespace ota::net
