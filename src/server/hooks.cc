#include "server/hooks.h"

#include <httplib.h>

#include <charconv>
#include <chrono>

#include "api/resources.h"
#include "core/digest.h"
#include "core/log.h"
#include "server/api.h"
#include "triggers/github.h"
#include "triggers/gitlab.h"
#include "triggers/slack.h"

namespace nightshift::server {
namespace {

// Slack gives a slash command 3 s to answer; the run's link is in the answer when the event
// was processed by then.
constexpr int64_t kSlackWaitMs = 2'000;

void Reject(httplib::Response& res, const httplib::Request& req, std::string_view source,
            const Status& st) {
  // Nothing is stored for a request that is not authentic; the line is for whoever audits.
  log::Get("hooks")->warn("rejected {} webhook from {}: {}", source, req.remote_addr, st.message());
  SendError(res, st);
}

void NotConfigured(httplib::Response& res, std::string_view hook) {
  SendError(res, NotFoundError(StrCat("the ", hook, " webhook is not configured on this server")));
}

// Stores a verified delivery and answers: 202 with its id, 200 for a redelivery.
void StoreDelivery(TriggerService& triggers, httplib::Response& res, store::IncomingEvent event) {
  auto stored = triggers.Accept(event);
  if (stored.ok()) {
    SendJson(res, 202, Json{{"event_id", stored->id}, {"state", "pending"}});
  } else if (stored.status().code() == StatusCode::kAlreadyExists) {
    SendJson(res, 200, Json{{"duplicate", true}, {"message", stored.status().message()}});
  } else {
    SendError(res, stored.status());
  }
}

void StoreIgnored(TriggerService& triggers, httplib::Response& res, store::IncomingEvent event,
                  const std::string& reason) {
  auto stored = triggers.AcceptIgnored(event, reason);
  if (!stored.ok()) return SendError(res, stored.status());
  SendJson(res, 202, Json{{"event_id", stored->id}, {"ignored", reason}});
}

// A verified delivery of a forge: parsed now so that a malformed body is refused (400) and an
// unknown type recorded as ignored, then stored for the worker.
void Receive(TriggerService& triggers, httplib::Response& res, store::IncomingEvent event,
             const StatusOr<std::optional<triggers::TriggerEvent>>& parsed) {
  if (!parsed.ok()) {
    if (parsed.status().code() == StatusCode::kNotFound) {
      return StoreIgnored(triggers, res, std::move(event), parsed.status().message());
    }
    return SendError(res, InvalidArgumentError(parsed.status().message()));
  }
  if (!*parsed) {
    return StoreIgnored(triggers, res, std::move(event), "its action starts nothing");
  }
  StoreDelivery(triggers, res, std::move(event));
}

std::string SlackAnswer(const store::IncomingEvent& event, const httplib::Request& req) {
  if (event.state != store::IncomingState::kDone) {
    return StrCat("Received (event ", event.id, "); it is being processed.");
  }
  Json outcome = Json::parse(event.outcome, nullptr, false);
  std::string text;
  if (outcome.is_array()) {
    for (const Json& entry : outcome) {
      const std::string result = entry.value("result", "");
      const std::string reason = entry.value("reason", "");
      std::string line;
      if (entry.contains("run_id")) {
        const int64_t run = entry["run_id"].get<int64_t>();
        line = StrCat(result == "started" ? "Started run " : StrCat(result, ": run "), run,
                      ": http://", req.get_header_value("Host"), "/api/v1/runs/", run);
      } else {
        line = StrCat(result, reason.empty() ? "" : StrCat(": ", reason));
      }
      if (entry.contains("agent"))
        line += StrCat(" (agent ", entry["agent"].get<std::string>(), ")");
      text += StrCat(text.empty() ? "" : "\n", line);
    }
  }
  return text.empty() ? StrCat("Event ", event.id, " processed.") : text;
}

api::AgentEntry AgentEntryOf(const triggers::AgentSpec& agent, const std::string& commit) {
  api::AgentEntry entry{
      .name = agent.name,
      .origin = agent.owner_repository.empty() ? "config" : "repository",
      .repository = agent.owner_repository,
      .commit = commit,
      .repositories = agent.repositories,
      .runs = agent.task.empty() ? "recipe" : "task",
      .model = agent.task.empty() ? "" : (agent.model.empty() ? "default" : agent.model),
      .overlap = std::string(triggers::OverlapName(agent.overlap)),
      .runs_per_hour = agent.runs_per_hour,
      .max_concurrent = agent.max_concurrent};
  for (const triggers::TriggerSpec& trigger : agent.triggers) {
    entry.triggers.push_back(trigger.Describe());
  }
  return entry;
}

// The agents in force: the config's (unless `only_files`), then those of `files`.
api::AgentList AgentListOf(const triggers::TriggersConfig& config,
                           const triggers::RepositoryAgentsMap& files, bool only_files = false) {
  api::AgentList list;
  if (!only_files) {
    for (const triggers::AgentSpec& agent : config.agents) {
      list.agents.push_back(AgentEntryOf(agent, ""));
    }
  }
  for (const auto& [repository, file] : files) {
    for (const triggers::AgentSpec& agent : file.agents) {
      list.agents.push_back(AgentEntryOf(agent, file.commit));
    }
    list.files.push_back({.repository = repository,
                          .commit = file.commit,
                          .failed_commit = file.failed_commit,
                          .errors = file.errors});
  }
  return list;
}

StatusOr<int64_t> ParseNumber(std::string_view text, std::string_view what) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) {
    return InvalidArgumentError(StrCat("invalid ", what, " '", text, "'"));
  }
  return value;
}

}  // namespace

api::IncomingEvent IncomingOf(const store::IncomingEvent& event) {
  Json outcome = event.outcome.empty()
                     ? Json::array()
                     : Json::parse(event.outcome, nullptr, /*allow_exceptions=*/false);
  if (outcome.is_discarded()) outcome = Json::array();
  return api::IncomingEvent{
      .id = event.id,
      .source = event.source,
      .type = event.type,
      .delivery = event.delivery,
      .state = std::string(store::IncomingStateName(event.state)),
      .received_at = {event.received_ms},
      .processed_at = event.processed_ms > 0
                          ? std::optional<api::Timestamp>(api::Timestamp{event.processed_ms})
                          : std::nullopt,
      .replays = event.replays,
      .redeliveries = event.redeliveries,
      .outcome = std::move(outcome)};
}

Json IncomingJson(const store::IncomingEvent& event) { return api::ToJson(IncomingOf(event)); }

void RegisterTriggerRoutes(httplib::Server& http, ApiContext& api, TriggerService& triggers,
                           RepositoryAgents& repository_agents, const Clock& clock) {
  const triggers::WebhookConfig& hooks = triggers.config().webhooks;

  http.Post("/hooks/github", [&triggers, &hooks](const httplib::Request& req,
                                                 httplib::Response& res) {
    if (hooks.github_secret.empty()) return NotConfigured(res, "github");
    if (Status st = triggers::VerifyGitHubSignature(hooks.github_secret, req.body,
                                                    req.get_header_value("X-Hub-Signature-256"));
        !st.ok()) {
      return Reject(res, req, "github", st);
    }
    const std::string type = req.get_header_value("X-GitHub-Event");
    const std::string delivery = req.get_header_value("X-GitHub-Delivery");
    if (type.empty() || delivery.empty() || delivery.size() > 200) {
      return SendError(
          res, InvalidArgumentError("X-GitHub-Event and X-GitHub-Delivery (at most 200 bytes) are "
                                    "required"));
    }
    store::IncomingEvent event{
        .source = "github", .delivery = delivery, .type = type, .body = req.body};
    Receive(triggers, res, std::move(event), triggers::ParseGitHubEvent(type, delivery, req.body));
  });

  http.Post("/hooks/gitlab", [&triggers, &hooks](const httplib::Request& req,
                                                 httplib::Response& res) {
    if (hooks.gitlab_token.empty()) return NotConfigured(res, "gitlab");
    if (Status st =
            triggers::VerifyGitLabToken(hooks.gitlab_token, req.get_header_value("X-Gitlab-Token"));
        !st.ok()) {
      return Reject(res, req, "gitlab", st);
    }
    const std::string type = req.get_header_value("X-Gitlab-Event");
    // GitLab names each delivery (X-Gitlab-Event-UUID); a redelivery from its UI keeps it.
    std::string delivery = req.get_header_value("X-Gitlab-Event-UUID");
    if (delivery.empty()) delivery = Sha256Hex(req.body);
    if (type.empty() || delivery.size() > 200) {
      return SendError(res, InvalidArgumentError("X-Gitlab-Event is required"));
    }
    store::IncomingEvent event{
        .source = "gitlab", .delivery = delivery, .type = type, .body = req.body};
    Receive(triggers, res, std::move(event), triggers::ParseGitLabEvent(type, delivery, req.body));
  });

  http.Post("/hooks/slack", [&triggers, &hooks, &clock](const httplib::Request& req,
                                                        httplib::Response& res) {
    if (hooks.slack_signing_secret.empty()) return NotConfigured(res, "slack");
    const std::chrono::sys_seconds now{
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::milliseconds(clock.NowMs()))};
    if (Status st = triggers::VerifySlackSignature(
            hooks.slack_signing_secret, req.get_header_value("X-Slack-Request-Timestamp"), req.body,
            req.get_header_value("X-Slack-Signature"), now);
        !st.ok()) {
      return Reject(res, req, "slack", st);
    }
    httplib::Params form;
    httplib::detail::parse_query_text(req.body, form);
    auto command = triggers::ParseSlackCommand(form);
    if (!command.ok()) return SendError(res, command.status());
    std::string delivery;
    if (auto it = form.find("trigger_id"); it != form.end()) delivery = it->second;
    if (delivery.empty() || delivery.size() > 200) delivery = Sha256Hex(req.body);
    auto stored = triggers.Accept(
        {.source = "slack", .delivery = delivery, .type = "slash_command", .body = req.body});
    if (!stored.ok()) {
      if (stored.status().code() == StatusCode::kAlreadyExists) {
        return SendJson(res, 200,
                        Json{{"response_type", "ephemeral"}, {"text", "Already received."}});
      }
      return SendError(res, stored.status());
    }
    auto processed = triggers.WaitProcessed(stored->id, kSlackWaitMs);
    SendJson(res, 200,
             Json{{"response_type", "ephemeral"},
                  {"text", SlackAnswer(processed.ok() ? *processed : *stored, req)}});
  });

  http.Post(R"(/hooks/generic/([A-Za-z0-9_-]{1,64}))",
            [&triggers, &hooks](const httplib::Request& req, httplib::Response& res) {
              const std::string name = req.matches[1].str();
              auto hook = hooks.generic.find(name);
              if (hook == hooks.generic.end()) return NotConfigured(res, StrCat("generic/", name));
              const triggers::GenericHook& spec = hook->second;
              if (Status st = triggers::VerifyHmacSha256(
                      spec.secret, req.body, spec.signature_header, spec.signature_prefix,
                      req.get_header_value(spec.signature_header));
                  !st.ok()) {
                return Reject(res, req, StrCat("generic/", name), st);
              }
              std::string delivery =
                  spec.delivery_header.empty() ? "" : req.get_header_value(spec.delivery_header);
              if (delivery.empty() || delivery.size() > 200) delivery = Sha256Hex(req.body);
              auto parsed = triggers::ParseGenericEvent(name, spec, delivery, req.body);
              if (!parsed.ok()) return SendError(res, parsed.status());
              StoreDelivery(triggers, res,
                            {.source = StrCat("generic:", name),
                             .delivery = delivery,
                             .type = "generic",
                             .body = req.body});
            });

  Route(http, api, "GET", "/api/v1/events", "runs:read",
        [&triggers](const httplib::Request& req, httplib::Response& res) {
          store::IncomingFilter filter{.limit = 50};
          if (req.has_param("limit")) {
            auto limit = ParseNumber(req.get_param_value("limit"), "limit");
            if (!limit.ok() || *limit < 1 || *limit > 500) {
              return SendError(res, InvalidArgumentError("'limit' must be from 1 to 500"));
            }
            filter.limit = static_cast<int32_t>(*limit);
          }
          if (req.has_param("before")) {
            auto before = ParseNumber(req.get_param_value("before"), "before");
            if (!before.ok()) return SendError(res, before.status());
            filter.before_id = *before;
          }
          auto events = triggers.store().ListIncoming(filter);
          if (!events.ok()) return SendError(res, events.status());
          api::IncomingEventList list;
          for (const auto& event : *events) list.events.push_back(IncomingOf(event));
          if (static_cast<int32_t>(events->size()) == filter.limit)
            list.next_before = events->back().id;
          SendJson(res, 200, api::ToJson(list));
        });
  Route(http, api, "GET", R"(/api/v1/events/([^/]+))", "runs:read",
        [&triggers](const httplib::Request& req, httplib::Response& res) {
          auto id = ParseNumber(req.matches[1].str(), "event id");
          if (!id.ok()) return SendError(res, id.status());
          auto event = triggers.store().GetIncoming(*id);
          if (!event.ok()) return SendError(res, event.status());
          SendJson(res, 200, IncomingJson(*event));
        });
  Route(http, api, "POST", R"(/api/v1/events/([^/]+)/replay)", "runs:write",
        [&triggers](const httplib::Request& req, httplib::Response& res) {
          auto id = ParseNumber(req.matches[1].str(), "event id");
          if (!id.ok()) return SendError(res, id.status());
          auto replayed = triggers.Replay(*id);
          if (!replayed.ok()) return SendError(res, replayed.status());
          auto processed = triggers.WaitProcessed(*id, 10'000);
          SendJson(res, 202, IncomingJson(processed.ok() ? *processed : *replayed));
        });
  Route(http, api, "GET", "/api/v1/agents", "runs:read",
        [&triggers, &repository_agents](const httplib::Request&, httplib::Response& res) {
          SendJson(res, 200,
                   api::ToJson(AgentListOf(triggers.config(), *repository_agents.Current())));
        });
  Route(http, api, "POST", R"(/api/v1/repositories/([^/]+)/agents/refresh)", "repos:admin",
        [&triggers, &repository_agents](const httplib::Request& req, httplib::Response& res) {
          auto file = repository_agents.RefreshNow(req.matches[1].str());
          if (!file.ok()) return SendError(res, file.status());
          triggers::RepositoryAgentsMap one{{file->repository, *file}};
          SendJson(res, 200, api::ToJson(AgentListOf(triggers.config(), one, true)));
        });
  Route(http, api, "GET", "/api/v1/schedules", "runs:read",
        [&triggers](const httplib::Request&, httplib::Response& res) {
          api::ScheduleList list;
          for (const ScheduleInfo& s : triggers.Schedules()) {
            list.schedules.push_back({.agent = s.agent,
                                      .cron = s.cron,
                                      .timezone = s.timezone,
                                      .misfire = s.misfire,
                                      .last_due = s.last_due,
                                      .next_due = s.next_due});
          }
          SendJson(res, 200, api::ToJson(list));
        });
}

}  // namespace nightshift::server
