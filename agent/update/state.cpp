#include "agent/update/state.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

namespace ota::update {

static Json release_json(const ReleaseRef& r) {
    return Json{{"id", r.id}, {"version", r.version}};
}
static ReleaseRef release_from(const Json& j) {
    return ReleaseRef{j.at("id").get<std::string>(), j.at("version").get<uint64_t>()};
}

static const char* stage_name(PendingStage s) {
    return s == PendingStage::Installing ? "installing" : "switched";
}

Json AgentState::to_json() const {
    Json j = Json::object();
    Json inst = Json::object();
    for (const auto& [name, c] : installed)
        inst[name] =
            Json{{"version", c.version}, {"slot", c.slot}, {"image_sha256", c.image_sha256}};
    j["installed"] = inst;
    if (pending) {
        const auto& p = *pending;
        j["pending"] = Json{{"stage", stage_name(p.stage)},
                            {"component", p.component},
                            {"version", p.version},
                            {"target", p.target_path},
                            {"slot", p.slot},
                            {"from_slot", p.from_slot},
                            {"image_sha256", p.image_sha256},
                            {"boot_id", p.boot_id},
                            {"health_failures", p.health_failures}};
        Json models = Json::array();
        for (const auto& m : p.models)
            models.push_back(Json{{"name", m.name}, {"version", m.version}});
        j["pending"]["models"] = models;
        j["pending"]["release"] = p.release ? release_json(*p.release) : Json(nullptr);
    } else {
        j["pending"] = nullptr;
    }
    Json failed = Json::object();
    for (const auto& [name, versions] : failed_versions)
        failed[name] = versions;
    j["failed_versions"] = failed;
    if (last_result)
        j["last_result"] = Json{{"outcome", last_result->outcome},
                                {"component", last_result->component},
                                {"version", last_result->version},
                                {"message", last_result->message},
                                {"time", last_result->time}};
    j["release"] = release ? release_json(*release) : Json(nullptr);
    return j;
}

AgentState AgentState::from_json(const Json& j) {
    try {
        AgentState s;
        for (auto it = j.at("installed").begin(); it != j.at("installed").end(); ++it)
            s.installed[it.key()] =
                InstalledComponent{it->at("version").get<uint64_t>(), it->value("slot", ""),
                                   it->value("image_sha256", "")};
        if (j.contains("pending") && !j["pending"].is_null()) {
            const Json& p = j["pending"];
            PendingUpdate u;
            std::string stage = p.at("stage").get<std::string>();
            if (stage != "installing" && stage != "switched")
                throw Error(ErrorKind::Malformed, "unknown pending stage " + stage);
            u.stage = stage == "installing" ? PendingStage::Installing : PendingStage::Switched;
            u.component = p.at("component").get<std::string>();
            u.version = p.at("version").get<uint64_t>();
            u.target_path = p.at("target").get<std::string>();
            u.slot = p.at("slot").get<std::string>();
            u.from_slot = p.at("from_slot").get<std::string>();
            u.image_sha256 = p.at("image_sha256").get<std::string>();
            u.boot_id = p.value("boot_id", "");
            u.health_failures = p.value("health_failures", 0);
            if (p.contains("models"))
                for (const auto& m : p["models"])
                    u.models.push_back(PendingModel{m.at("name").get<std::string>(),
                                                    m.at("version").get<uint64_t>()});
            if (p.contains("release") && !p["release"].is_null())
                u.release = release_from(p["release"]);
            s.pending = u;
        }
        if (j.contains("failed_versions"))
            for (auto it = j["failed_versions"].begin(); it != j["failed_versions"].end(); ++it)
                s.failed_versions[it.key()] = it->get<std::set<uint64_t>>();
        if (j.contains("last_result")) {
            const Json& r = j["last_result"];
            s.last_result = LastResult{r.at("outcome").get<std::string>(), r.value("component", ""),
                                       r.value("version", uint64_t{0}), r.value("message", ""),
                                       r.value("time", int64_t{0})};
        }
        if (j.contains("release") && !j["release"].is_null())
            s.release = release_from(j["release"]);
        return s;
    } catch (const Json::exception& e) {
        throw Error(ErrorKind::Malformed, std::string("agent state is malformed: ") + e.what());
    }
}

namespace {

constexpr uint64_t kMaxStateSize = 1 << 20;

// agent-state.json with a copy beside it: a corrupt file falls back to the copy instead of blocking
// every command (docs/robustness.md says how old the copy can be and what that implies).
DurableFile state_file(const std::string& state_dir) {
    const std::string path = state_dir + "/agent-state.json";
    return DurableFile(path, kMaxStateSize, [](const std::string& bytes) {
        AgentState::from_json(parse_json(bytes, "the agent state"));
    });
}

} // namespace

AgentState load_state(const std::string& state_dir) {
    DurableFile file = state_file(state_dir);
    auto contents = file.load();
    if (!contents) return AgentState{};
    return AgentState::from_json(parse_json(contents->bytes, file.path()));
}

void save_state(const std::string& state_dir, const AgentState& state) {
    make_directories(state_dir);
    state_file(state_dir).store(state.to_json().dump(1) + "\n");
}

} // namespace ota::update
