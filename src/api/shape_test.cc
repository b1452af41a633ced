#include "api/shape.h"

#include <gtest/gtest.h>

#include "api/resources.h"
#include "core/clock.h"

namespace nightshift::api {
namespace {

Json Parse(std::string_view text) { return Json::parse(text); }

// A run as the server writes it (server/api.cc), every kind of field included.
constexpr std::string_view kRunJson = R"({
  "id": 42, "repo": "app", "ref": "main", "kind": "recipe", "recipe": "make test",
  "task": "", "model": "", "requested_by": "admin", "trigger": "", "state": "running",
  "attempt": 1,
  "max_attempts": 3,
  "timeout_seconds": 3600, "exit_code": null, "reason": "", "commit": "3f1c",
  "created_at": "2026-11-25T12:00:00.000Z", "started_at": "2026-11-25T12:00:01.250Z",
  "finished_at": null, "last_event_seq": 17,
  "lease": {"owner": "embedded@host", "expires_at": "2026-11-25T12:00:16.250Z"},
  "attempts": [{"number": 1, "runner": "embedded@host", "started_at": "2026-11-25T12:00:01.250Z",
                "ended_at": null, "outcome": "", "reason": ""}]
})";

TEST(Shape, ReadsAndWritesARunExactlyAsTheServerSendsIt) {
  auto run = FromJson<api::Run>(Parse(kRunJson));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->id, 42);
  EXPECT_EQ(run->state, "running");
  EXPECT_FALSE(run->exit_code.has_value());
  ASSERT_TRUE(run->started_at.has_value());
  EXPECT_EQ(FormatTimestampMs(run->started_at->ms), "2026-11-25T12:00:01.250Z");
  ASSERT_TRUE(run->lease.has_value());
  EXPECT_EQ(run->lease->owner, "embedded@host");
  ASSERT_TRUE(run->attempts.has_value());
  ASSERT_EQ(run->attempts->size(), 1u);
  EXPECT_FALSE((*run->attempts)[0].ended_at.has_value());
  EXPECT_EQ(ToJson(*run), Parse(kRunJson));
}

TEST(Shape, OmitsEmptyOptionalsAndWritesNullablesAsNull) {
  api::Run run{.id = 7, .created_at = {1'700'000'000'000}};
  Json json = ToJson(run);
  EXPECT_FALSE(json.contains("attempts"));  // omitted when empty
  ASSERT_TRUE(json.contains("lease"));      // nullable
  EXPECT_TRUE(json["lease"].is_null());
  EXPECT_TRUE(json["exit_code"].is_null());
  EXPECT_EQ(json["created_at"], "2023-11-14T22:13:20.000Z");
  run.exit_code = 3;
  EXPECT_EQ(ToJson(run)["exit_code"], 3);
}

TEST(Shape, IgnoresUnknownFieldsAndKeepsDefaultsForAbsentOrNullOnes) {
  auto run = FromJson<api::Run>(Parse(R"({"id": 1, "colour": "blue", "state": null,
                                     "lease": null, "future": {"a": [1]}})"));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->id, 1);
  EXPECT_EQ(run->state, "");
  EXPECT_FALSE(run->lease.has_value());
}

TEST(Shape, IsStrictOnTypesAndNamesTheField) {
  struct Case {
    std::string_view json;
    std::string_view message;
  };
  for (const Case& c : {
           Case{R"({"id": 1, "repo": 5})", "'repo' must be a string"},
           Case{R"({"id": "1"})", "'id' must be an integer"},
           Case{R"({"id": 1.5})", "'id' must be an integer"},
           Case{R"({"id": 1, "attempt": 4294967296})", "'attempt' must be a smaller integer"},
           Case{R"({"id": 1, "lease": {"owner": false}})", "'lease.owner' must be a string"},
           Case{R"({"id": 1, "lease": []})", "'lease' must be an object"},
           Case{R"({"id": 1, "attempts": [{"number": 1}, {"number": "2"}]})",
                "'attempts[1].number' must be an integer"},
           Case{R"({"id": 1, "created_at": "yesterday"})",
                "'created_at' must be a timestamp (\"2026-11-25T12:00:00.000Z\")"},
           Case{R"({"repo": "app"})", "'id' is missing"},
           Case{R"({"id": null})", "'id' is missing"},
       }) {
    auto run = FromJson<api::Run>(Parse(c.json));
    EXPECT_TRUE(IsInvalidArgument(run.status())) << c.json;
    EXPECT_EQ(run.status().message(), c.message) << c.json;
  }
  EXPECT_EQ(FromJson<api::Run>(Json::array()).status().message(), "expected a JSON object");
}

TEST(Shape, ReadsAnyNumberAsADouble) {
  struct Cost {
    double usd = 0;
    static constexpr auto Fields() { return std::tuple{Field("usd", &Cost::usd, "")}; }
  };
  EXPECT_EQ(FromJson<Cost>(Parse(R"({"usd": 2})"))->usd, 2.0);
  EXPECT_EQ(FromJson<Cost>(Parse(R"({"usd": 0.25})"))->usd, 0.25);
  EXPECT_FALSE(FromJson<Cost>(Parse(R"({"usd": "1"})")).ok());
}

TEST(Shape, DescribesFieldsWithTypesAndNestedFields) {
  std::vector<FieldInfo> fields = Describe<api::Run>();
  auto find = [&](std::string_view name) -> const FieldInfo& {
    for (const FieldInfo& f : fields) {
      if (f.name == name) return f;
    }
    ADD_FAILURE() << "no field " << name;
    static const FieldInfo kNone;
    return kNone;
  };
  EXPECT_EQ(fields.front().name, "id");
  EXPECT_EQ(find("id").presence, Presence::kRequired);
  EXPECT_EQ(find("repo").type, "string");
  EXPECT_EQ(find("exit_code").type, "integer");
  EXPECT_EQ(find("exit_code").presence, Presence::kNullable);
  EXPECT_EQ(find("created_at").type, "timestamp");
  EXPECT_EQ(find("lease").type, "object");
  ASSERT_EQ(find("lease").fields.size(), 2u);
  EXPECT_EQ(find("lease").fields[0].name, "owner");
  EXPECT_EQ(find("attempts").type, "[object]");
  EXPECT_EQ(find("attempts").presence, Presence::kOmitted);
}

TEST(ParseTimestampMs, ReadsWhatFormatTimestampMsWrites) {
  for (int64_t ms : {int64_t{0}, int64_t{1'700'000'000'123}, int64_t{1'795'000'000'999}}) {
    EXPECT_EQ(ParseTimestampMs(FormatTimestampMs(ms)), ms);
  }
  EXPECT_EQ(ParseTimestampMs("2026-11-25T12:00:00Z"), ParseTimestampMs("2026-11-25T12:00:00.000Z"));
  for (std::string_view bad :
       {"", "2026-11-25", "2026-11-25T12:00:00", "2026-11-25T12:00:00.1Z", "2026-13-25T12:00:00Z",
        "2026-11-25 12:00:00Z", "2026-11-25T12:00:00.000Zx", "x026-11-25T12:00:00Z"}) {
    EXPECT_FALSE(ParseTimestampMs(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace nightshift::api
