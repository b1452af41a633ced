#pragma once

// Quoting for /bin/sh: `s` as one single-quoted word, whatever it holds.

#include <string>
#include <string_view>

namespace nightshift {

inline std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace nightshift
