// GitHub pull requests over the REST API (https://docs.github.com/en/rest), with a personal or
// fine-grained token, or as a GitHub App installation (a JWT signed with the App's key buys an
// installation token, cached until shortly before it expires).

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>

#include "core/clock.h"
#include "core/log.h"
#include "forge/remote.h"
#include "forge/remote_http.h"

namespace nightshift::forge {
namespace {

constexpr std::string_view kDefaultApiUrl = "https://api.github.com";
constexpr int kPerPage = 100;
constexpr int kMaxPages = 1000;        // 100,000 comments: a bound against a server that never ends
constexpr int kMaxJobPages = 10;       // 1,000 jobs; a workflow run has at most 256 per attempt
constexpr int64_t kJwtBackdateS = 60;  // GitHub: iat 60 s in the past, against clock drift
constexpr int64_t kJwtLifetimeS = 540;      // exp: at most 10 minutes after iat
constexpr int64_t kTokenMarginMs = 60'000;  // an installation token is renewed this early

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// GitHub's error body: {"message": "Validation Failed", "errors": [{"message": "..."}]}.
std::string GitHubErrorText(const Json& body) {
  std::string text;
  if (auto it = body.find("message"); it != body.end() && it->is_string()) {
    text = it->get<std::string>();
  }
  auto errors = body.find("errors");
  if (errors == body.end() || !errors->is_array() || errors->empty()) return text;
  const Json& first = errors->front();
  std::string detail;
  if (first.is_string()) {
    detail = first.get<std::string>();
  } else if (first.is_object()) {
    auto message = first.find("message");
    auto field = first.find("field");
    auto code = first.find("code");
    if (message != first.end() && message->is_string()) {
      detail = message->get<std::string>();
    } else if (field != first.end() && field->is_string() && code != first.end() &&
               code->is_string()) {
      detail = StrCat(field->get<std::string>(), " ", code->get<std::string>());
    }
  }
  if (detail.empty()) return text;
  return text.empty() ? detail : StrCat(text, ": ", detail);
}

std::string StringField(const Json& object, std::string_view field) {
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

StatusOr<PrivateKey> LoadRsaKey(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return InternalError("BIO_new_mem_buf failed");
  // A passphrase callback that declines: with none, OpenSSL would prompt on the terminal.
  PrivateKey key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!key) {
    return InvalidArgumentError(
        StrCat("github: private_key_pem is not an unencrypted PEM private key: ", OpenSslError()));
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return InvalidArgumentError("github: private_key_pem must be an RSA key (RS256)");
  }
  return key;
}

std::string Base64Url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

// RS256: RSA PKCS#1 v1.5 over SHA-256 (OpenSSL's default padding for RSA digest signing).
StatusOr<std::string> SignRs256(EVP_PKEY& key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, &key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return InternalError(StrCat("github: signing the App JWT: ", OpenSslError()));
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return InternalError(StrCat("github: signing the App JWT: ", OpenSslError()));
  }
  signature.resize(size);
  return signature;
}

// "2016-07-11T22:14:10Z" (fractional seconds and a "+HH:MM" offset allowed) -> milliseconds
// since the epoch.
std::optional<int64_t> ParseTimestampMs(const std::string& text) {
  std::tm tm = {};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(text).substr(consumed);
  if (rest.starts_with('.')) {
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
  }
  int64_t offset_s = 0;
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int hours = 0, minutes = 0;
    if (std::sscanf(rest.data() + 1, "%2d:%2d", &hours, &minutes) != 2) return std::nullopt;
    offset_s = (rest[0] == '+' ? 1 : -1) * (int64_t{hours} * 3600 + int64_t{minutes} * 60);
  } else if (rest != "Z") {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t seconds = timegm(&tm);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return (static_cast<int64_t>(seconds) - offset_s) * 1000;
}

class GitHub final : public RemoteForge {
 public:
  GitHub(RemoteForgeOptions options, std::string repo_path, PrivateKey app_key)
      : options_(std::move(options)),
        repo_path_(std::move(repo_path)),
        app_key_(std::move(app_key)),
        rest_("github", GitHubErrorText, options_) {}

  StatusOr<RemoteChangeRequest> Open(const ChangeRequestDraft& draft) override {
    if (draft.title.empty() || draft.head_branch.empty() || draft.base_branch.empty()) {
      return InvalidArgumentError("github: a pull request needs a title, a head and a base branch");
    }
    Json body = {{"title", draft.title},
                 {"body", draft.body},
                 {"head", draft.head_branch},
                 {"base", draft.base_branch},
                 {"draft", draft.draft}};
    RestRequest create{"POST", StrCat(repo_path_, "/pulls"), {}, body};
    auto created = CallJson(create);
    if (!created.ok() && draft.draft && IsInvalidArgument(created.status()) &&
        created.status().message().find("Draft pull requests are not supported") !=
            std::string::npos) {
      // Private repositories on some plans have no drafts; a ready pull request still delivers.
      log::Get("forge")->warn("{}; opening a ready pull request instead",
                              created.status().message());
      (*create.body)["draft"] = false;
      created = CallJson(create);
    }
    if (!created.ok()) return created.status();
    RemoteChangeRequest opened;
    opened.id = created->is_object() ? IdText(created->value("number", Json())) : "";
    opened.url = created->is_object() ? StringField(*created, "html_url") : "";
    if (!IsDecimal(opened.id)) {
      return InternalError(
          StrCat("github: POST ", create.path, ": unexpected answer: no pull request number"));
    }
    if (!draft.labels.empty()) {
      RestRequest label{"POST",
                        StrCat(repo_path_, "/issues/", opened.id, "/labels"),
                        {},
                        Json{{"labels", draft.labels}}};
      if (auto labelled = Call(label); !labelled.ok()) {
        log::Get("forge")->warn("pull request #{} ({}) opened without its labels: {}", opened.id,
                                opened.url, labelled.status().message());
      }
    }
    return opened;
  }

  Status Update(const std::string& id, const std::string& title, const std::string& body) override {
    RETURN_IF_ERROR(CheckId(id));
    return Call({"PATCH",
                 StrCat(repo_path_, "/pulls/", id),
                 {},
                 Json{{"title", title}, {"body", body}}})
        .status();
  }

  Status Comment(const std::string& id, const std::string& body) override {
    RETURN_IF_ERROR(CheckId(id));
    return Call({"POST", StrCat(repo_path_, "/issues/", id, "/comments"), {}, Json{{"body", body}}})
        .status();
  }

  StatusOr<std::vector<RemoteComment>> Comments(const std::string& id) override {
    RETURN_IF_ERROR(CheckId(id));
    std::vector<RemoteComment> comments;
    for (int page = 1; page <= kMaxPages; ++page) {
      RestRequest list{
          "GET",
          StrCat(repo_path_, "/issues/", id, "/comments?per_page=", kPerPage, "&page=", page),
          {},
          std::nullopt};
      ASSIGN_OR_RETURN(HttpResponse response, Call(list));
      ASSIGN_OR_RETURN(Json items, rest_.ParseBody(list, response));
      if (!items.is_array()) {
        return InternalError(StrCat("github: GET ", list.path, ": unexpected answer: not a list"));
      }
      for (const Json& item : items) {
        if (!item.is_object()) continue;
        RemoteComment comment;
        comment.id = IdText(item.value("id", Json()));
        if (auto user = item.find("user"); user != item.end() && user->is_object()) {
          comment.author = StringField(*user, "login");
        }
        comment.body = StringField(item, "body");
        comment.created_at = StringField(item, "created_at");
        comments.push_back(std::move(comment));
      }
      // The Link header names the next page when there is one; without it, a short page is the
      // last.
      const bool more = response.headers.contains("link")
                            ? response.Header("link").find("rel=\"next\"") != std::string::npos
                            : items.size() >= static_cast<size_t>(kPerPage);
      if (!more) return comments;
    }
    return comments;
  }

  StatusOr<std::vector<FailedJob>> FailedJobs(const std::string& ci_run_id, size_t tail_bytes,
                                              int max_jobs) override {
    if (!IsDecimal(ci_run_id)) {
      return InvalidArgumentError(StrCat("github: a workflow run id, not '", ci_run_id, "'"));
    }
    if (max_jobs < 1) return InvalidArgumentError("github: max_jobs must be at least 1");
    // The whole listing is read, since failed jobs may be on any page of all the run's jobs.
    std::vector<ListedJob> failed;
    for (int page = 1; page <= kMaxJobPages; ++page) {
      RestRequest list{"GET",
                       StrCat(repo_path_, "/actions/runs/", ci_run_id,
                              "/jobs?filter=latest&per_page=", kPerPage, "&page=", page),
                       {},
                       std::nullopt};
      ASSIGN_OR_RETURN(HttpResponse response, Call(list));
      ASSIGN_OR_RETURN(Json answer, rest_.ParseBody(list, response));
      auto jobs = answer.is_object() ? answer.find("jobs") : answer.end();
      if (jobs == answer.end() || !jobs->is_array()) {
        return InternalError(StrCat("github: GET ", list.path, ": unexpected answer: no jobs"));
      }
      for (const Json& item : *jobs) {
        if (!item.is_object()) continue;
        const std::string conclusion = StringField(item, "conclusion");
        if (conclusion != "failure" && conclusion != "timed_out") continue;
        ListedJob job{IdText(item.value("id", Json())),
                      {StringField(item, "name"), StringField(item, "html_url"), ""}};
        // The id goes into the next request's path.
        if (!IsDecimal(job.id)) {
          return InternalError(
              StrCat("github: GET ", list.path, ": unexpected answer: a job without an id"));
        }
        failed.push_back(std::move(job));
      }
      const bool more = response.headers.contains("link")
                            ? response.Header("link").find("rel=\"next\"") != std::string::npos
                            : jobs->size() >= static_cast<size_t>(kPerPage);
      if (!more) break;
    }
    // The log answers 302 to a pre-signed URL elsewhere (fetched without the token), or, on
    // some servers, 200 with the text itself.
    return WithLogTails(std::move(failed), tail_bytes, max_jobs, [&](const std::string& job_id) {
      RestRequest log{
          "GET", StrCat(repo_path_, "/actions/jobs/", job_id, "/logs"), {}, std::nullopt};
      log.follow_redirect = true;
      return Call(std::move(log));
    });
  }

 private:
  static Status CheckId(const std::string& id) {
    if (IsDecimal(id)) return OkStatus();
    return InvalidArgumentError(StrCat("github: a pull request number, not '", id, "'"));
  }

  // The request with GitHub's headers and the token (an App's minted on demand).
  StatusOr<HttpResponse> Call(RestRequest request) {
    std::string token = options_.token;
    if (app_key_) {
      ASSIGN_OR_RETURN(token, InstallationToken());
    }
    request.headers = {{"Authorization", StrCat("Bearer ", token)},
                       {"Accept", "application/vnd.github+json"},
                       {"X-GitHub-Api-Version", "2022-11-28"},
                       {"User-Agent", "nightshift"}};
    auto response = rest_.Send(request);
    if (app_key_ && !response.ok() && response.status().code() == StatusCode::kUnauthenticated) {
      // A revoked installation token: the next call mints a new one.
      std::lock_guard lock(mu_);
      token_.clear();
    }
    return response;
  }

  StatusOr<Json> CallJson(const RestRequest& request) {
    ASSIGN_OR_RETURN(HttpResponse response, Call(request));
    return rest_.ParseBody(request, response);
  }

  // The cached installation token, or a new one when it expires within kTokenMarginMs. Holds
  // mu_ while minting, so concurrent callers mint once.
  StatusOr<std::string> InstallationToken() {
    std::lock_guard lock(mu_);
    const int64_t now_ms = rest_.clock().NowMs();
    if (!token_.empty() && now_ms < token_expires_ms_ - kTokenMarginMs) return token_;
    const int64_t now_s = now_ms / 1000;
    const Json claims = {
        {"iat", now_s - kJwtBackdateS}, {"exp", now_s + kJwtLifetimeS}, {"iss", options_.app_id}};
    const std::string signing_input =
        StrCat(Base64Url(R"({"alg":"RS256","typ":"JWT"})"), ".", Base64Url(claims.dump()));
    ASSIGN_OR_RETURN(std::string signature, SignRs256(*app_key_, signing_input));
    RestRequest mint{
        "POST",
        StrCat("/app/installations/", options_.installation_id, "/access_tokens"),
        {{"Authorization", StrCat("Bearer ", signing_input, ".", Base64Url(signature))},
         {"Accept", "application/vnd.github+json"},
         {"X-GitHub-Api-Version", "2022-11-28"},
         {"User-Agent", "nightshift"}},
        std::nullopt};
    ASSIGN_OR_RETURN(HttpResponse response, rest_.Send(mint));
    ASSIGN_OR_RETURN(Json answer, rest_.ParseBody(mint, response));
    std::string token = answer.is_object() ? StringField(answer, "token") : "";
    if (token.empty() || !IsHeaderSafe(token)) {
      return InternalError(StrCat("github: POST ", mint.path, ": unexpected answer: no token"));
    }
    // Without a readable expiry the token is used for this call only.
    const auto expires_ms = ParseTimestampMs(StringField(answer, "expires_at"));
    token_ = token;
    token_expires_ms_ = expires_ms.value_or(0);
    return token;
  }

  const RemoteForgeOptions options_;
  const std::string repo_path_;  // "/repos/owner/repo"
  const PrivateKey app_key_;     // set for App authentication
  const RestClient rest_;
  std::mutex mu_;
  std::string token_;             // GUARDED_BY(mu_) the installation token
  int64_t token_expires_ms_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace

StatusOr<std::unique_ptr<RemoteForge>> MakeGitHub(RemoteForgeOptions options) {
  const size_t slash = options.project.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == options.project.size() ||
      options.project.find('/', slash + 1) != std::string::npos) {
    return InvalidArgumentError(
        StrCat("github: project must be 'owner/repo', not '", options.project, "'"));
  }
  ASSIGN_OR_RETURN(options.api_url, NormalizeApiUrl(options.api_url, kDefaultApiUrl));
  PrivateKey app_key;
  if (!options.app_id.empty()) {
    if (!IsDecimal(options.installation_id) || options.private_key_pem.empty()) {
      return InvalidArgumentError(
          "github: App authentication needs app_id, a numeric installation_id and "
          "private_key_pem");
    }
    ASSIGN_OR_RETURN(app_key, LoadRsaKey(options.private_key_pem));
  } else if (options.token.empty()) {
    return InvalidArgumentError("github: needs a token or App credentials (app_id, ...)");
  } else if (!IsHeaderSafe(options.token)) {
    return InvalidArgumentError("github: the token contains spaces or control characters");
  }
  std::string repo_path = StrCat("/repos/", UrlEncode(options.project.substr(0, slash)), "/",
                                 UrlEncode(options.project.substr(slash + 1)));
  return std::unique_ptr<RemoteForge>(
      std::make_unique<GitHub>(std::move(options), std::move(repo_path), std::move(app_key)));
}

}  // namespace nightshift::forge
