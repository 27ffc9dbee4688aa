#include "hal/boot_id.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

namespace ota::hal {

std::string FileBootId::current() {
    std::string id = read_file(path_, 256);
    while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
        id.pop_back();
    if (id.empty()) throw Error(ErrorKind::State, "boot id file " + path_ + " is empty");
    return id;
}

} // namespace ota::hal
