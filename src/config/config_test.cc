// The server's config file: the declarative cases in tests/config_cases (each a YAML file whose
// comments say what reading it must give; tests/support/config_cases.h), and what a good file
// reads into.

#include "config/config.h"

#include <fstream>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "tests/support/config_cases.h"
#include "tests/support/test_support.h"

namespace nightshift::config {
namespace {

std::vector<std::string> Check(const std::string& text, const Environment& environment) {
  ConfigErrors errors("nightshift.yml");
  ParseServerConfig(text, environment, errors);
  return errors.empty() ? std::vector<std::string>{"ok"} : errors.Lines();
}

TEST(ConfigCases, EachFileGivesWhatItsCommentsSay) {
  const std::vector<testing::ConfigCase> cases = testing::LoadConfigCases(CONFIG_CASES_DIR);
  // The runner must not pass by finding nothing.
  ASSERT_GE(cases.size(), 20u) << CONFIG_CASES_DIR;
  for (const testing::ConfigCase& c : cases) {
    ASSERT_FALSE(c.want.empty()) << c.name << ".yml has no '# want:' line";
    EXPECT_EQ(Check(c.text, c.environment), c.want) << c.name << ".yml";
  }
}

TEST(ServerConfig, AGoodFileReadsIntoEveryPart) {
  const std::string text =
      "review_repositories:\n"  // before review: it still starts from review
      "  payments:\n"
      "    max_lines: 500\n"
      "models:\n"
      "  default:\n"
      "    provider: anthropic\n"
      "    model: claude-x\n"
      "    api_key_env: KEY\n"
      "    timeout_seconds: 1.5\n"
      "agent:\n"
      "  max_steps: 7\n"
      "  max_wall_seconds: 60\n"
      "  command_timeout_seconds: 30\n"
      "review:\n"
      "  max_files: 3\n"
      "  protected_paths: [\"deploy/**\"]\n"
      "identity:\n"
      "  name: Night Shift\n"
      "forges:\n"
      "  app:\n"
      "    type: gitlab\n"
      "    project: group/app\n"
      "    token_env: TOKEN\n"
      "    draft: false\n";
  ConfigErrors errors("nightshift.yml");
  ServerConfig config = ParseServerConfig(text, {{"KEY", "k-123"}, {"TOKEN", "glpat-1"}}, errors);
  ASSERT_TRUE(errors.empty()) << errors.Lines().front();

  const agent::ModelConfig& model = config.agent.models.at("default");
  EXPECT_EQ(model.provider, "anthropic");
  EXPECT_EQ(model.base_url, "https://api.anthropic.com");
  EXPECT_EQ(model.api_key, "k-123");
  EXPECT_EQ(model.timeout_ms, 1500);
  EXPECT_EQ(config.agent.budgets.max_steps, 7);
  EXPECT_EQ(config.agent.budgets.max_wall_ms, 60'000);
  EXPECT_EQ(config.agent.budgets.max_tokens, 2'000'000);  // the default
  EXPECT_EQ(config.agent.command_timeout_ms, 30'000);

  EXPECT_EQ(config.review.at("").max_files, 3);
  EXPECT_EQ(config.review.at("").protected_paths, std::vector<std::string>{"deploy/**"});
  EXPECT_EQ(config.review.at("payments").max_files, 3);
  EXPECT_EQ(config.review.at("payments").max_lines, 500);
  EXPECT_EQ(config.review.at("payments").protected_paths, std::vector<std::string>{"deploy/**"});

  EXPECT_EQ(config.identity.name, "Night Shift");
  EXPECT_EQ(config.identity.email, "nightshift@localhost");  // the default

  const forge::ForgeLink& link = config.forges.at("app");
  EXPECT_EQ(link.type, "gitlab");
  EXPECT_EQ(link.options.project, "group/app");
  EXPECT_EQ(link.options.token, "glpat-1");
  EXPECT_FALSE(link.draft);
  EXPECT_EQ(link.labels, std::vector<std::string>{"nightshift"});
}

TEST(ServerConfig, AnEmptyFileIsTheDefaults) {
  ConfigErrors errors("nightshift.yml");
  ServerConfig config = ParseServerConfig("", {}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(config.agent.models.empty());
  EXPECT_EQ(config.review.size(), 1u);
  EXPECT_EQ(config.review.at("").max_files, forge::ReviewPolicy{}.max_files);
  EXPECT_EQ(config.identity.name, forge::Identity{}.name);
  EXPECT_TRUE(config.forges.empty());
}

TEST(LoadServerConfig, AMissingFileIsOneErrorNamingIt) {
  testing::TempDir dir;
  const auto path = dir.path() / "nightshift.yml";
  ConfigErrors errors(path.string());
  auto config = LoadServerConfig(path, {}, errors);
  ASSERT_FALSE(config.ok());
  const std::string want = StrCat("open ", path.string(), ": No such file or directory");
  EXPECT_EQ(config.status().message(), want);
  EXPECT_EQ(errors.Lines(), std::vector<std::string>{want});
}

TEST(LoadServerConfig, ErrorsNameTheFileAndComeBackAllAndFirst) {
  testing::TempDir dir;
  const auto path = dir.path() / "server.yml";
  std::ofstream(path) << "agent:\n  max_steps: 0\nreview:\n  max_flies: 3\n";
  ConfigErrors errors(path.string());
  auto config = LoadServerConfig(path, {}, errors);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(IsInvalidArgument(config.status()));
  EXPECT_EQ(config.status().message(),
            path.string() + ":2:14: agent.max_steps must be at least 1 (and 1 more)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors.Lines()[1],
            path.string() +
                ":4:3: unknown key 'max_flies' in review (expected protected_paths, max_files, "
                "max_lines, max_binary_bytes, scan_secrets)");
}

TEST(ConfigSections, EachIsInTheOperatorsReference) {
  const std::string docs = *ReadFile(std::filesystem::path(SOURCE_DIR) / "docs/operations.md");
  ASSERT_FALSE(ConfigSections().empty());
  for (std::string_view key : ConfigSections()) {
    EXPECT_NE(docs.find(StrCat("`", key, "`")), std::string::npos)
        << "docs/operations.md does not describe the section " << key;
  }
}

}  // namespace
}  // namespace nightshift::config
