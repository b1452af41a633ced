#include "cli/global_options.h"

#include <CLI/CLI.hpp>

namespace nightshift::cli {

void AddGlobalOptions(CLI::App& app, GlobalOptions& options) {
  app.add_option("--server", options.server, "URL of the Nightshift server")
      ->type_name("URL")
      ->envname("NIGHTSHIFT_SERVER")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir,
                 "the server's data directory (where the client finds admin-token)")
      ->type_name("DIR")
      ->envname("NIGHTSHIFT_DATA_DIR")
      ->capture_default_str();
}

}  // namespace nightshift::cli
