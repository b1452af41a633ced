#include "core/config_node.h"

#include "gtest/gtest.h"

namespace nightshift {
namespace {

TEST(ParseYamlConfig, NodesKnowTheirPathAndPosition) {
  ConfigErrors errors("f.yml");
  ConfigNode root =
      ParseYamlConfig("models:\n  default:\n    max_tokens: 5\nlist: [a, b]\n", errors);
  ASSERT_TRUE(errors.empty());
  ASSERT_TRUE(root.IsMapping());
  EXPECT_EQ(root.path(), "");
  const ConfigNode* models = root.Find("models");
  ASSERT_NE(models, nullptr);
  const ConfigNode* max_tokens = models->Find("default")->Find("max_tokens");
  ASSERT_NE(max_tokens, nullptr);
  EXPECT_EQ(max_tokens->path(), "models.default.max_tokens");
  EXPECT_EQ(max_tokens->key(), "max_tokens");
  EXPECT_EQ(max_tokens->scalar(), "5");
  EXPECT_EQ(max_tokens->line(), 3);
  EXPECT_EQ(max_tokens->column(), 17);
  EXPECT_EQ(max_tokens->key_line(), 3);
  EXPECT_EQ(max_tokens->key_column(), 5);
  const ConfigNode* list = root.Find("list");
  ASSERT_TRUE(list->IsSequence());
  ASSERT_EQ(list->children().size(), 2u);
  EXPECT_EQ(list->children()[1].path(), "list[1]");
  EXPECT_EQ(list->children()[1].column(), 11);
  EXPECT_EQ(root.Find("nothing"), nullptr);
  EXPECT_EQ(list->Find("a"), nullptr);  // not a mapping
}

TEST(ParseYamlConfig, AValueWrittenAsNothingIsAtItsKey) {
  ConfigErrors errors("f.yml");
  ConfigNode root = ParseYamlConfig("agent:\n\nreview: 1\n", errors);
  const ConfigNode* agent = root.Find("agent");
  ASSERT_NE(agent, nullptr);
  EXPECT_TRUE(agent->IsNull());
  EXPECT_EQ(agent->line(), 1);
  EXPECT_EQ(agent->column(), 1);
}

TEST(ParseYamlConfig, EmptyTextIsANullRoot) {
  ConfigErrors errors("f.yml");
  EXPECT_TRUE(ParseYamlConfig("", errors).IsNull());
  EXPECT_TRUE(ParseYamlConfig("# nothing\n", errors).IsNull());
  EXPECT_TRUE(errors.empty());
}

TEST(ParseYamlConfig, SyntaxErrorsKeysAndDocumentsAreErrors) {
  ConfigErrors errors("f.yml");
  EXPECT_TRUE(ParseYamlConfig("a: [1\n", errors).IsNull());
  ConfigNode root = ParseYamlConfig("a: 1\n? [x]\n: 2\na: 3\n---\nb: 1\n", errors);
  EXPECT_EQ(root.children().size(), 1u);
  EXPECT_EQ(root.Find("a")->scalar(), "1");  // the first of a duplicate counts
  EXPECT_EQ(errors.Lines(), (std::vector<std::string>{
                                "f.yml:2:1: end of sequence flow not found",
                                "f.yml:2:3: keys must be strings",
                                "f.yml:4:1: duplicate key 'a' (first on line 1)",
                                "f.yml:6:1: a second YAML document (a config file holds one)",
                            }));
}

TEST(ParseYamlConfig, AliasesCannotMakeItEndless) {
  ConfigErrors cycle("f.yml");
  ParseYamlConfig("a: &a [*a]\n", cycle);  // yaml-cpp makes this a cycle
  ASSERT_EQ(cycle.size(), 1u);
  EXPECT_NE(cycle.Lines()[0].find("is nested more than 64 levels deep"), std::string::npos)
      << cycle.Lines()[0];

  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c) {
    laughs += StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 10; ++i) laughs += StrCat(i ? ", " : "", "*", std::string(1, c - 1));
    laughs += "]\n";
  }
  ConfigErrors many("f.yml");
  ParseYamlConfig(laughs, many);
  ASSERT_EQ(many.size(), 1u);
  EXPECT_NE(many.Lines()[0].find("holds more than 100000 values"), std::string::npos)
      << many.Lines()[0];
}

TEST(ReadConfigFields, ConvertsEachValueAndNamesWhatIsWrong) {
  ConfigErrors errors("f.yml");
  ConfigNode root = ParseYamlConfig(
      "s: 12\nb: yes\ni: -3\nl: 9000000000\nd: 2.5\nv: [a, 'b']\nf: x\n"
      "bad_s: [1]\nbad_b: 2\nbad_i: 1.5\nbig_i: 9000000000\nbad_l: x\nbad_d: '1,5'\n"
      "bad_v: [a, [b]]\nother: 1\n",
      errors);
  std::string s, bad_s = "kept";
  bool b = false, bad_b = false;
  int i = 0, bad_i = 7, big_i = 7;
  int64_t l = 0, bad_l = 0;
  double d = 0, bad_d = 0;
  std::vector<std::string> v, bad_v;
  std::string function_saw;
  EXPECT_TRUE(ReadConfigFields(root,
                               {{"s", &s},
                                {"b", &b},
                                {"i", &i},
                                {"l", &l},
                                {"d", &d},
                                {"v", &v},
                                {"f", [&](const ConfigNode& node) { function_saw = node.path(); }},
                                {"bad_s", &bad_s},
                                {"bad_b", &bad_b},
                                {"bad_i", &bad_i},
                                {"big_i", &big_i},
                                {"bad_l", &bad_l},
                                {"bad_d", &bad_d},
                                {"bad_v", &bad_v}},
                               errors));
  EXPECT_EQ(s, "12");
  EXPECT_TRUE(b);
  EXPECT_EQ(i, -3);
  EXPECT_EQ(l, 9'000'000'000);
  EXPECT_EQ(d, 2.5);
  EXPECT_EQ(v, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(function_saw, "f");
  EXPECT_EQ(bad_s, "kept");
  EXPECT_EQ(bad_i, 7);
  EXPECT_EQ(big_i, 7);
  EXPECT_EQ(errors.Lines(),
            (std::vector<std::string>{
                "f.yml:8:8: bad_s must be a string",
                "f.yml:9:8: bad_b must be true or false",
                "f.yml:10:8: bad_i must be an integer",
                "f.yml:11:8: big_i must be an integer from -2147483648 to 2147483647",
                "f.yml:12:8: bad_l must be an integer",
                "f.yml:13:8: bad_d must be a number",
                "f.yml:14:8: bad_v must be a list of strings",
                "f.yml:15:1: unknown key 'other' (expected s, b, i, l, d, v, f, bad_s, bad_b, "
                "bad_i, big_i, bad_l, bad_d, bad_v)",
            }));
}

TEST(ReadConfigFields, NullIsAnEmptyMappingAndOtherKindsAreRefused) {
  ConfigErrors errors("f.yml");
  ConfigNode root = ParseYamlConfig("empty:\nlist: [1]\nnested: {inner: {x: 1}}\n", errors);
  int x = 0;
  EXPECT_TRUE(ReadConfigFields(*root.Find("empty"), {{"x", &x}}, errors));
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(ReadConfigFields(*root.Find("list"), {{"x", &x}}, errors));
  EXPECT_TRUE(ReadConfigFields(*root.Find("nested")->Find("inner"), {{"y", &x}}, errors));
  EXPECT_EQ(errors.Lines(), (std::vector<std::string>{
                                "f.yml:2:7: list must be a mapping",
                                "f.yml:3:18: unknown key 'x' in nested.inner (expected y)",
                            }));
  ConfigErrors top("f.yml");
  EXPECT_FALSE(CheckConfigMapping(ParseYamlConfig("[1]\n", top), top));
  EXPECT_EQ(top.Lines(), std::vector<std::string>{"f.yml:1:1: the top level must be a mapping"});
}

TEST(RequireConfig, AtTheValueOrTheKeyAndNeverTwice) {
  ConfigErrors errors("f.yml");
  ConfigNode root = ParseYamlConfig("limits:\n  max: 0\n  min: many\n", errors);
  const ConfigNode& limits = *root.Find("limits");
  int max = 0, min = 0;
  ReadConfigFields(limits, {{"max", &max}, {"min", &min}}, errors);
  RequireConfig(max >= 1, limits, "max", "must be at least 1", errors);
  RequireConfig(min >= 1, limits, "min", "must be at least 1", errors);  // already wrong
  RequireConfig(false, limits, "name", "is required", errors);           // absent: at "limits:"
  RequireConfig(true, limits, "max", "is fine", errors);
  EXPECT_EQ(errors.Lines(), (std::vector<std::string>{
                                "f.yml:1:1: limits.name is required",
                                "f.yml:2:8: limits.max must be at least 1",
                                "f.yml:3:8: limits.min must be an integer",
                            }));
}

TEST(ConfigErrors, InTheFilesOrderAndTheFirstAsAStatus) {
  ConfigErrors errors("f.yml");
  EXPECT_TRUE(errors.ToStatus().ok());
  errors.AddAt(3, 1, "third");
  errors.AddAt(1, 5, "second");
  errors.AddAt(1, 2, "first");
  errors.AddAt(0, 0, "about the file");
  errors.AddUnplaced("open f.yml: No such file or directory");
  EXPECT_EQ(errors.Lines(), (std::vector<std::string>{
                                "f.yml: about the file",
                                "open f.yml: No such file or directory",
                                "f.yml:1:2: first",
                                "f.yml:1:5: second",
                                "f.yml:3:1: third",
                            }));
  Status status = errors.ToStatus();
  EXPECT_TRUE(IsInvalidArgument(status));
  EXPECT_EQ(status.message(), "f.yml: about the file (and 4 more)");
  ConfigErrors one("f.yml");
  one.AddAt(2, 3, "only");
  EXPECT_EQ(one.ToStatus().message(), "f.yml:2:3: only");
}

}  // namespace
}  // namespace nightshift
