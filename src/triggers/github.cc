#include "triggers/github.h"

namespace nightshift::triggers {
namespace {

constexpr std::string_view kSignaturePrefix = "sha256=";

const SourceSpec& GitHub() {
  static const auto* spec = new SourceSpec{
      "github",
      "/repository/full_name",
      {"/repository/clone_url", "/repository/ssh_url", "/repository/html_url"},
      "/sender/login",
      {
          {"workflow_run",
           "/action",
           {"completed"},
           "branch",
           "branch",
           {{"branch", "/workflow_run/head_branch"},
            {"sha", "/workflow_run/head_sha"},
            {"workflow", "/workflow/name"},
            {"conclusion", "/workflow_run/conclusion"},
            {"run_id", "/workflow_run/id"},
            {"run_url", "/workflow_run/html_url"},
            {"trigger", "/workflow_run/event"}}},
          {"check_suite",
           "/action",
           {"completed"},
           "branch",
           "branch",
           {{"branch", "/check_suite/head_branch"},
            {"sha", "/check_suite/head_sha"},
            {"conclusion", "/check_suite/conclusion"},
            {"app", "/check_suite/app/name"}}},
          {"issues",
           "/action",
           {"opened", "labeled", "assigned"},
           "issue",
           "number",
           {{"number", "/issue/number"},
            {"title", "/issue/title"},
            {"body", "/issue/body"},
            {"url", "/issue/html_url"},
            {"author", "/issue/user/login"},
            {"label", "/label/name"},
            {"assignee", "/assignee/login"}}},
          {"issue_comment",
           "/action",
           {"created"},
           "issue",
           "number",
           {{"number", "/issue/number"},
            {"title", "/issue/title"},
            {"url", "/comment/html_url"},
            {"comment.body", "/comment/body"},
            {"comment.author", "/comment/user/login"},
            {"pull_request_url", "/issue/pull_request/html_url"}}},
          {"pull_request_review_comment",
           "/action",
           {"created"},
           "pull_request",
           "number",
           {{"number", "/pull_request/number"},
            {"title", "/pull_request/title"},
            {"branch", "/pull_request/head/ref"},
            {"url", "/comment/html_url"},
            {"path", "/comment/path"},
            {"comment.body", "/comment/body"},
            {"comment.author", "/comment/user/login"}}},
          {"pull_request",
           "/action",
           {"opened", "reopened", "synchronize", "labeled", "ready_for_review"},
           "pull_request",
           "number",
           {{"number", "/pull_request/number"},
            {"title", "/pull_request/title"},
            {"body", "/pull_request/body"},
            {"branch", "/pull_request/head/ref"},
            {"base", "/pull_request/base/ref"},
            {"sha", "/pull_request/head/sha"},
            {"url", "/pull_request/html_url"},
            {"author", "/pull_request/user/login"},
            {"label", "/label/name"}}},
          {"push",
           "/action",
           {},
           "branch",
           "branch",
           {{"branch", "/ref"}, {"sha", "/after"}, {"before", "/before"}, {"compare", "/compare"}}},
      }};
  return *spec;
}

}  // namespace

Status VerifyGitHubSignature(std::string_view secret, std::string_view body,
                             std::string_view signature_header) {
  return VerifyHmacSha256(secret, body, "X-Hub-Signature-256", kSignaturePrefix, signature_header);
}

StatusOr<std::optional<TriggerEvent>> ParseGitHubEvent(std::string_view event_type,
                                                       std::string_view delivery,
                                                       std::string_view body) {
  if (event_type == "ping") return std::optional<TriggerEvent>();
  const EventTypeSpec* type = GitHub().Find(event_type);
  if (type == nullptr) {
    return NotFoundError(
        StrCat("github: event type '", event_type, "' is not one Nightshift handles"));
  }
  ASSIGN_OR_RETURN(Json json, ParseBody("github", body));
  ASSIGN_OR_RETURN(std::optional<TriggerEvent> event, ReadEvent(GitHub(), *type, delivery, json));
  if (!event) return event;
  if (event->type == "push") {
    std::string& ref = event->fields["branch"];
    // Tags and deleted branches start nothing.
    if (ref.rfind("refs/heads/", 0) != 0 || TextAt(json, "/deleted") == "true") {
      return std::optional<TriggerEvent>();
    }
    ref.erase(0, std::string_view("refs/heads/").size());
  }
  RETURN_IF_ERROR(SetItem(*type, *event));
  return event;
}

std::vector<std::string> GitHubEventFields(std::string_view event_type) {
  return GitHub().FieldsOf(event_type);
}

}  // namespace nightshift::triggers
