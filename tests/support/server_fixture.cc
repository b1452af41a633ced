#include "tests/support/server_fixture.h"

#include <chrono>
#include <thread>

#include "store/model.h"

namespace nightshift::testing {

::testing::AssertionResult ServerFixture::StartServer(const std::filesystem::path& data_dir,
                                                      const std::vector<std::string>& extra_args,
                                                      int read_timeout_s) {
  server_ = std::make_unique<ServerProcess>(data_dir, extra_args);
  if (!server_->Start()) return ::testing::AssertionFailure() << server_->error();
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  client_->set_bearer_token_auth(server_->token());
  client_->set_read_timeout(read_timeout_s, 0);
  return ::testing::AssertionSuccess();
}

Json ServerFixture::Api(const std::string& method, const std::string& path, const std::string& body,
                        int* status) {
  httplib::Result r = method == "GET"      ? client_->Get(path)
                      : method == "DELETE" ? client_->Delete(path)
                                           : client_->Post(path, body, "application/json");
  EXPECT_TRUE(r) << method << " " << path;
  if (!r) return Json();
  if (status != nullptr) *status = r->status;
  if (r->body.empty()) return Json();
  return Json::parse(r->body, nullptr, false);
}

Json ServerFixture::WaitFinished(int64_t id, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  Json run;
  while (std::chrono::steady_clock::now() < deadline) {
    run = Api("GET", "/api/v1/runs/" + std::to_string(id));
    auto state = store::ParseRunState(run.value("state", ""));
    if (state.has_value() && store::IsTerminal(*state)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return run;
}

Json ServerFixture::Events(int64_t id, int limit) {
  std::string path = "/api/v1/runs/" + std::to_string(id) + "/events?format=json";
  if (limit > 0) path += "&limit=" + std::to_string(limit);
  return Api("GET", path)["events"];
}

ShellResult ServerFixture::Cli(const std::string& args) {
  return Shell("NIGHTSHIFT_SERVER=" + server_->url() +
               " NIGHTSHIFT_DATA_DIR=" + ShellQuote(server_->data_dir().string()) + " " +
               ShellQuote(NightshiftBin()) + " " + args);
}

}  // namespace nightshift::testing
