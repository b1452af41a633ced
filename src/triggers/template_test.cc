#include "triggers/template.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/test_support.h"

namespace nightshift::triggers {
namespace {

const std::vector<std::string> kFields = {"branch", "workflow", "comment.body"};

TEST(Template, FieldsAreCheckedAtLoadAndFilledAtFire) {
  auto t = Template::Parse("CI failed on {{event.branch}} ({{ event.workflow }}); {{event.branch}}",
                           kFields, "agent ci-fixer: task");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->fields(), (std::vector<std::string>{"branch", "workflow"}));
  auto text = t->Render({{"branch", "main"}, {"workflow", "build"}}, Quoting::kNone);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "CI failed on main (build); main");
  // No placeholders, an escaped "{{", and a lone "}}" are text.
  EXPECT_EQ(Template::Parse("plain }} text {{{{not a field}}", kFields, "t")
                ->Render({}, Quoting::kNone)
                .value(),
            "plain }} text {{not a field}}");
}

TEST(Template, BadTemplatesNameTheTemplateAndTheReason) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"fix {{event.brnach}}",
            "agent x: task: '{{event.brnach}}': the event has no field 'brnach' (it has: branch, "
            "workflow, comment.body)"},
           {"fix {{event.branch", "agent x: task: '{{' at offset 4 is never closed with '}}'"},
           {"fix {{ }}", "agent x: task: an empty placeholder at offset 4"},
           {"fix {{branch}}",
            "agent x: task: '{{branch}}' must name a field of the event: {{event.NAME}}"},
           {"fix {{event.}}",
            "agent x: task: '{{event.}}' must name a field of the event: {{event.NAME}}"},
       }) {
    auto t = Template::Parse(c.text, kFields, "agent x: task");
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().message(), c.error) << c.text;
  }
}

TEST(Template, AMissingValueAtFireIsAnErrorNotAnEmptyString) {
  auto t = Template::Parse("{{event.workflow}}", kFields, "t").value();
  auto text = t.Render({{"branch", "main"}}, Quoting::kNone);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(), "the event has no value for 'workflow'");
}

// A webhook's values are hostile: rendered into a recipe, each stays one string for the shell.
TEST(Template, HostileValuesInARecipeStayStrings) {
  testing::TempDir dir;
  const std::string marker = (dir.path() / "pwned").string();
  auto t = Template::Parse("printf '%s|' {{event.branch}} {{event.comment.body}}", kFields,
                           "agent x: recipe")
               .value();
  for (const std::string& hostile : std::vector<std::string>{
           "$(touch " + marker + ")", "`touch " + marker + "`", "'; touch " + marker + "; '",
           "x\ntouch " + marker, "a'b\"c\\d", "--help", "*", "$HOME", "", "'", "\\'"}) {
    auto recipe = t.Render({{"branch", hostile}, {"comment.body", "ok"}}, Quoting::kShell);
    ASSERT_TRUE(recipe.ok()) << hostile;
    auto run = testing::Shell(*recipe);
    EXPECT_EQ(run.exit_code, 0) << *recipe;
    EXPECT_EQ(run.output, hostile + "|ok|") << *recipe;
    EXPECT_FALSE(std::filesystem::exists(marker)) << *recipe;
  }
  auto nul =
      t.Render({{"branch", std::string("a\0b", 3)}, {"comment.body", "ok"}}, Quoting::kShell);
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.status().message(),
            "the event's 'branch' holds a NUL byte, which a recipe cannot carry");
  // In a task (text for the model) the same values go in as they are.
  EXPECT_EQ(t.Render({{"branch", "$(x)"}, {"comment.body", "'"}}, Quoting::kNone).value(),
            "printf '%s|' $(x) '");
}

}  // namespace
}  // namespace nightshift::triggers
