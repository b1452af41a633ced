#include "api/events.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

namespace nightshift::api {
namespace {

// docs/api.md documents run events under "### Event kinds": a table with a row per kind
//   | `phase` | runner | a phase of the run started or ended |
// and then a section per kind, "#### `phase`", with a row per field, nested ones by their path:
//   | `duration_ms` | integer, may be absent | how long it took, at its end |
//   | `files[].path` | string | repository-relative |
struct ApiDoc {
  std::map<std::string, std::string> kinds;                // kind → its row in the table
  std::map<std::string, std::vector<std::string>> fields;  // kind → the rows of its section
};

ApiDoc ReadApiDoc() {
  std::ifstream file(DOCS_DIR "/api.md");
  EXPECT_TRUE(file.good()) << "cannot read " << DOCS_DIR "/api.md";
  ApiDoc doc;
  std::string line;
  bool in_events = false;
  std::string kind;  // of the section we are in
  while (std::getline(file, line)) {
    if (line.starts_with("## ") || line.starts_with("### ")) {
      in_events = line == "### Event kinds";
      kind.clear();
      continue;
    }
    if (!in_events) continue;
    if (line.starts_with("#### `") && line.size() > 7) {
      kind = line.substr(6, line.find('`', 6) - 6);
      doc.fields[kind];
    } else if (line.starts_with("| `")) {
      if (kind.empty()) {
        doc.kinds[line.substr(3, line.find('`', 3) - 3)] = line;
      } else {
        doc.fields[kind].push_back(line);
      }
    }
  }
  return doc;
}

std::string TypeText(const FieldInfo& field) {
  switch (field.presence) {
    case Presence::kOmitted:
      return field.type + ", may be absent";
    case Presence::kNullable:
      return field.type + " or null";
    default:
      return field.type;
  }
}

// "| `path` | type" of each field and the fields inside it.
void FieldRows(const std::vector<FieldInfo>& fields, const std::string& prefix,
               std::vector<std::pair<std::string, const FieldInfo*>>& out) {
  for (const FieldInfo& f : fields) {
    const std::string path = prefix + f.name;
    out.emplace_back(StrCat("| `", path, "` | ", TypeText(f)), &f);
    FieldRows(f.fields, path + (f.type.starts_with("[") ? "[]." : "."), out);
  }
}

// The documentation of `info` as docs/api.md writes it, for a failure message to copy from.
std::string Suggested(const EventKindInfo& info) {
  std::string out =
      StrCat("| `", info.kind, "` | ", info.source, " | ", info.meaning, " |\n\n#### `", info.kind,
             "`\n\n| field | type | meaning |\n|---|---|---|\n");
  std::vector<std::pair<std::string, const FieldInfo*>> rows;
  FieldRows(info.fields, "", rows);
  for (const auto& [row, field] : rows) out += StrCat(row, " | ", field->meaning, " |\n");
  return out;
}

TEST(EventCatalogue, EveryKindAndFieldIsDocumentedInApiMd) {
  const ApiDoc doc = ReadApiDoc();
  for (const EventKindInfo& info : EventCatalogue()) {
    const std::string kind(info.kind);
    if (!doc.kinds.contains(kind) || !doc.fields.contains(kind)) {
      ADD_FAILURE() << "docs/api.md (### Event kinds) does not document the kind `" << kind
                    << "`: it needs a row in the table and a section, for example\n"
                    << Suggested(info);
      continue;
    }
    std::vector<std::pair<std::string, const FieldInfo*>> rows;
    FieldRows(info.fields, "", rows);
    const std::vector<std::string>& documented = doc.fields.at(kind);
    for (const auto& [row, field] : rows) {
      EXPECT_TRUE(std::any_of(documented.begin(), documented.end(),
                              [&](const std::string& line) { return line.starts_with(row); }))
          << "docs/api.md's section on `" << kind << "` has no row \"" << row
          << " | ...\"; the kind's documentation could be\n"
          << Suggested(info);
    }
    EXPECT_EQ(documented.size(), rows.size())
        << "docs/api.md's section on `" << kind << "` has " << documented.size()
        << " field rows; the catalogue has " << rows.size() << " fields";
  }
}

TEST(EventCatalogue, DocumentsNoKindItDoesNotHave) {
  const ApiDoc doc = ReadApiDoc();
  for (const auto& [kind, row] : doc.kinds) {
    EXPECT_NE(FindEventKind(kind), nullptr)
        << "docs/api.md documents `" << kind << "`, which is not in api/events.h";
  }
  for (const auto& [kind, rows] : doc.fields) {
    EXPECT_NE(FindEventKind(kind), nullptr)
        << "docs/api.md documents `" << kind << "`, which is not in api/events.h";
  }
}

TEST(EventCatalogue, KindsAreUniqueAndDescribed) {
  std::set<std::string_view> kinds;
  for (const EventKindInfo& info : EventCatalogue()) {
    EXPECT_TRUE(kinds.insert(info.kind).second) << info.kind;
    EXPECT_FALSE(info.meaning.empty()) << info.kind;
    EXPECT_TRUE(info.source == "store" || info.source == "runner" || info.source == "agent" ||
                info.source == "control plane")
        << info.kind;
    EXPECT_FALSE(info.fields.empty()) << info.kind;
    for (const FieldInfo& field : info.fields) EXPECT_FALSE(field.meaning.empty()) << field.name;
  }
  EXPECT_EQ(kinds.size(), std::tuple_size_v<EventPayloads>);
  EXPECT_EQ(FindEventKind("phase")->fields.size(), 3u);
  EXPECT_EQ(FindEventKind("no_such_kind"), nullptr);
}

// Every payload reads back what it writes.
template <typename... E>
void ExpectRoundTrips(std::tuple<E...>*) {
  (
      [] {
        E payload{};
        auto back = FromJson<E>(ToJson(payload));
        ASSERT_TRUE(back.ok()) << E::kKind << ": " << back.status();
        EXPECT_EQ(ToJson(*back), ToJson(payload)) << E::kKind;
      }(),
      ...);
}

TEST(EventCatalogue, PayloadsRoundTrip) { ExpectRoundTrips(static_cast<EventPayloads*>(nullptr)); }

TEST(EventRecord, CarriesTheKindAndThePayload) {
  EventRecord started = PhaseEvent{.name = "fetch", .status = "started"};
  EXPECT_EQ(started.kind(), "phase");
  EXPECT_EQ(started.Serialize(), R"({"name":"fetch","status":"started"})");
  EventRecord ended = PhaseEvent{.name = "fetch", .status = "ok", .duration_ms = 12};
  EXPECT_EQ(ended.Serialize(), R"({"duration_ms":12,"name":"fetch","status":"ok"})");

  EventRecord state = StateEvent{.to = "queued"};
  EXPECT_EQ(state.Serialize(), R"({"attempt":0,"to":"queued"})");
}

TEST(EventRecord, ReplacesInvalidUtf8InOutput) {
  EventRecord log = LogEvent{.stream = "stdout",
                             .line =
                                 "a\xff"
                                 "b"};
  EXPECT_EQ(log.Serialize(),
            "{\"line\":\"a\xEF\xBF\xBD"
            "b\",\"stream\":\"stdout\"}");
}

}  // namespace
}  // namespace nightshift::api
