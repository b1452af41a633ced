#include "triggers/slack.h"

#include <charconv>

namespace nightshift::triggers {
namespace {

std::string First(const std::multimap<std::string, std::string>& form, const std::string& key) {
  auto it = form.find(key);
  return it == form.end() ? "" : it->second;
}

bool IsRepositoryName(std::string_view name) {
  const size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status VerifySlackSignature(std::string_view signing_secret, std::string_view timestamp_header,
                            std::string_view body, std::string_view signature_header,
                            std::chrono::sys_seconds now) {
  int64_t timestamp = 0;
  auto [end, error] = std::from_chars(timestamp_header.data(),
                                      timestamp_header.data() + timestamp_header.size(), timestamp);
  if (timestamp_header.empty() || error != std::errc() ||
      end != timestamp_header.data() + timestamp_header.size()) {
    return UnauthenticatedError("missing or malformed X-Slack-Request-Timestamp");
  }
  // Compared against bounds made from our clock: no arithmetic on the sender's number, which
  // may be anything an int64 holds.
  const int64_t now_s = now.time_since_epoch().count();
  if (timestamp < now_s - kSlackMaxSkew.count() || timestamp > now_s + kSlackMaxSkew.count()) {
    return UnauthenticatedError(StrCat("X-Slack-Request-Timestamp ", timestamp, " is more than ",
                                       kSlackMaxSkew.count(), " s from the server's clock (", now_s,
                                       "): a replay, or a wrong clock"));
  }
  return VerifyHmacSha256(signing_secret, StrCat("v0:", timestamp_header, ":", body),
                          "X-Slack-Signature", "v0=", signature_header);
}

StatusOr<TriggerEvent> ParseSlackCommand(const std::multimap<std::string, std::string>& form) {
  TriggerEvent event{.source = "slack", .type = "slash_command"};
  auto& fields = event.fields;
  fields["command"] = First(form, "command");
  fields["text"] = First(form, "text");
  fields["user"] = First(form, "user_name");
  fields["user_id"] = First(form, "user_id");
  fields["channel"] = First(form, "channel_id");
  fields["team"] = First(form, "team_id");
  fields["response_url"] = First(form, "response_url");
  if (fields["command"].empty() || fields["user_id"].empty()) {
    return InvalidArgumentError("slack: not a slash command (no command or user_id)");
  }
  event.actor = fields["user"].empty() ? fields["user_id"] : fields["user"];
  fields["actor"] = event.actor;
  fields["action"] = "";
  // "… in owner/name": the repository; the rest is the task.
  std::string_view text = fields["text"];
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  const size_t in = text.rfind(" in ");
  fields["task"] = "";
  if (in != std::string_view::npos && IsRepositoryName(text.substr(in + 4))) {
    event.repository = std::string(text.substr(in + 4));
    fields["task"] = std::string(text.substr(0, in));
  }
  fields["repository"] = event.repository;
  event.item = StrCat("slack:", fields["channel"]);
  return event;
}

}  // namespace nightshift::triggers
