#pragma once

// The REST API under /api/v1 (docs/api.md is the contract) and /healthz.

#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "server/event_hub.h"
#include "server/run_service.h"
#include "store/store.h"

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace nightshift::server {

struct ApiContext {
  store::Store& store;
  EventHub& hub;
  RunService& runs;  // every run starts (and is cancelled) there
  std::string admin_token;
  int64_t keepalive_ms = 15'000;         // SSE comment interval
  forge::BuiltinForge* forge = nullptr;  // change requests
};

// A JSON answer, and an error as the API's error body with the status's HTTP code (400 for
// InvalidArgument, 401, 403, 404, 409 for AlreadyExists and FailedPrecondition, …).
void SendJson(httplib::Response& res, int status, const Json& body);
void SendError(httplib::Response& res, const Status& st);

// Registers every route, the bearer-token check and the JSON error bodies on `http`.
// `context` must outlive the server.
void RegisterApi(httplib::Server& http, ApiContext& context);

}  // namespace nightshift::server
