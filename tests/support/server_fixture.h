#pragma once

// What every end-to-end fixture needs of the server under test: starting it, calling its HTTP
// API, waiting for a run, reading its events, running the CLI against it. A mixin: a fixture
// derives from it and from ::testing::Test (or TestWithParam).

#include <httplib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "tests/support/test_support.h"

namespace nightshift::testing {

class ServerFixture {
 protected:
  // Starts `nightshift serve` on `data_dir` (an absolute path) with `extra_args`, and an
  // authenticated client for it. Use as ASSERT_TRUE(StartServer(...)).
  ::testing::AssertionResult StartServer(const std::filesystem::path& data_dir,
                                         const std::vector<std::string>& extra_args,
                                         int read_timeout_s = 60);

  // GET, POST (a JSON body) or DELETE; the parsed answer, null when it has no body. A transport
  // failure fails the test. `status`, if given, gets the HTTP status.
  Json Api(const std::string& method, const std::string& path, const std::string& body = "",
           int* status = nullptr);

  // Polls run `id` until its state is terminal or `timeout_s` passes; the last answer.
  Json WaitFinished(int64_t id, int timeout_s = 120);

  // The run's events (`limit` 0: the server's default page).
  Json Events(int64_t id, int limit = 0);

  // The CLI against the server; stdout and stderr together.
  ShellResult Cli(const std::string& args);

  // The test's files (the data dir, repositories). First, so that it goes last: after the
  // server that writes into it.
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace nightshift::testing
