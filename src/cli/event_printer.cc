#include "cli/event_printer.h"

#include "api/events.h"
#include "cli/output.h"

namespace nightshift::cli {
namespace {

// Where an event's lines go: stdout for a run's own output, stderr for the rest, in order.
class Terminal {
 public:
  Terminal(std::ostream& out, std::ostream& err, bool live) : out_(out), err_(err), live_(live) {}

  void Out(const std::string& line) {
    out_ << line << '\n';
    if (live_) out_.flush();
  }
  void Err(const std::string& line) {
    out_.flush();  // keep the order of interleaved stdout and stderr lines
    err_ << line << '\n';
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  bool live_;
};

// --- One printer per kind ---

void ShowLog(const api::LogEvent& e, Terminal& t) {
  if (e.stream == "stderr") {
    t.Err(e.line);
  } else {
    t.Out(e.line);
  }
}

void ShowState(const api::StateEvent& e, Terminal& t) {
  std::string line = e.from ? StrCat("[state] ", Or(*e.from, "?"), " -> ", Or(e.to, "?"))
                            : StrCat("[state] ", Or(e.to, "?"));
  std::vector<std::string> details;
  if (e.to == "preparing" && e.attempt > 0) details.push_back(StrCat("attempt ", e.attempt));
  if (e.exit_code) details.push_back(StrCat("exit code ", *e.exit_code));
  if (!details.empty()) {
    line += " (";
    for (size_t i = 0; i < details.size(); ++i) line += (i ? ", " : "") + details[i];
    line += ")";
  }
  if (e.reason && !e.reason->empty()) line += ": " + OneLine(*e.reason);
  t.Err(line);
}

void ShowPhase(const api::PhaseEvent& e, Terminal& t) {
  std::string line = StrCat("[phase] ", Or(e.name, "?"), " ", e.status);
  if (e.duration_ms) line += StrCat(" (", *e.duration_ms, " ms)");
  t.Err(line);
}

void ShowCheckout(const api::CheckoutEvent& e, Terminal& t) {
  t.Err(StrCat("[checkout] ", Or(e.commit), " (", Or(e.ref, "HEAD"), ")"));
}

void ShowEnvironment(const api::EnvironmentEvent& e, Terminal& t) {
  std::string line = StrCat("[environment] prebuild ", Or(e.prebuild, "none"));
  if (!e.prebuild_id.empty()) line += " (" + e.prebuild_id + ")";
  t.Err(line);
}

void ShowResult(const api::ResultEvent& e, Terminal& t) {
  if (!e.summary.empty()) t.Err(StrCat("[result] ", e.summary));
  // The diff itself is in the event (--json, the API); here, which files changed.
  if (e.files && !e.files->empty()) {
    std::string names;
    for (const api::ChangedFile& f : *e.files) {
      names += (names.empty() ? "" : ", ") + Or(f.path, "?") + " (+" +
               Or(f.added.value_or(""), "?") + " -" + Or(f.removed.value_or(""), "?") + ")";
    }
    t.Err(StrCat("[result] ", e.files->size(), " file(s) changed: ", OneLine(names, 400)));
  }
}

void ShowPolicy(const api::PolicyEvent& e, Terminal& t) {
  t.Err(StrCat("[policy] blocked: ", Dump(api::ToJson(e))));
}

void ShowChangeRequest(const api::ChangeRequestEvent& e, Terminal& t) {
  t.Err(StrCat("[change request] ", e.id, e.updated ? " updated: " : " opened: ", Or(e.branch),
               " -> ", Or(e.base_branch)));
}

void ShowModelResponse(const api::ModelResponseEvent& e, Terminal& t) {
  if (e.error && !e.error->empty()) {
    t.Err(StrCat("[model] step ", e.step, ": ", OneLine(*e.error)));
    return;
  }
  if (e.text && !e.text->empty()) t.Err(StrCat("[model] ", OneLine(*e.text)));
  t.Err(StrCat("[model] step ", e.step, ": ", e.input_tokens.value_or(0), " in / ",
               e.output_tokens.value_or(0), " out tokens, ", e.latency_ms.value_or(0), " ms"));
}

void ShowToolCall(const api::ToolCallEvent& e, Terminal& t) {
  t.Err(StrCat("[tool] ", Or(e.name, "?"), " ", OneLine(e.arguments, 160)));
}

void ShowToolResult(const api::ToolResultEvent& e, Terminal& t) {
  t.Err(
      StrCat("[tool] ", Or(e.name, "?"), e.is_error ? " error: " : " -> ", OneLine(e.output, 160)));
}

void ShowAgentEnd(const api::AgentEndEvent& e, Terminal& t) {
  t.Err(StrCat("[agent] ", Or(e.end, "?"), " after ", e.steps, " steps, ",
               e.input_tokens + e.output_tokens, " tokens, $", Json(e.cost_usd).dump(),
               e.reason.empty() ? "" : ": " + e.reason));
}

// --- The table ---

using Printer = void (*)(std::string_view kind, const Json& data, Terminal& t);

// "[kind] <data as JSON>": unknown kinds, and payloads that do not have their kind's shape.
void ShowAsJson(std::string_view kind, const Json& data, Terminal& t) {
  t.Err(StrCat("[", OneLine(kind), "] ", Dump(data)));
}

void ShowNothing(std::string_view, const Json&, Terminal&) {}

// The payload read as its kind's shape, then shown by `show`.
template <api::EventPayload E, void (*show)(const E&, Terminal&)>
void Typed(std::string_view kind, const Json& data, Terminal& t) {
  auto event = api::FromJson<E>(data);
  if (!event.ok()) return ShowAsJson(kind, data, t);
  show(*event, t);
}

struct Entry {
  std::string_view kind;
  Printer print;
};

// One entry per kind of the catalogue (event_printer_test checks that none is missing).
constexpr Entry kPrinters[] = {
    {api::StateEvent::kKind, Typed<api::StateEvent, ShowState>},
    {api::LogEvent::kKind, Typed<api::LogEvent, ShowLog>},
    {api::PhaseEvent::kKind, Typed<api::PhaseEvent, ShowPhase>},
    {api::CheckoutEvent::kKind, Typed<api::CheckoutEvent, ShowCheckout>},
    {api::EnvironmentEvent::kKind, Typed<api::EnvironmentEvent, ShowEnvironment>},
    {api::ResultEvent::kKind, Typed<api::ResultEvent, ShowResult>},
    {api::PolicyEvent::kKind, Typed<api::PolicyEvent, ShowPolicy>},
    {api::ChangeRequestEvent::kKind, Typed<api::ChangeRequestEvent, ShowChangeRequest>},
    {api::RemoteChangeRequestEvent::kKind, ShowAsJson},
    // The request is the conversation so far: its new parts show up as responses and tool
    // results.
    {api::AgentStartEvent::kKind, ShowNothing},
    {api::ModelRequestEvent::kKind, ShowNothing},
    {api::ModelResponseEvent::kKind, Typed<api::ModelResponseEvent, ShowModelResponse>},
    {api::ToolCallEvent::kKind, Typed<api::ToolCallEvent, ShowToolCall>},
    {api::ToolResultEvent::kKind, Typed<api::ToolResultEvent, ShowToolResult>},
    {api::AgentEndEvent::kKind, Typed<api::AgentEndEvent, ShowAgentEnd>},
};

Printer PrinterFor(std::string_view kind) {
  for (const Entry& entry : kPrinters) {
    if (entry.kind == kind) return entry.print;
  }
  return ShowAsJson;
}

}  // namespace

EventPrinter::EventPrinter(bool json, bool live, std::ostream& out, std::ostream& err)
    : json_(json), live_(live), out_(out), err_(err) {}

Status EventPrinter::Print(const api::Event& event) {
  if (json_) {
    out_ << Dump(api::ToJson(event)) << '\n';
    if (live_) out_.flush();
    return OkStatus();
  }
  static const auto* const kNoData = new Json(Json::object());
  const Json& data = event.data.is_null() ? *kNoData : event.data;
  Terminal terminal(out_, err_, live_);
  PrinterFor(event.kind)(event.kind, data, terminal);
  return OkStatus();
}

std::vector<std::string_view> PrintedKinds() {
  std::vector<std::string_view> kinds;
  for (const Entry& entry : kPrinters) kinds.push_back(entry.kind);
  return kinds;
}

}  // namespace nightshift::cli
