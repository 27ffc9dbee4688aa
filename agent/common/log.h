// Minimal leveled logging to stderr. Never log key material, tokens or full URLs with credentials.
#pragma once
#include <sstream>
#include <string>

namespace ota {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Quiet = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);

} // namespace ota

#define OTA_LOG(level, expr)                                                                       \
    do {                                                                                           \
        if (static_cast<int>(level) >= static_cast<int>(::ota::log_level())) {                     \
            std::ostringstream ota_log_stream_;                                                    \
            ota_log_stream_ << expr;                                                               \
            ::ota::log_message(level, ota_log_stream_.str());                                      \
        }                                                                                          \
    } while (0)
#define LOG_DEBUG(expr) OTA_LOG(::ota::LogLevel::Debug, expr)
#define LOG_INFO(expr) OTA_LOG(::ota::LogLevel::Info, expr)
#define LOG_WARN(expr) OTA_LOG(::ota::LogLevel::Warn, expr)
#define LOG_ERROR(expr) OTA_LOG(::ota::LogLevel::Error, expr)
