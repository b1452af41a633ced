#include "triggers/template.h"

#include <algorithm>

#include "core/shell.h"

namespace nightshift::triggers {
namespace {

constexpr std::string_view kOpen = "{{";
constexpr std::string_view kClose = "}}";
constexpr std::string_view kPrefix = "event.";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

StatusOr<Template> Template::Parse(std::string_view text, const std::vector<std::string>& fields,
                                   std::string_view what) {
  Template t;
  std::string literal;
  auto error = [&](std::string_view why) { return InvalidArgumentError(StrCat(what, ": ", why)); };
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find(kOpen, at);
    if (open == std::string_view::npos) {
      literal.append(text.substr(at));
      break;
    }
    literal.append(text.substr(at, open - at));
    if (text.substr(open, 4) == "{{{{") {  // an escaped "{{"
      literal.append(kOpen);
      at = open + 4;
      continue;
    }
    const size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) {
      return error(StrCat("'{{' at offset ", open, " is never closed with '}}'"));
    }
    const std::string_view inside = Trim(text.substr(open + 2, close - open - 2));
    if (inside.empty()) return error(StrCat("an empty placeholder at offset ", open));
    if (inside.substr(0, kPrefix.size()) != kPrefix || inside.size() == kPrefix.size()) {
      return error(StrCat("'{{", inside, "}}' must name a field of the event: {{event.NAME}}"));
    }
    const std::string name(inside.substr(kPrefix.size()));
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
      return error(StrCat("'{{", inside, "}}': the event has no field '", name,
                          "' (it has: ", Join(fields), ")"));
    }
    if (!literal.empty()) t.pieces_.push_back({false, std::move(literal)});
    literal.clear();
    t.pieces_.push_back({true, name});
    if (std::find(t.fields_.begin(), t.fields_.end(), name) == t.fields_.end()) {
      t.fields_.push_back(name);
    }
    at = close + kClose.size();
  }
  if (!literal.empty()) t.pieces_.push_back({false, std::move(literal)});
  return t;
}

StatusOr<std::string> Template::Render(const std::map<std::string, std::string>& values,
                                       Quoting quoting) const {
  std::string out;
  for (const Piece& piece : pieces_) {
    if (!piece.is_field) {
      out += piece.text;
      continue;
    }
    auto it = values.find(piece.text);
    if (it == values.end()) {
      return FailedPreconditionError(StrCat("the event has no value for '", piece.text, "'"));
    }
    if (quoting == Quoting::kShell && it->second.find('\0') != std::string::npos) {
      return FailedPreconditionError(
          StrCat("the event's '", piece.text, "' holds a NUL byte, which a recipe cannot carry"));
    }
    out += quoting == Quoting::kShell ? ShellQuote(it->second) : it->second;
  }
  return out;
}

}  // namespace nightshift::triggers
