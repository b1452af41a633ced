// GitLab merge requests over the REST API v4 (https://docs.gitlab.com/api/merge_requests/),
// with a personal, project or group access token.

#include <algorithm>
#include <cctype>
#include <functional>

#include "forge/remote.h"
#include "forge/remote_http.h"

namespace nightshift::forge {
namespace {

constexpr std::string_view kDefaultApiUrl = "https://gitlab.com/api/v4";
constexpr int kPerPage = 100;
constexpr int kMaxPages = 1000;   // 100,000 notes: a bound against a server that never ends
constexpr int kMaxJobPages = 10;  // 1,000 failed jobs in one pipeline
constexpr std::string_view kDraftPrefix = "Draft: ";

// GitLab's error bodies: {"message": "404 Not found"}, {"message": ["..."]},
// {"message": {"title": ["can't be blank"]}}, {"error": "title is missing"}.
std::string GitLabErrorText(const Json& body) {
  auto join = [](const Json& list) {
    std::string text;
    for (const Json& item : list) {
      if (!item.is_string()) continue;
      if (!text.empty()) text += "; ";
      text += item.get<std::string>();
    }
    return text;
  };
  if (auto message = body.find("message"); message != body.end()) {
    if (message->is_string()) return message->get<std::string>();
    if (message->is_array()) return join(*message);
    if (message->is_object()) {
      std::string text;
      for (const auto& [field, problems] : message->items()) {
        if (!text.empty()) text += "; ";
        text += problems.is_array()    ? StrCat(field, " ", join(problems))
                : problems.is_string() ? StrCat(field, " ", problems.get<std::string>())
                                       : field;
      }
      return text;
    }
  }
  if (auto error = body.find("error"); error != body.end() && error->is_string()) {
    return error->get<std::string>();
  }
  return "";
}

std::string StringField(const Json& object, std::string_view field) {
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// GitLab takes "Draft:", "[Draft]" and "(Draft)" at the start of a title, in any case.
bool HasDraftPrefix(std::string_view title) {
  std::string lower(title.substr(0, 7));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.starts_with("draft:") || lower.starts_with("[draft]") ||
         lower.starts_with("(draft)");
}

std::string DraftTitle(const std::string& title) {
  return HasDraftPrefix(title) ? title : StrCat(kDraftPrefix, title);
}

class GitLab final : public RemoteForge {
 public:
  GitLab(RemoteForgeOptions options, std::string project_path)
      : options_(std::move(options)),
        project_path_(std::move(project_path)),
        rest_("gitlab", GitLabErrorText, options_) {}

  StatusOr<RemoteChangeRequest> Open(const ChangeRequestDraft& draft) override {
    if (draft.title.empty() || draft.head_branch.empty() || draft.base_branch.empty()) {
      return InvalidArgumentError(
          "gitlab: a merge request needs a title, a source and a target branch");
    }
    // The API has no draft attribute: a "Draft: " title prefix makes a draft.
    Json body = {{"source_branch", draft.head_branch},
                 {"target_branch", draft.base_branch},
                 {"title", draft.draft ? DraftTitle(draft.title) : draft.title},
                 {"description", draft.body}};
    if (!draft.labels.empty()) {
      std::string labels;
      for (const std::string& label : draft.labels) {
        if (!labels.empty()) labels += ',';
        labels += label;
      }
      body["labels"] = labels;
    }
    RestRequest create{"POST", StrCat(project_path_, "/merge_requests"), {}, std::move(body)};
    ASSIGN_OR_RETURN(Json created, CallJson(create));
    RemoteChangeRequest opened;
    opened.id = created.is_object() ? IdText(created.value("iid", Json())) : "";
    opened.url = created.is_object() ? StringField(created, "web_url") : "";
    if (!IsDecimal(opened.id)) {
      return InternalError(
          StrCat("gitlab: POST ", create.path, ": unexpected answer: no merge request iid"));
    }
    return opened;
  }

  // A title without the draft prefix would mark a draft ready, so the current state is read
  // first and the prefix kept.
  Status Update(const std::string& id, const std::string& title, const std::string& body) override {
    RETURN_IF_ERROR(CheckId(id));
    const std::string path = StrCat(project_path_, "/merge_requests/", id);
    ASSIGN_OR_RETURN(Json current, CallJson({"GET", path, {}, std::nullopt}));
    const bool is_draft =
        current.is_object() && (current.value("draft", Json()) == Json(true) ||
                                current.value("work_in_progress", Json()) == Json(true));
    return Call({"PUT",
                 path,
                 {},
                 Json{{"title", is_draft ? DraftTitle(title) : title}, {"description", body}}})
        .status();
  }

  Status Comment(const std::string& id, const std::string& body) override {
    RETURN_IF_ERROR(CheckId(id));
    return Call({"POST",
                 StrCat(project_path_, "/merge_requests/", id, "/notes"),
                 {},
                 Json{{"body", body}}})
        .status();
  }

  StatusOr<std::vector<RemoteComment>> Comments(const std::string& id) override {
    RETURN_IF_ERROR(CheckId(id));
    std::vector<RemoteComment> comments;
    RETURN_IF_ERROR(EachPage(
        StrCat(project_path_, "/merge_requests/", id, "/notes?sort=asc&order_by=created_at"),
        kMaxPages, [&](const RestRequest&, const Json& item) -> Status {
          // System notes are GitLab's own ("added 1 commit", "marked as
          // draft"), not people's.
          if (!item.is_object() || item.value("system", Json()) == Json(true)) {
            return OkStatus();
          }
          RemoteComment comment;
          comment.id = IdText(item.value("id", Json()));
          if (auto author = item.find("author"); author != item.end() && author->is_object()) {
            comment.author = StringField(*author, "username");
          }
          comment.body = StringField(item, "body");
          comment.created_at = StringField(item, "created_at");
          comments.push_back(std::move(comment));
          return OkStatus();
        }));
    return comments;
  }

  StatusOr<std::vector<FailedJob>> FailedJobs(const std::string& ci_run_id, size_t tail_bytes,
                                              int max_jobs) override {
    if (!IsDecimal(ci_run_id)) {
      return InvalidArgumentError(StrCat("gitlab: a pipeline id, not '", ci_run_id, "'"));
    }
    if (max_jobs < 1) return InvalidArgumentError("gitlab: max_jobs must be at least 1");
    // GitLab lists the newest first: every page is read to keep the first jobs.
    std::vector<ListedJob> failed;
    RETURN_IF_ERROR(
        EachPage(StrCat(project_path_, "/pipelines/", ci_run_id, "/jobs?scope[]=failed"),
                 kMaxJobPages, [&](const RestRequest& list, const Json& item) -> Status {
                   if (!item.is_object()) return OkStatus();
                   ListedJob job{IdText(item.value("id", Json())),
                                 {StringField(item, "name"), StringField(item, "web_url"), ""}};
                   // The id goes into the next request's path.
                   if (!IsDecimal(job.id)) {
                     return InternalError(StrCat("gitlab: GET ", list.path,
                                                 ": unexpected answer: a job without an id"));
                   }
                   failed.push_back(std::move(job));
                   return OkStatus();
                 }));
    return WithLogTails(std::move(failed), tail_bytes, max_jobs, [&](const std::string& job_id) {
      return Call({"GET", StrCat(project_path_, "/jobs/", job_id, "/trace"), {}, std::nullopt});
    });
  }

 private:
  // Calls `each` with every item of the list at `path` (which has a query already), page by page
  // up to `max_pages`. GitLab's x-next-page is empty on the last page (and absent past 10,000
  // items, where it stops counting); without it, a short page is the last.
  Status EachPage(const std::string& path, int max_pages,
                  const std::function<Status(const RestRequest&, const Json&)>& each) const {
    for (int page = 1; page <= max_pages; ++page) {
      RestRequest list{
          "GET", StrCat(path, "&per_page=", kPerPage, "&page=", page), {}, std::nullopt};
      ASSIGN_OR_RETURN(HttpResponse response, Call(list));
      ASSIGN_OR_RETURN(Json items, rest_.ParseBody(list, response));
      if (!items.is_array()) {
        return InternalError(StrCat("gitlab: GET ", list.path, ": unexpected answer: not a list"));
      }
      for (const Json& item : items) RETURN_IF_ERROR(each(list, item));
      const bool more = response.headers.contains("x-next-page")
                            ? !response.Header("x-next-page").empty()
                            : items.size() >= static_cast<size_t>(kPerPage);
      if (!more) break;
    }
    return OkStatus();
  }

  static Status CheckId(const std::string& id) {
    if (IsDecimal(id)) return OkStatus();
    return InvalidArgumentError(StrCat("gitlab: a merge request iid, not '", id, "'"));
  }

  StatusOr<HttpResponse> Call(RestRequest request) const {
    request.headers = {{"PRIVATE-TOKEN", options_.token}, {"User-Agent", "nightshift"}};
    return rest_.Send(request);
  }

  StatusOr<Json> CallJson(const RestRequest& request) const {
    ASSIGN_OR_RETURN(HttpResponse response, Call(request));
    return rest_.ParseBody(request, response);
  }

  const RemoteForgeOptions options_;
  const std::string project_path_;  // "/projects/group%2Fproject"
  const RestClient rest_;
};

}  // namespace

StatusOr<std::unique_ptr<RemoteForge>> MakeGitLab(RemoteForgeOptions options) {
  if (options.project.empty() || options.project.front() == '/' || options.project.back() == '/') {
    return InvalidArgumentError(StrCat(
        "gitlab: project must be 'group/project' or a numeric id, not '", options.project, "'"));
  }
  if (options.token.empty()) return InvalidArgumentError("gitlab: needs a token");
  if (!IsHeaderSafe(options.token)) {
    return InvalidArgumentError("gitlab: the token contains spaces or control characters");
  }
  ASSIGN_OR_RETURN(options.api_url, NormalizeApiUrl(options.api_url, kDefaultApiUrl));
  std::string project_path = StrCat(
      "/projects/", IsDecimal(options.project) ? options.project : UrlEncode(options.project));
  return std::unique_ptr<RemoteForge>(
      std::make_unique<GitLab>(std::move(options), std::move(project_path)));
}

}  // namespace nightshift::forge
