#pragma once

// `nightshift config check FILE`: reads the server's config file as `serve --config FILE` does
// (config/config.h), secrets from this process's environment included, without a server and
// without root.

#include <string>

namespace nightshift::cli {

// Prints "ok" on stdout and returns 0; or prints every error found, one line
// "nightshift: FILE:LINE:COLUMN: reason" each on stderr (a file it cannot read: one line
// "nightshift: open FILE: …"), and returns 1.
int ConfigCheck(const std::string& file);

}  // namespace nightshift::cli
