#include "api/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nightshift::api {
namespace {

TEST(StatusFromHttpError, UsesTheErrorBody) {
  Status status = StatusFromHttpError(
      404, R"({"error": {"code": "not_found", "message": "unknown repository 'billing'"}})");
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "unknown repository 'billing'");

  status = StatusFromHttpError(
      409, R"({"error": {"code": "already_exists", "message": "repository 'app' exists"}})");
  EXPECT_EQ(status.code(), StatusCode::kAlreadyExists);
}

TEST(StatusFromHttpError, DescribesOtherBodies) {
  Status status = StatusFromHttpError(502, "<html>Bad Gateway</html>\nmore");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "the server answered HTTP 502: <html>Bad Gateway</html>");
}

TEST(UrlEncode, EscapesAllButUnreserved) {
  EXPECT_EQ(UrlEncode("app-1.2_x~"), "app-1.2_x~");
  EXPECT_EQ(UrlEncode("a/b?c d"), "a%2Fb%3Fc%20d");
  EXPECT_EQ(UrlEncode(".."), "%2E%2E");
}

TEST(ApiClient, RejectsNonHttpUrls) {
  ApiClient::Options options;
  options.base_url = "ftp://example.com";
  EXPECT_TRUE(IsInvalidArgument(ApiClient::Create(options).status()));
}

// A server on a free port that answers the events endpoint with `handler`.
class EventServer {
 public:
  explicit EventServer(httplib::Server::Handler handler) {
    server_.Get(R"(/api/v1/runs/(\d+)/events)", std::move(handler));
    server_.Get("/api/v1/runs/404", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content(R"({"error": {"code": "not_found", "message": "unknown run 404"}})",
                      "application/json");
    });
    server_.Get("/api/v1/runs/7", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"id": 7, "state": "running", "lease": {"owner": 1}})",
                      "application/json");
    });
    server_.Get("/api/v1/runs/8", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"id": 8, "state": "running", "colour": "blue"})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~EventServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

std::string LogFrame(int seq, const std::string& line) {
  return "id: " + std::to_string(seq) + "\nevent: log\ndata: {\"seq\":" + std::to_string(seq) +
         ",\"kind\":\"log\",\"data\":{\"stream\":\"stdout\",\"line\":\"" + line + "\"}}\n\n";
}

ApiClient::Options FastOptions(const std::string& url) {
  ApiClient::Options options;
  options.base_url = url;
  options.token = "secret";
  options.reconnect_backoff = std::chrono::milliseconds(10);
  options.max_reconnects = 3;
  return options;
}

TEST(ApiClient, StreamEventsResumesAfterADroppedStream) {
  std::mutex mu;
  std::vector<std::string> last_event_ids;
  EventServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::string body;
    {
      std::lock_guard lock(mu);
      last_event_ids.push_back(req.get_header_value("Last-Event-ID"));
      EXPECT_EQ(req.get_header_value("Authorization"), "Bearer secret");
      if (last_event_ids.size() == 1) {
        body = LogFrame(1, "one") + ": keep-alive\n\n" + LogFrame(2, "two");  // then drops
      } else {
        // Resumed: repeats event 2 (which the client must drop), sends 3 and the end.
        body = LogFrame(2, "two") + LogFrame(3, "three") +
               "event: end\ndata: {\"state\":\"succeeded\"}\n\n";
      }
    }
    res.set_chunked_content_provider("text/event-stream", [body](size_t, httplib::DataSink& sink) {
      sink.write(body.data(), body.size());
      sink.done();
      return true;
    });
  });
  auto api = ApiClient::Create(FastOptions(server.url()));
  ASSERT_TRUE(api.ok()) << api.status();

  std::vector<std::string> lines;
  auto state = (*api)->StreamEvents(5, 0, [&](const api::Event& event) {
    EXPECT_EQ(event.kind, "log");
    lines.push_back(std::to_string(event.seq) + ":" + event.data["line"].get<std::string>());
    return OkStatus();
  });
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, "succeeded");
  EXPECT_EQ(lines, (std::vector<std::string>{"1:one", "2:two", "3:three"}));
  std::lock_guard lock(mu);
  EXPECT_EQ(last_event_ids, (std::vector<std::string>{"", "2"}));
}

TEST(ApiClient, StreamEventsGivesUpAfterBoundedReconnects) {
  std::atomic<int> connections = 0;
  EventServer server([&](const httplib::Request&, httplib::Response& res) {
    ++connections;
    res.set_content(": nothing\n\n", "text/event-stream");
  });
  auto api = ApiClient::Create(FastOptions(server.url()));
  ASSERT_TRUE(api.ok()) << api.status();
  auto state = (*api)->StreamEvents(5, 0, [](const api::Event&) { return OkStatus(); });
  EXPECT_TRUE(IsUnavailable(state.status())) << state.status();
  EXPECT_EQ(connections.load(), 4);  // the first connection and 3 reconnects
}

TEST(ApiClient, StreamEventsReportsServerErrorsAtOnce) {
  EventServer server([](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error": {"code": "not_found", "message": "unknown run 5"}})",
                    "application/json");
  });
  auto api = ApiClient::Create(FastOptions(server.url()));
  ASSERT_TRUE(api.ok()) << api.status();
  auto state = (*api)->StreamEvents(5, 0, [](const api::Event&) { return OkStatus(); });
  EXPECT_TRUE(IsNotFound(state.status())) << state.status();
  EXPECT_EQ(state.status().message(), "unknown run 5");
}

TEST(ApiClient, GetMapsErrorBodies) {
  EventServer server([](const httplib::Request&, httplib::Response&) {});
  auto api = ApiClient::Create(FastOptions(server.url() + "/"));
  ASSERT_TRUE(api.ok()) << api.status();
  auto run = (*api)->Get("/api/v1/runs/404");
  EXPECT_TRUE(IsNotFound(run.status())) << run.status();
  EXPECT_EQ(run.status().message(), "unknown run 404");
}

TEST(ApiClient, TypedCallsReadTheShapeAndNameWhatIsMalformed) {
  EventServer server([](const httplib::Request&, httplib::Response&) {});
  auto api = ApiClient::Create(FastOptions(server.url()));
  ASSERT_TRUE(api.ok()) << api.status();
  auto run = (*api)->GetRun(8);  // an unknown field is ignored
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->id, 8);
  EXPECT_EQ(run->state, "running");
  auto malformed = (*api)->GetRun(7);
  EXPECT_EQ(malformed.status().code(), StatusCode::kInternal);
  EXPECT_EQ(malformed.status().message(),
            "the server's answer to GET /api/v1/runs/7 is malformed: 'lease.owner' must be a "
            "string");
  auto missing = (*api)->GetRun(404);
  EXPECT_TRUE(IsNotFound(missing.status())) << missing.status();
  EXPECT_EQ(missing.status().message(), "unknown run 404");
}

TEST(ApiClient, UnreachableServerSaysSo) {
  // A port that was free a moment ago and has nobody listening now.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  int port = ntohs(address.sin_port);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto api = ApiClient::Create(FastOptions(url));
  ASSERT_TRUE(api.ok()) << api.status();
  auto answer = (*api)->Get("/api/v1/repositories");
  EXPECT_TRUE(IsUnavailable(answer.status()));
  EXPECT_EQ(answer.status().message().rfind("cannot reach the Nightshift server at " + url, 0), 0u)
      << answer.status();
  auto state = (*api)->StreamEvents(1, 0, [](const api::Event&) { return OkStatus(); });
  EXPECT_TRUE(IsUnavailable(state.status())) << state.status();
}

}  // namespace
}  // namespace nightshift::api
