#pragma once

// One HTTP request over libcurl, for clients of remote APIs (model providers, forges): bounded
// time, cancellable, the response status, headers and body. libcurl is loaded by the first
// request (dlopen), not when the process starts.

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "core/status.h"

namespace nightshift {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case; the last of repeats
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// `method` is GET, POST, PUT, PATCH or DELETE; `body` is sent unless empty. Unavailable for
// transport failures (connection refused, reset, timeout) with curl's reason, and when libcurl
// (libcurl.so.4) cannot be loaded; Cancelled when `cancelled()` turns true; ResourceExhausted
// when the (decoded) body would pass `max_body_bytes`, the transfer stopped there. Any HTTP
// status is a response, not an error. Redirects are answers, never followed. Thread-safe.
StatusOr<HttpResponse> HttpRequest(const std::string& method, const std::string& url,
                                   const std::map<std::string, std::string>& headers,
                                   const std::string& body, int64_t timeout_ms,
                                   const std::function<bool()>& cancelled = nullptr,
                                   uint64_t max_body_bytes = std::numeric_limits<uint64_t>::max());

}  // namespace nightshift
