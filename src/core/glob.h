#pragma once

// Glob patterns over untrusted text, in time linear in the text for a given pattern (an NFA
// simulation, no backtracking): a path or a command line from a run cannot make matching slow,
// whatever the pattern's stars.

#include <string_view>

namespace nightshift {

// Paths separated by '/': `*` matches within a segment, `?` one character but '/', `**`
// anything (across segments), and `**/` zero or more whole directories ("**/CODEOWNERS"
// matches "CODEOWNERS" and "a/b/CODEOWNERS"). Everything else is itself.
bool GlobMatch(std::string_view pattern, std::string_view path);

// Cedar's `like`: `*` matches any sequence of bytes ('/' and newlines included), `\*` is a
// literal star and `\\` a backslash; everything else is itself.
bool LikeMatch(std::string_view pattern, std::string_view text);

}  // namespace nightshift
