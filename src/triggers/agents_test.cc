// A repository's own agents file: the rules it is held to that the server config is not.

#include "triggers/agents.h"

#include "gtest/gtest.h"

namespace nightshift::triggers {
namespace {

struct Parsed {
  std::vector<AgentSpec> agents;
  std::vector<std::string> errors;
};

Parsed Parse(std::string_view text, RepositoryAgentsPolicy policy = {}) {
  ConfigErrors errors("app:.nightshift/agents.yml");
  Parsed parsed;
  parsed.agents = ParseRepositoryAgents("app", text, {}, policy, errors);
  parsed.errors = errors.Lines();
  return parsed;
}

TEST(RepositoryAgents, AreNamedAfterTheirRepositoryAndRunOnItOnly) {
  Parsed parsed = Parse(R"(
agents:
  nightly:
    recipe: "make deps"
    triggers:
      - schedule: {cron: "0 3 * * *"}
)");
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors.front();
  ASSERT_EQ(parsed.agents.size(), 1u);
  const AgentSpec& agent = parsed.agents[0];
  EXPECT_EQ(agent.name, "app/nightly");
  EXPECT_EQ(agent.owner_repository, "app");
  EXPECT_TRUE(AgentRunsOn(agent, "app", "acme/app"));
  EXPECT_FALSE(AgentRunsOn(agent, "other", "acme/other"));
  // Not through the forge name either: only the registered repository itself.
  EXPECT_FALSE(AgentRunsOn(agent, "x", "app"));
  // The server's caps stand in for limits it did not set.
  EXPECT_EQ(agent.runs_per_hour, RepositoryAgentsPolicy{}.max_runs_per_hour);
  EXPECT_EQ(agent.max_concurrent, RepositoryAgentsPolicy{}.max_concurrent);
}

TEST(RepositoryAgents, LimitsAboveTheServersCapsAreCapped) {
  Parsed parsed = Parse(R"(
agents:
  busy:
    recipe: "true"
    triggers: [{schedule: {cron: "* * * * *"}}]
    limits: {runs_per_hour: 100000, max_concurrent: 50}
    timeout_seconds: 86400
  modest:
    recipe: "true"
    triggers: [{schedule: {cron: "* * * * *"}}]
    limits: {runs_per_hour: 3, max_concurrent: 1}
)",
                        {.max_runs_per_hour = 10, .max_concurrent = 2, .max_timeout_seconds = 600});
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors.front();
  ASSERT_EQ(parsed.agents.size(), 2u);
  EXPECT_EQ(parsed.agents[0].runs_per_hour, 10);
  EXPECT_EQ(parsed.agents[0].max_concurrent, 2);
  EXPECT_EQ(parsed.agents[0].timeout_seconds, 600);
  EXPECT_EQ(parsed.agents[1].runs_per_hour, 3);
  EXPECT_EQ(parsed.agents[1].max_concurrent, 1);
}

TEST(RepositoryAgents, AFileThatBreaksARuleIsRefusedWhole) {
  const struct {
    const char* text;
    const char* error;
  } cases[] = {
      {"agents:\n  a:\n    recipe: x\n    repositories: [\"*\"]\n    triggers: [{schedule: {cron: "
       "\"@daily\"}}]\n",
       "app:.nightshift/agents.yml:4:5: agents.a.repositories: a repository's own agents run on "
       "that repository only; remove it"},
      {"agents: [1, 2]\n", "agents must be a mapping of agent names to agents"},
      {"agent:\n  a: {}\n", "unknown key 'agent'"},
      {"# nothing\nfoo: 1\n", "unknown key 'foo'"},
      {"42\n", "must be a mapping"},
      {"agents:\n  a: {recipe: x, triggers: [{schedule: {cron: \"0 0 30 2 *\"}}]}\n", "never"},
      {"agents:\n  a: {recipe: \"{{event.nope}}\", triggers: [{schedule: {cron: \"@daily\"}}]}\n",
       "nope"},
      {"agents:\n  \"a/b\": {recipe: x, triggers: [{schedule: {cron: \"@daily\"}}]}\n",
       "agent name 'a/b'"},
      {"agents: {a: [\n", ""},  // a syntax error
  };
  for (const auto& c : cases) {
    Parsed parsed =
        Parse(std::string(c.text) +
              "\n");  // each with a good agent would still be refused: see the next case
    EXPECT_TRUE(parsed.agents.empty()) << c.text;
    ASSERT_FALSE(parsed.errors.empty()) << c.text;
    std::string all;
    for (const auto& e : parsed.errors) all += e + "\n";
    EXPECT_NE(all.find(c.error), std::string::npos) << c.text << " → " << all;
  }
  // One bad agent takes the good one with it: a file is used whole or not at all.
  Parsed mixed = Parse(R"(
agents:
  good: {recipe: x, triggers: [{schedule: {cron: "@daily"}}]}
  bad: {recipe: x, triggers: [{schedule: {cron: "@daily", timezone: Mars/Olympus}}]}
)");
  EXPECT_TRUE(mixed.agents.empty());
  EXPECT_FALSE(mixed.errors.empty());
}

TEST(RepositoryAgents, SizeAgentCountAndAliasBombsAreBounded) {
  Parsed big = Parse(std::string(kMaxRepositoryAgentsBytes + 1, '#'));
  ASSERT_EQ(big.errors.size(), 1u);
  EXPECT_NE(big.errors[0].find("at most 65536 are read"), std::string::npos) << big.errors[0];

  std::string many = "agents:\n";
  for (int i = 0; i < 5; ++i) {
    many += StrCat("  a", i, ": {recipe: x, triggers: [{schedule: {cron: \"@daily\"}}]}\n");
  }
  Parsed counted = Parse(many, {.max_agents = 4});
  ASSERT_FALSE(counted.errors.empty());
  EXPECT_NE(counted.errors[0].find("at most 4"), std::string::npos) << counted.errors[0];
  EXPECT_TRUE(counted.agents.empty());

  // A billion laughs: nine levels of aliases, each nine times the one before.
  std::string bomb =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  std::string previous = "a";
  for (char c = 'b'; c <= 'i'; ++c) {
    bomb += StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) bomb += StrCat(i ? "," : "", "*", previous);
    bomb += "]\n";
    previous = std::string(1, c);
  }
  Parsed exploded = Parse(bomb);
  EXPECT_FALSE(exploded.errors.empty());
  EXPECT_TRUE(exploded.agents.empty());
}

TEST(RepositoryAgents, ThePolicySectionIsChecked) {
  ConfigErrors errors("nightshift.yml");
  const ConfigNode root = ParseYamlConfig(
      "repository_agents: {enabled: false, max_runs_per_hour: 0, nope: 1}\n", errors);
  RepositoryAgentsPolicy policy =
      ParseRepositoryAgentsPolicy(*root.Find("repository_agents"), errors);
  EXPECT_FALSE(policy.enabled);
  std::string all;
  for (const auto& e : errors.Lines()) all += e + "\n";
  EXPECT_NE(all.find("unknown key 'nope'"), std::string::npos) << all;
}

}  // namespace
}  // namespace nightshift::triggers
