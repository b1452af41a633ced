#pragma once

// GitHub's webhooks, read as hostile data: the signature check and each event type turned into a
// TriggerEvent with the documented fields templates may name (docs/triggers.md).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "triggers/webhook_event.h"

namespace nightshift::triggers {

// Verifies `X-Hub-Signature-256` ("sha256=" and 64 hex digits) over the raw body with the
// webhook's secret, in constant time. Unauthenticated, with the reason, when it is missing,
// malformed or wrong.
Status VerifyGitHubSignature(std::string_view secret, std::string_view body,
                             std::string_view signature_header);

// The event named by `X-GitHub-Event`, from its body. nullopt when the event is not one that
// starts runs (a `ping`, a workflow run that was only requested, an unlisted action); an error
// for an unknown event type or a body without what its type must have.
StatusOr<std::optional<TriggerEvent>> ParseGitHubEvent(std::string_view event_type,
                                                       std::string_view delivery,
                                                       std::string_view body);

// The fields an event type documents, for checking templates at load; empty for an unknown type.
std::vector<std::string> GitHubEventFields(std::string_view event_type);

}  // namespace nightshift::triggers
