#include "workspace/environment.h"

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace nightshift::workspace {
namespace {

constexpr char kYml[] = ".nightshift/environment.yml";
constexpr char kDev[] = ".devcontainer/devcontainer.json";

TEST(EnvironmentYaml, ParsesEveryKey) {
  auto spec = ParseEnvironmentYaml(
      "setup:\n  - npm ci\n  - make deps\nenv:\n  NODE_ENV: test\n  RETRIES: 3\n"
      "lock_files: [tools/versions.txt]\nsetup_timeout: 900\n",
      kYml);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->setup, (std::vector<std::string>{"npm ci", "make deps"}));
  EXPECT_EQ(spec->env,
            (std::map<std::string, std::string>{{"NODE_ENV", "test"}, {"RETRIES", "3"}}));
  EXPECT_EQ(spec->lock_files, std::vector<std::string>{"tools/versions.txt"});
  EXPECT_EQ(spec->setup_timeout_seconds, 900);
  EXPECT_EQ(ParseEnvironmentYaml("setup: make\n", kYml)->setup, std::vector<std::string>{"make"});
  EXPECT_TRUE(ParseEnvironmentYaml("", kYml)->empty());
}

TEST(EnvironmentYaml, ErrorsNameFileLineAndColumn) {
  struct Case {
    const char* text;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"setup: [a]\nsetpu: b\n", ".nightshift/environment.yml:2:1: unknown key 'setpu'"},
           {"env:\n  1BAD: x\n",
            ".nightshift/environment.yml:2:3: invalid environment variable "
            "name '1BAD'"},
           {"setup:\n  - [nested]\n",
            ".nightshift/environment.yml:2:5: each of setup must be a "
            "string"},
           {"setup_timeout: -5\n", ".nightshift/environment.yml:1:16: setup_timeout must be"},
           {"lock_files: [../etc/passwd]\n", ".nightshift/environment.yml:1:13: lock file"},
           {"setup: [\"  \"]\n", ".nightshift/environment.yml:1:8: a setup command is empty"},
           {"- just a list\n", ".nightshift/environment.yml:1:1: the top level must be a mapping"},
           {"setup: [unclosed\n", ".nightshift/environment.yml:2:"},
       }) {
    auto spec = ParseEnvironmentYaml(c.text, kYml);
    ASSERT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(spec.status().message().rfind(c.want, 0), 0u)
        << "got: " << spec.status().message() << "\nwant prefix: " << c.want;
    EXPECT_EQ(spec.status().message().find('\n'), std::string::npos);
  }
}

TEST(Devcontainer, HonoursTheLifecycleCommandsAndEnvironment) {
  auto spec = ParseDevcontainerJson(R"({
    // a comment
    "image": "mcr.microsoft.com/devcontainers/base",   /* ignored */
    "onCreateCommand": "echo one",
    "updateContentCommand": ["printf", "%s\n", "it's two words"],
    "postCreateCommand": {"b": "echo b", "a": "echo a"},
    "containerEnv": {"TOOLS": "/opt/tools", "SECRET": "${localEnv:HOME}"},
    "remoteEnv": {"PATH2": "${containerEnv:TOOLS}/bin", "DEF": "${localEnv:NOPE:fallback}",},
  })",
                                    kDev);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->setup.size(), 4u);
  EXPECT_EQ(spec->setup[0], "echo one");
  EXPECT_EQ(spec->setup[2], "echo a");  // an object's commands run by name
  EXPECT_EQ(spec->setup[3], "echo b");
  // The exec form survives the shell: quoting is right.
  EXPECT_EQ(testing::Shell(spec->setup[1]).output, "it's two words\n");
  EXPECT_EQ(spec->env.at("TOOLS"), "/opt/tools");
  EXPECT_EQ(spec->env.at("SECRET"), "");  // the host's HOME does not leak in
  EXPECT_EQ(spec->env.at("PATH2"), "/opt/tools/bin");
  EXPECT_EQ(spec->env.at("DEF"), "fallback");
}

TEST(Devcontainer, ErrorsNameTheLineOrKey) {
  auto bad_json = ParseDevcontainerJson("{\n  \"a\": 1\n  \"b\": 2\n}\n", kDev);
  ASSERT_EQ(bad_json.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_json.status().message().rfind(".devcontainer/devcontainer.json:3:", 0), 0u)
      << bad_json.status();
  auto bad_type = ParseDevcontainerJson(R"({"postCreateCommand": 42})", kDev);
  EXPECT_NE(bad_type.status().message().find("postCreateCommand must be"), std::string::npos);
  auto bad_env = ParseDevcontainerJson(R"({"containerEnv": {"X": 1}})", kDev);
  EXPECT_NE(bad_env.status().message().find("containerEnv.X must be a string"), std::string::npos);
}

TEST(LoadEnvironment, MergesDevcontainerThenEnvironmentYml) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / ".devcontainer");
  std::filesystem::create_directories(dir.path() / ".nightshift");
  std::ofstream(dir.path() / kDev)
      << R"({"postCreateCommand": "dev", "containerEnv": {"A": "dev", "B": "dev"}})";
  std::ofstream(dir.path() / kYml) << "setup: own\nenv:\n  B: own\n";
  auto spec = LoadEnvironment(dir.path());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->setup, (std::vector<std::string>{"dev", "own"}));
  EXPECT_EQ(spec->env, (std::map<std::string, std::string>{{"A", "dev"}, {"B", "own"}}));
  EXPECT_EQ(spec->sources, (std::vector<std::string>{kDev, kYml}));

  testing::TempDir empty;
  EXPECT_TRUE(LoadEnvironment(empty.path())->empty());

  std::filesystem::remove(dir.path() / kYml);
  std::filesystem::create_symlink("/etc/passwd", dir.path() / kYml);
  EXPECT_NE(LoadEnvironment(dir.path()).status().message().find("must be a regular file"),
            std::string::npos);
}

TEST(EnvironmentSpec, CanonicalChangesWithTheSpec) {
  auto a = ParseEnvironmentYaml("setup: [x]\nenv: {K: v}\n", kYml);
  auto b = ParseEnvironmentYaml("env: {K: v}\nsetup: [x]\n", kYml);
  auto c = ParseEnvironmentYaml("setup: [y]\nenv: {K: v}\n", kYml);
  EXPECT_EQ(a->Canonical(), b->Canonical());
  EXPECT_NE(a->Canonical(), c->Canonical());
}

}  // namespace
}  // namespace nightshift::workspace
