#include "agent/net/libcurl.h"

#include "agent/common/error.h"

#include <dlfcn.h>
#include <mutex>
#include <string>

#ifndef OTA_LIBCURL_SONAME
#define OTA_LIBCURL_SONAME "libcurl.so.4"
#endif

namespace ota::net {

namespace {

template <typename Fn> void resolve(void* handle, const char* name, Fn& fn) {
    void* symbol = dlsym(handle, name);
    if (!symbol)
        throw Error(ErrorKind::Network, std::string(OTA_LIBCURL_SONAME " has no function ") + name);
    fn = reinterpret_cast<Fn>(symbol);
}

LibCurl load() {
    // Never closed: libcurl keeps global state (TLS library, DNS resolver threads) for the process.
    void* handle = dlopen(OTA_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        throw Error(ErrorKind::Network,
                    std::string("cannot load " OTA_LIBCURL_SONAME ": ") + dlerror());
    LibCurl api{};
    resolve(handle, "curl_easy_init", api.easy_init);
    resolve(handle, "curl_easy_setopt", api.easy_setopt);
    resolve(handle, "curl_easy_perform", api.easy_perform);
    resolve(handle, "curl_easy_getinfo", api.easy_getinfo);
    resolve(handle, "curl_easy_cleanup", api.easy_cleanup);
    resolve(handle, "curl_easy_reset", api.easy_reset);
    resolve(handle, "curl_easy_strerror", api.easy_strerror);
    resolve(handle, "curl_slist_append", api.slist_append);
    resolve(handle, "curl_slist_free_all", api.slist_free_all);
    decltype(&::curl_global_init) global_init = nullptr;
    resolve(handle, "curl_global_init", global_init);
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        throw Error(ErrorKind::Network, "curl_global_init failed");
    return api;
}

} // namespace

const LibCurl& libcurl() {
    static std::mutex mutex;
    static bool loaded = false;
    static LibCurl api;
    std::lock_guard<std::mutex> lock(mutex);
    if (!loaded) {
        api = load(); // a failure is retried by the next call
        loaded = true;
    }
    return api;
}

} // namespace ota::net
