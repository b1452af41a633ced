#include "triggers/gitlab.h"

#include "core/secrets.h"

namespace nightshift::triggers {
namespace {

const SourceSpec& GitLab() {
  static const auto* spec =
      new SourceSpec{"gitlab",
                     "/project/path_with_namespace",
                     {"/project/git_http_url", "/project/git_ssh_url", "/project/web_url"},
                     "/user/username",
                     {
                         {"pipeline",
                          nullptr,
                          {},
                          "branch",
                          "branch",
                          {{"status", "/object_attributes/status"},
                           {"branch", "/object_attributes/ref"},
                           {"sha", "/object_attributes/sha"},
                           {"pipeline_id", "/object_attributes/id"},
                           {"url", "/object_attributes/url"},
                           {"trigger", "/object_attributes/source"}}},
                         {"merge_request",
                          "/object_attributes/action",
                          {"open", "reopen", "update"},
                          "merge_request",
                          "number",
                          {{"number", "/object_attributes/iid"},
                           {"title", "/object_attributes/title"},
                           {"body", "/object_attributes/description"},
                           {"branch", "/object_attributes/source_branch"},
                           {"base", "/object_attributes/target_branch"},
                           {"sha", "/object_attributes/last_commit/id"},
                           {"url", "/object_attributes/url"}}},
                         {"note",
                          nullptr,
                          {},
                          nullptr,  // what the note is on: merge_request or issue
                          "number",
                          {{"noteable_type", "/object_attributes/noteable_type"},
                           {"comment.body", "/object_attributes/note"},
                           {"url", "/object_attributes/url"},
                           {"number", "/merge_request/iid"},
                           {"title", "/merge_request/title"},
                           {"branch", "/merge_request/source_branch"}}},
                         {"push",
                          nullptr,
                          {},
                          "branch",
                          "branch",
                          {{"branch", "/ref"}, {"sha", "/after"}, {"before", "/before"}}},
                     }};
  return *spec;
}

// X-Gitlab-Event → our type.
std::string_view TypeOfHook(std::string_view hook) {
  if (hook == "Pipeline Hook") return "pipeline";
  if (hook == "Merge Request Hook") return "merge_request";
  if (hook == "Note Hook") return "note";
  if (hook == "Push Hook") return "push";
  return {};
}

}  // namespace

Status VerifyGitLabToken(std::string_view token, std::string_view token_header) {
  if (token_header.empty()) return UnauthenticatedError("missing X-Gitlab-Token");
  if (!ConstantTimeEquals(token_header, token)) {
    return UnauthenticatedError("X-Gitlab-Token does not match");
  }
  return OkStatus();
}

StatusOr<std::optional<TriggerEvent>> ParseGitLabEvent(std::string_view hook,
                                                       std::string_view delivery,
                                                       std::string_view body) {
  if (hook == "Tag Push Hook") return std::optional<TriggerEvent>();
  const EventTypeSpec* type = GitLab().Find(TypeOfHook(hook));
  if (type == nullptr) {
    return NotFoundError(StrCat("gitlab: hook '", hook, "' is not one Nightshift handles"));
  }
  ASSIGN_OR_RETURN(Json json, ParseBody("gitlab", body));
  ASSIGN_OR_RETURN(std::optional<TriggerEvent> event, ReadEvent(GitLab(), *type, delivery, json));
  if (!event) return event;
  auto& fields = event->fields;
  if (event->type == "push") {
    // A push hook names its user at the top level.
    if (event->actor.empty()) fields["actor"] = event->actor = TextAt(json, "/user_username");
    std::string& ref = fields["branch"];
    if (ref.rfind("refs/heads/", 0) != 0 || fields["sha"] == std::string(40, '0')) {
      return std::optional<TriggerEvent>();  // not a branch, or the branch was deleted
    }
    ref.erase(0, std::string_view("refs/heads/").size());
  }
  if (event->type == "note") {
    const std::string& on = fields["noteable_type"];
    if (on == "Issue") {
      fields["number"] = TextAt(json, "/issue/iid");
      fields["title"] = TextAt(json, "/issue/title");
    } else if (on != "MergeRequest") {
      return std::optional<TriggerEvent>();  // a note on a commit or a snippet
    }
    RETURN_IF_ERROR(SetItem(*type, *event, on == "Issue" ? "issue" : "merge_request"));
    return event;
  }
  RETURN_IF_ERROR(SetItem(*type, *event));
  return event;
}

std::vector<std::string> GitLabEventFields(std::string_view type) {
  return GitLab().FieldsOf(type);
}

}  // namespace nightshift::triggers
