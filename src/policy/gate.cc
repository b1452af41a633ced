#include "policy/gate.h"

#include <ctime>

#include "core/log.h"

namespace nightshift::policy {

Principal PrincipalOf(std::string_view described) {
  Principal p;
  const size_t colon = described.find(':');
  p.kind = std::string(described.substr(0, colon));
  if (colon != std::string_view::npos) p.name = std::string(described.substr(colon + 1));
  return p;
}

Principal RunPrincipal(const store::Run& run) {
  Principal p{.kind = "agent", .name = "adhoc"};
  const Principal asked = PrincipalOf(run.requested_by);
  if ((asked.kind == "trigger" || asked.kind == "schedule") && !asked.name.empty()) {
    p.name = asked.name;
  }
  p.attributes["run"] = run.id;
  p.attributes["requested_by"] = run.requested_by;
  p.attributes["kind"] = std::string(store::RunKindName(run.kind));
  return p;
}

void AddTimeFacts(Attributes& context, int64_t now_ms) {
  const time_t seconds = static_cast<time_t>(now_ms / 1000);
  struct tm t = {};
  gmtime_r(&seconds, &t);
  static constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  context["hour"] = t.tm_hour;
  context["weekday"] = kDays[t.tm_wday % 7];
}

namespace {

// What a record names as the resource: "acme/api", "acme/api:src/x.cc", "acme/api@main",
// "example.com:443".
std::string ResourceText(const Attributes& resource) {
  auto text = [&](std::string_view key) -> std::string {
    const auto it = resource.find(key);
    if (it == resource.end()) return "";
    if (const auto* s = std::get_if<std::string>(&it->second.v)) return *s;
    if (const auto* i = std::get_if<int64_t>(&it->second.v)) return std::to_string(*i);
    return "";
  };
  std::string out = text("repository");
  if (auto path = text("path"); !path.empty()) out += StrCat(":", path);
  if (auto branch = text("branch"); !branch.empty()) out += StrCat("@", branch);
  if (auto host = text("host"); !host.empty()) {
    out += StrCat(out.empty() ? "" : " ", host, text("port").empty() ? "" : ":", text("port"));
  }
  if (auto secret = text("secret"); !secret.empty()) out += StrCat(out.empty() ? "" : " ", secret);
  return out;
}

Json Bounded(const Json& value) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    return s.size() <= 512 ? value : Json(s.substr(0, 512) + "…");
  }
  if (value.is_array() || value.is_object()) {
    Json out = value.is_array() ? Json::array() : Json::object();
    size_t n = 0;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (++n > 64) break;
      if (value.is_array()) {
        out.push_back(Bounded(*it));
      } else {
        out[it.key()] = Bounded(*it);
      }
    }
    return out;
  }
  return value;
}

}  // namespace

std::shared_ptr<const PolicySet> Gate::set() const {
  std::lock_guard lock(mu_);
  return set_;
}

Decision Gate::Decide(const Request& request, int64_t run_id) const {
  const Decision decision = set()->Decide(request);
  if (audit_ != nullptr && (!decision.allowed || decision.audit)) {
    Json detail = DecisionToJson(decision);
    detail["context"] = Bounded(RequestToJson(request)["context"]);
    auto appended = audit_->Append(AuditEntry{.actor = request.principal.Describe(),
                                              .action = request.action,
                                              .resource = ResourceText(request.resource),
                                              .decision = decision.allowed ? "allow" : "deny",
                                              .run_id = run_id,
                                              .detail = std::move(detail)});
    if (!appended.ok()) {
      log::Get("policy")->error("cannot record the decision on {} by {}: {}", request.action,
                                request.principal.Describe(), appended.status().message());
    }
  }
  return decision;
}

Decision Gate::DecideForRun(const store::Run& run, std::string action, Attributes resource,
                            Attributes context) const {
  Request request{.principal = RunPrincipal(run),
                  .action = std::move(action),
                  .resource = std::move(resource),
                  .context = std::move(context)};
  request.resource.emplace("repository", run.repo);
  if (!run.ref.empty()) request.resource.emplace("ref", run.ref);
  return Decide(request, run.id);
}

}  // namespace nightshift::policy
