// libFuzzer target: the control socket's request handling (answer_request), with a handler that
// answers like the daemon's (and echoes request fields back). Whatever the line holds, the answer
// is exactly one line of valid JSON in UTF-8, an object with a boolean "ok", and a peer without
// command rights never reaches the handler with a command.
#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/service/control_socket.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const bool may_command = data[0] & 1;
    const std::string line(reinterpret_cast<const char*>(data) + 1, size - 1);
    bool handled_command = false;
    auto handler = [&](const ota::Json& req) -> ota::Json {
        const std::string cmd = req["cmd"].get<std::string>();
        if (!ota::service::is_read_only_command(cmd)) handled_command = true;
        if (cmd == "defer") {
            if (!req.contains("seconds") || !req["seconds"].is_number_unsigned())
                throw ota::Error(ota::ErrorKind::Malformed, "defer needs \"seconds\"");
            return ota::Json{{"ok", true}, {"deferred_until", req["seconds"]}};
        }
        if (cmd == "echo") return req["cmd"]; // not an object: the server wraps it
        if (cmd == "status") return ota::Json{{"ok", true}, {"phase", "idle"}, {"request", req}};
        throw ota::Error(ota::ErrorKind::Malformed, "unknown cmd \"" + cmd + "\"");
    };
    bool subscribe = false;
    const std::string answer = ota::service::answer_request(line, may_command, handler, &subscribe);
    if (!may_command && handled_command) __builtin_trap();
    if (answer.find('\n') != std::string::npos) __builtin_trap();
    if (ota::invalid_utf8_offset(answer) != std::string::npos) __builtin_trap();
    ota::Json parsed = ota::parse_json(answer, "answer"); // throws (and so crashes) if invalid
    if (!parsed.is_object() || !parsed.contains("ok") || !parsed["ok"].is_boolean())
        __builtin_trap();
    return 0;
}
