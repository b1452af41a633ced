#pragma once

// The triggers over HTTP (docs/triggers.md, docs/api.md):
//   POST /hooks/github, /hooks/gitlab, /hooks/slack, /hooks/generic/NAME — unauthenticated by
//     token, each checked by its source's signature; a delivery is stored before the answer
//     (202), a redelivery answered 200 and counted, a bad signature 401 with nothing stored.
//   GET /api/v1/events[?limit=N&before=ID], GET /api/v1/events/ID,
//   POST /api/v1/events/ID/replay, GET /api/v1/schedules, GET /api/v1/agents,
//   POST /api/v1/repositories/NAME/agents/refresh — behind the API's token.

#include "api/resources.h"
#include "core/clock.h"
#include "server/api.h"
#include "server/repository_agents.h"
#include "server/trigger_service.h"

namespace httplib {
class Server;
}

namespace nightshift::server {

// `triggers`, `repository_agents` and `clock` must outlive the server.
void RegisterTriggerRoutes(httplib::Server& http, ApiContext& api, TriggerService& triggers,
                           RepositoryAgents& repository_agents, const Clock& clock);

// A stored event as the API shows it.
api::IncomingEvent IncomingOf(const store::IncomingEvent& event);
Json IncomingJson(const store::IncomingEvent& event);

}  // namespace nightshift::server
