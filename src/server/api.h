#pragma once

// The REST API under /api/v1 (docs/api.md is the contract) and /healthz.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "policy/audit.h"
#include "policy/identity.h"
#include "policy/secrets.h"
#include "server/event_hub.h"
#include "server/run_service.h"
#include "store/store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace nightshift::server {

// An API route as registered: the scope a token needs for it ("" : any valid token).
struct RouteInfo {
  std::string method;
  std::string pattern;
  std::string scope;
};

struct ApiContext {
  store::Store& store;
  EventHub& hub;
  RunService& runs;  // every run starts (and is cancelled) there
  policy::Identities& identities;
  std::vector<RouteInfo> routes;  // every route behind a token, as registered
  // Where every change through the API, every refusal and every login is recorded; may be null
  // (tests of other parts).
  policy::AuditLog* audit = nullptr;
  int64_t keepalive_ms = 15'000;         // SSE comment interval
  forge::BuiltinForge* forge = nullptr;  // change requests
  policy::SecretVault* vault = nullptr;  // secrets; null: the routes answer 503
};

// A JSON answer, and an error as the API's error body with the status's HTTP code (400 for
// InvalidArgument, 401, 403, 404, 409 for AlreadyExists and FailedPrecondition, …).
void SendJson(httplib::Response& res, int status, const Json& body);
void SendError(httplib::Response& res, const Status& st);

// Registers every route, the bearer-token check and the JSON error bodies on `http`.
// `context` must outlive the server.
void RegisterApi(httplib::Server& http, ApiContext& context);

// Registers an API route (under /api/) that answers 403, naming the scope, to a token without
// `scope` ("": any valid token does). The bearer token itself is checked for every /api/ path
// before routing (401). Handlers read who called with CurrentCaller().
using ApiHandler = std::function<void(const httplib::Request&, httplib::Response&)>;
void Route(httplib::Server& http, ApiContext& context, std::string_view method,
           const std::string& pattern, std::string_view scope, ApiHandler handler);

// Who made the request this thread is handling (only within a Route handler).
const policy::Caller& CurrentCaller();
// The caller as the principal of what it does (runs' requested_by).
Principal CallerPrincipal();

}  // namespace nightshift::server
