#include "core/json.h"

#include "gtest/gtest.h"

namespace nightshift {
namespace {

TEST(Json, MalformedIsInvalidArgument) {
  auto r = ParseJson("{\"a\": ");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsInvalidArgument(r.status()));
}

TEST(Json, FieldTypesAreChecked) {
  Json j = *ParseJson(R"({"name": 5, "n": "x", "ok": "yes", "k": 7})");
  EXPECT_FALSE(JsonString(j, "name").ok());
  EXPECT_FALSE(JsonInt(j, "n", 0).ok());
  EXPECT_EQ(*JsonString(j, "ok"), "yes");
  EXPECT_EQ(*JsonInt(j, "k", 0), 7);
  EXPECT_EQ(*JsonString(j, "missing", "dflt"), "dflt");
  EXPECT_EQ(*JsonInt(j, "missing", 3), 3);
}

}  // namespace
}  // namespace nightshift
