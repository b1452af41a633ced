#pragma once

// Slack's slash command, a trigger from a phone: `/nightshift fix the flaky login test in
// acme/app`. The request signature check and the command as a TriggerEvent (docs/triggers.md).

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"
#include "triggers/webhook_event.h"

namespace nightshift::triggers {

// How far a request's X-Slack-Request-Timestamp may be from now: older ones are replays.
inline constexpr std::chrono::seconds kSlackMaxSkew{300};

// Verifies X-Slack-Signature ("v0=" and hex HMAC-SHA256 of "v0:TIMESTAMP:BODY" with the app's
// signing secret) over the raw body, in constant time, and that X-Slack-Request-Timestamp is
// within kSlackMaxSkew of `now`. Unauthenticated with the reason otherwise.
Status VerifySlackSignature(std::string_view signing_secret, std::string_view timestamp_header,
                            std::string_view body, std::string_view signature_header,
                            std::chrono::sys_seconds now);

// A slash command's form fields (the HTTP server has decoded the form body) as an event of type
// "slash_command": `text`, `command`, `user` (user_name), `user_id`, `channel` (channel_id),
// `team` (team_id), `response_url`, and the item "slack:CHANNEL". A text ending in
// "in OWNER/NAME" names the repository, and `task` is the text before it; otherwise both are
// empty and the router answers with the usage. InvalidArgument when `command` or `user_id` is
// missing.
StatusOr<TriggerEvent> ParseSlackCommand(const std::multimap<std::string, std::string>& form);

}  // namespace nightshift::triggers
