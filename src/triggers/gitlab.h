#pragma once

// GitLab's webhooks, read as hostile data: the token check and each hook turned into a
// TriggerEvent with the documented fields templates may name (docs/triggers.md).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "triggers/webhook_event.h"

namespace nightshift::triggers {

// Compares `X-Gitlab-Token` with the webhook's token in constant time (core/secrets.h).
// Unauthenticated when it is missing or differs.
Status VerifyGitLabToken(std::string_view token, std::string_view token_header);

// The hook named by `X-Gitlab-Event` ("Pipeline Hook", "Merge Request Hook", "Note Hook",
// "Push Hook"), from its body; `delivery` is `X-Gitlab-Event-UUID`. nullopt when it starts
// nothing (a tag push, a deleted branch, a closed merge request, a note on a commit); NotFound for
// a hook Nightshift does not handle; InvalidArgument for a body without what its type must have.
StatusOr<std::optional<TriggerEvent>> ParseGitLabEvent(std::string_view hook,
                                                       std::string_view delivery,
                                                       std::string_view body);

// The fields a type ("pipeline", "merge_request", "note", "push") documents.
std::vector<std::string> GitLabEventFields(std::string_view type);

}  // namespace nightshift::triggers
