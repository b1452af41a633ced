#pragma once

// Config files as data. A YAML document is parsed once (ParseYamlConfig) into a tree of
// ConfigNodes, which never throw and each know their key path ("models.default.max_tokens")
// and their line and column. The part that owns a section reads its node (ReadFields for a
// mapping of settings) and records what is wrong in ConfigErrors —
// "nightshift.yml:7:3: unknown key 'max_flies' in review" — and carries on, so that one pass
// over a file finds every error in it. yaml-cpp stays behind this header.
//
// Messages name the key path of what is wrong: "PATH must be an integer", "PATH must be a
// mapping", "unknown key 'K' in PATH (expected A, B)", and the parts' own rules in the same
// form ("review.max_files must be at least 1").

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace nightshift {

// The variables secrets named in a config file (api_key_env, token_env) are read from.
using Environment = std::map<std::string, std::string>;

// This process's environment.
Environment ProcessEnvironment();

// One value in a parsed config file: null, a scalar (its text, whatever its YAML type), a
// sequence of items or a mapping of keys (plain strings, unique) to values. Read-only; copies
// are deep (config files are small: pass references).
class ConfigNode {
 public:
  enum class Kind { kNull, kScalar, kSequence, kMapping };

  ConfigNode() = default;  // null, at no position

  Kind kind() const { return kind_; }
  bool IsNull() const { return kind_ == Kind::kNull; }
  bool IsScalar() const { return kind_ == Kind::kScalar; }
  bool IsSequence() const { return kind_ == Kind::kSequence; }
  bool IsMapping() const { return kind_ == Kind::kMapping; }

  // A scalar's text ("" for other kinds).
  const std::string& scalar() const { return scalar_; }
  // The key this value has in its mapping ("" for the root and sequence items).
  const std::string& key() const { return key_; }
  // Where it is: "models.default.max_tokens", "review.protected_paths[2]", "" for the root.
  const std::string& path() const { return path_; }
  // 1-based; a null value written as nothing (`max_files:`) is at its key. 0: no position.
  int line() const { return line_; }
  int column() const { return column_; }
  int key_line() const { return key_line_; }
  int key_column() const { return key_column_; }

  // A mapping's values in the file's order (each with its key), or a sequence's items.
  const std::vector<ConfigNode>& children() const { return children_; }
  // The value under `key` in a mapping; nullptr when there is none.
  const ConfigNode* Find(std::string_view key) const;

 private:
  friend class ConfigTreeBuilder;

  Kind kind_ = Kind::kNull;
  std::string scalar_;
  std::string key_;
  std::string path_;
  int line_ = 0;
  int column_ = 0;
  int key_line_ = 0;
  int key_column_ = 0;
  std::vector<ConfigNode> children_;
};

// The errors found in one config file. Not thread-safe.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string file_name) : file_name_(std::move(file_name)) {}

  const std::string& file_name() const { return file_name_; }

  // An error about `node`'s value: "FILE:LINE:COLUMN: reason".
  void Add(const ConfigNode& node, std::string_view reason);
  // An error about `node`'s key (unknown, duplicate), at the key.
  void AddAtKey(const ConfigNode& node, std::string_view reason);
  // An error at a position (1-based).
  void AddAt(int line, int column, std::string_view reason);
  // An error about the file as a whole, as it is: "open FILE: No such file or directory".
  void AddUnplaced(std::string_view message);

  // Whether an error was recorded at `node`'s position (its value's).
  bool HasErrorAt(const ConfigNode& node) const;

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  // Every error, one line each, in the file's order (by position; unplaced ones first; as
  // recorded where they tie).
  std::vector<std::string> Lines() const;
  // OK when there are none; else InvalidArgument with the first of Lines(), followed by
  // " (and N more)" when there are more.
  Status ToStatus() const;

 private:
  struct Entry {
    int line = 0;
    int column = 0;
    std::string text;
  };
  std::string file_name_;
  std::vector<Entry> entries_;
};

// Parses YAML text into its root node. A syntax error, more than one document, a key that is
// not a plain string or a key twice in one mapping is recorded in `errors`; after a syntax
// error the root is null. Empty text (or only comments) is a null root.
ConfigNode ParseYamlConfig(std::string_view text, ConfigErrors& errors);

// "PATH.key" ("key" under the root).
std::string ConfigPath(std::string_view parent_path, std::string_view key);

// Where a setting's value goes: converted to the target's type, or handed to a function for
// anything more (a unit to convert, a secret to look up).
using ConfigTarget =
    std::variant<std::string*, bool*, int*, int64_t*, double*, std::vector<std::string>*,
                 std::function<void(const ConfigNode&)>>;

struct ConfigField {
  std::string_view key;
  ConfigTarget target;
};

// Converts `node` into `target` (yaml-cpp's conversions: any scalar is a string; integers,
// numbers and true/false as YAML writes them). On a mismatch records "PATH must be a string"
// (an integer, a number, true or false, a list of strings), leaves the target as it was and
// returns false. A function target is called with the node and the result is true.
bool ReadConfigValue(const ConfigNode& node, const ConfigTarget& target, ConfigErrors& errors);

// Whether `node` is a mapping, or null (an empty one: `agent:` with nothing under it);
// otherwise records "PATH must be a mapping" (`what` instead of "a mapping" when given).
bool CheckConfigMapping(const ConfigNode& node, ConfigErrors& errors,
                        std::string_view what = "a mapping");

// Reads the mapping `node` into `fields` (ReadConfigValue for each key present). A key not
// among them records "unknown key 'K' in PATH (expected A, B, ...)". False when `node` is not
// a mapping (CheckConfigMapping); otherwise true, whatever the values held.
bool ReadConfigFields(const ConfigNode& node, std::initializer_list<ConfigField> fields,
                      ConfigErrors& errors);

// A rule on one setting of the mapping `node`: unless `ok`, records "PATH.key REQUIREMENT"
// ("review.max_files must be at least 1") at the key's value, or when it is absent at `node`'s
// own key (at `node` if it has none); nothing when the value already has an error (it did not
// convert, and kept its default).
void RequireConfig(bool ok, const ConfigNode& node, std::string_view key,
                   std::string_view requirement, ConfigErrors& errors);

// A target for a setting that names an environment variable holding a secret (`token_env:
// GITHUB_TOKEN`): stores the variable's value in `out`, or records "PATH: the environment
// variable NAME is not set" when it is missing or empty. The references must outlive the read.
std::function<void(const ConfigNode&)> EnvironmentSecret(const Environment& environment,
                                                         std::string* out, ConfigErrors& errors);

}  // namespace nightshift
