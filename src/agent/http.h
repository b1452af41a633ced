#pragma once

// One HTTP POST over libcurl, for the model providers: bounded time, cancellable, the response
// status, headers that matter (Retry-After) and body.

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"
#include "sandbox/process.h"

namespace nightshift::agent {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};

// Unavailable for transport failures (connection refused, reset, timeout) with curl's reason;
// Cancelled when `cancel` fires. Any HTTP status is a response, not an error.
StatusOr<HttpResponse> HttpPost(const std::string& url,
                                const std::map<std::string, std::string>& headers,
                                const std::string& body, int64_t timeout_ms,
                                const sandbox::CancelToken* cancel);

}  // namespace nightshift::agent
