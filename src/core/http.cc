#include "core/http.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>

namespace nightshift {
namespace {

struct BodySink {
  std::string* body;
  uint64_t max_bytes;
  bool exceeded = false;
};

// Returning less than it was given aborts the transfer (CURLE_WRITE_ERROR).
size_t OnBody(char* data, size_t size, size_t count, void* out) {
  auto* sink = static_cast<BodySink*>(out);
  const size_t bytes = size * count;
  if (bytes > sink->max_bytes - sink->body->size()) {
    sink->exceeded = true;
    return 0;
  }
  sink->body->append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* out) {
  std::string_view line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

// Non-zero aborts the transfer.
int OnProgress(void* cancelled, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* check = static_cast<const std::function<bool()>*>(cancelled);
  return *check && (*check)() ? 1 : 0;
}

// libcurl, loaded by the first request rather than linked: of the `nightshift` commands only the
// server's clients of remote APIs use it, and linking it made every command's start load it and
// the ~30 libraries it needs (~40% of the dynamic loader's work). Only the functions below are
// used; their types come from curl.h.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// The soname of Debian's libcurl4 (libcurl4-openssl-dev's runtime package).
constexpr const char* kCurlLibrary = "libcurl.so.4";

template <typename Function>
Status Resolve(void* library, const char* name, Function* function) {
  *function = reinterpret_cast<Function>(::dlsym(library, name));
  if (*function == nullptr) return UnavailableError(StrCat(kCurlLibrary, " has no ", name));
  return OkStatus();
}

StatusOr<Curl> LoadCurl() {
  // Never unloaded: libcurl keeps global state from curl_global_init.
  void* library = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = ::dlerror();
    return UnavailableError(StrCat("cannot load ", kCurlLibrary,
                                   " (HTTP client): ", why != nullptr ? why : "unknown error"));
  }
  Curl curl{};
  RETURN_IF_ERROR(Resolve(library, "curl_global_init", &curl.global_init));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_init", &curl.easy_init));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_cleanup", &curl.easy_cleanup));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_setopt", &curl.easy_setopt));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_perform", &curl.easy_perform));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_getinfo", &curl.easy_getinfo));
  RETURN_IF_ERROR(Resolve(library, "curl_easy_strerror", &curl.easy_strerror));
  RETURN_IF_ERROR(Resolve(library, "curl_slist_append", &curl.slist_append));
  RETURN_IF_ERROR(Resolve(library, "curl_slist_free_all", &curl.slist_free_all));
  if (CURLcode rc = curl.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    return UnavailableError(StrCat("curl_global_init: ", curl.easy_strerror(rc)));
  }
  return curl;
}

// Loaded once per process, on first use; thread-safe.
StatusOr<const Curl*> GetCurl() {
  static const auto* loaded = new StatusOr<Curl>(LoadCurl());
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

}  // namespace

StatusOr<HttpResponse> HttpRequest(const std::string& method, const std::string& url,
                                   const std::map<std::string, std::string>& headers,
                                   const std::string& body, int64_t timeout_ms,
                                   const std::function<bool()>& cancelled,
                                   uint64_t max_body_bytes) {
  ASSIGN_OR_RETURN(const Curl* lib, GetCurl());
  std::unique_ptr<CURL, decltype(lib->easy_cleanup)> curl(lib->easy_init(), lib->easy_cleanup);
  if (!curl) return InternalError("curl_easy_init failed");
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) {
    list = lib->slist_append(list, StrCat(name, ": ", value).c_str());
  }
  list = lib->slist_append(list, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, decltype(lib->slist_free_all)> header_list(list, lib->slist_free_all);
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  const auto setopt = lib->easy_setopt;
  setopt(c, CURLOPT_URL, url.c_str());
  if (method == "POST" || !body.empty()) {
    setopt(c, CURLOPT_POST, 1L);
    setopt(c, CURLOPT_POSTFIELDS, body.data());
    setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  if (method != "GET" && method != "POST") {
    setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else if (method == "GET" && body.empty()) {
    setopt(c, CURLOPT_HTTPGET, 1L);
  }
  setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  BodySink sink{&response.body, max_body_bytes};
  setopt(c, CURLOPT_WRITEDATA, &sink);
  if (max_body_bytes <= static_cast<uint64_t>(std::numeric_limits<curl_off_t>::max())) {
    // Refuses at once an answer whose Content-Length is already too large.
    setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body_bytes));
  }
  setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  setopt(c, CURLOPT_HEADERDATA, &response.headers);
  setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(10'000, static_cast<long>(timeout_ms)));
  setopt(c, CURLOPT_NOSIGNAL, 1L);
  setopt(c, CURLOPT_NOPROGRESS, 0L);
  setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  setopt(c, CURLOPT_XFERINFODATA, &cancelled);
  setopt(c, CURLOPT_ERRORBUFFER, error);
  setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  setopt(c, CURLOPT_TCP_NODELAY, 1L);
  const CURLcode rc = lib->easy_perform(c);
  if (rc == CURLE_ABORTED_BY_CALLBACK) return CancelledError("cancelled");
  if (sink.exceeded || rc == CURLE_FILESIZE_EXCEEDED) {
    return ResourceExhaustedError(StrCat("the answer is larger than ", max_body_bytes, " bytes"));
  }
  if (rc != CURLE_OK) {
    return UnavailableError(StrCat(error[0] != '\0' ? error : lib->easy_strerror(rc)));
  }
  long status = 0;
  lib->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace nightshift
