#include "core/config_node.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>
#include <map>
#include <type_traits>

extern char** environ;

namespace nightshift {

Environment ProcessEnvironment() {
  Environment environment;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    if (size_t eq = var.find('='); eq != std::string_view::npos) {
      environment.emplace(std::string(var.substr(0, eq)), std::string(var.substr(eq + 1)));
    }
  }
  return environment;
}

const ConfigNode* ConfigNode::Find(std::string_view key) const {
  if (kind_ != Kind::kMapping) return nullptr;
  for (const ConfigNode& child : children_) {
    if (child.key_ == key) return &child;
  }
  return nullptr;
}

std::string ConfigPath(std::string_view parent_path, std::string_view key) {
  return parent_path.empty() ? std::string(key) : StrCat(parent_path, ".", key);
}

namespace {

// " in PATH", or nothing at the root.
std::string InPath(std::string_view path) {
  return path.empty() ? std::string() : StrCat(" in ", path);
}

// What a config file may hold at most. A YAML alias repeats a subtree, and yaml-cpp even
// builds cycles (`a: &a [*a]`): without bounds, copying the tree would not end.
constexpr int kMaxDepth = 64;
constexpr int kMaxValues = 100'000;

}  // namespace

// Copies yaml-cpp's tree into ConfigNodes, checking keys on the way.
class ConfigTreeBuilder {
 public:
  explicit ConfigTreeBuilder(ConfigErrors& errors) : errors_(errors) {}

  ConfigNode Build(const YAML::Node& yaml, std::string path, std::string key, int key_line,
                   int key_column, int depth) {
    ConfigNode node;
    node.path_ = std::move(path);
    node.key_ = std::move(key);
    node.key_line_ = key_line;
    node.key_column_ = key_column;
    const YAML::Mark mark = yaml.Mark();
    if (!mark.is_null() && mark.line >= 0) {
      node.line_ = mark.line + 1;
      node.column_ = mark.column + 1;
    }
    if (++values_ > kMaxValues || depth > kMaxDepth) {
      if (!too_big_) {
        errors_.Add(node,
                    values_ > kMaxValues
                        ? StrCat("the file holds more than ", kMaxValues, " values")
                        : StrCat(node.path_, " is nested more than ", kMaxDepth, " levels deep"));
      }
      too_big_ = true;
      return node;
    }
    switch (yaml.Type()) {
      case YAML::NodeType::Scalar:
        node.kind_ = ConfigNode::Kind::kScalar;
        node.scalar_ = yaml.Scalar();
        break;
      case YAML::NodeType::Sequence: {
        node.kind_ = ConfigNode::Kind::kSequence;
        size_t i = 0;
        for (const YAML::Node& item : yaml) {
          node.children_.push_back(
              Build(item, StrCat(node.path_, "[", i++, "]"), "", 0, 0, depth + 1));
        }
        break;
      }
      case YAML::NodeType::Map: {
        node.kind_ = ConfigNode::Kind::kMapping;
        std::map<std::string, int, std::less<>> first_lines;  // of the keys so far
        for (const auto& entry : yaml) {
          const YAML::Mark key_mark = entry.first.Mark();
          const int line = key_mark.line + 1;
          const int column = key_mark.column + 1;
          if (!entry.first.IsScalar()) {
            errors_.AddAt(line, column, StrCat("keys", InPath(node.path_), " must be strings"));
            continue;
          }
          const std::string& name = entry.first.Scalar();
          if (auto [first, inserted] = first_lines.emplace(name, line); !inserted) {
            errors_.AddAt(line, column,
                          StrCat("duplicate key '", name, "'", InPath(node.path_),
                                 " (first on line ", first->second, ")"));
            continue;
          }
          node.children_.push_back(
              Build(entry.second, ConfigPath(node.path_, name), name, line, column, depth + 1));
        }
        break;
      }
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        break;
    }
    // A value written as nothing has yaml-cpp's position after it (the next line): use its key.
    if (node.kind_ == ConfigNode::Kind::kNull && key_line > 0) {
      node.line_ = key_line;
      node.column_ = key_column;
    }
    return node;
  }

 private:
  ConfigErrors& errors_;
  int values_ = 0;
  bool too_big_ = false;
};

ConfigNode ParseYamlConfig(std::string_view text, ConfigErrors& errors) {
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    if (documents.empty()) return ConfigNode();
    if (documents.size() > 1) {
      const YAML::Mark mark = documents[1].Mark();
      errors.AddAt(mark.line + 1, mark.column + 1,
                   "a second YAML document (a config file holds one)");
    }
    return ConfigTreeBuilder(errors).Build(documents.front(), "", "", 0, 0, 0);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      errors.AddAt(0, 0, e.msg);
    } else {
      errors.AddAt(e.mark.line + 1, e.mark.column + 1, e.msg);
    }
    return ConfigNode();
  }
}

void ConfigErrors::Add(const ConfigNode& node, std::string_view reason) {
  AddAt(node.line(), node.column(), reason);
}

void ConfigErrors::AddAtKey(const ConfigNode& node, std::string_view reason) {
  AddAt(node.key_line(), node.key_column(), reason);
}

void ConfigErrors::AddAt(int line, int column, std::string_view reason) {
  if (line <= 0) {
    entries_.push_back({0, 0, StrCat(file_name_, ": ", reason)});
  } else {
    entries_.push_back({line, column, StrCat(file_name_, ":", line, ":", column, ": ", reason)});
  }
}

bool ConfigErrors::HasErrorAt(const ConfigNode& node) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.line == node.line() && e.column == node.column() && e.line > 0;
  });
}

void ConfigErrors::AddUnplaced(std::string_view message) {
  entries_.push_back({0, 0, std::string(message)});
}

std::vector<std::string> ConfigErrors::Lines() const {
  std::vector<const Entry*> sorted;
  for (const Entry& entry : entries_) sorted.push_back(&entry);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return std::pair(a->line, a->column) < std::pair(b->line, b->column);
  });
  std::vector<std::string> lines;
  for (const Entry* entry : sorted) lines.push_back(entry->text);
  return lines;
}

Status ConfigErrors::ToStatus() const {
  if (entries_.empty()) return OkStatus();
  std::string message = Lines().front();
  if (entries_.size() > 1) message += StrCat(" (and ", entries_.size() - 1, " more)");
  return InvalidArgumentError(std::move(message));
}

namespace {

// yaml-cpp's conversion of a scalar (they report a mismatch by their result, never throw).
template <typename T>
bool Decode(const ConfigNode& node, T& out) {
  if (!node.IsScalar()) return false;
  T value{};
  if (!YAML::convert<T>::decode(YAML::Node(node.scalar()), value)) return false;
  out = value;
  return true;
}

}  // namespace

bool ReadConfigValue(const ConfigNode& node, const ConfigTarget& target, ConfigErrors& errors) {
  auto mismatch = [&](std::string_view what) {
    errors.Add(node, StrCat(node.path(), " must be ", what));
    return false;
  };
  return std::visit(
      [&](const auto& alternative) -> bool {
        using A = std::decay_t<decltype(alternative)>;
        if constexpr (!std::is_pointer_v<A>) {
          alternative(node);  // a function: it reads the node itself
          return true;
        } else {
          using T = std::remove_pointer_t<A>;
          T& out = *alternative;
          if constexpr (std::is_same_v<T, std::string>) {
            if (!node.IsScalar()) return mismatch("a string");
            out = node.scalar();
            return true;
          } else if constexpr (std::is_same_v<T, bool>) {
            return Decode(node, out) || mismatch("true or false");
          } else if constexpr (std::is_same_v<T, int>) {
            if (Decode(node, out)) return true;
            int64_t wide = 0;
            if (!Decode(node, wide)) return mismatch("an integer");
            return mismatch(StrCat("an integer from ", std::numeric_limits<int>::min(), " to ",
                                   std::numeric_limits<int>::max()));
          } else if constexpr (std::is_same_v<T, int64_t>) {
            return Decode(node, out) || mismatch("an integer");
          } else if constexpr (std::is_same_v<T, double>) {
            return Decode(node, out) || mismatch("a number");
          } else {
            static_assert(std::is_same_v<T, std::vector<std::string>>);
            if (!node.IsSequence()) return mismatch("a list of strings");
            std::vector<std::string> items;
            for (const ConfigNode& item : node.children()) {
              if (!item.IsScalar()) return mismatch("a list of strings");
              items.push_back(item.scalar());
            }
            out = std::move(items);
            return true;
          }
        }
      },
      target);
}

bool CheckConfigMapping(const ConfigNode& node, ConfigErrors& errors, std::string_view what) {
  if (node.IsMapping() || node.IsNull()) return true;
  errors.Add(node, node.path().empty() ? StrCat("the top level must be ", what)
                                       : StrCat(node.path(), " must be ", what));
  return false;
}

bool ReadConfigFields(const ConfigNode& node, std::initializer_list<ConfigField> fields,
                      ConfigErrors& errors) {
  if (!CheckConfigMapping(node, errors)) return false;
  for (const ConfigNode& child : node.children()) {
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const ConfigField& f) { return f.key == child.key(); });
    if (field == fields.end()) {
      std::string expected;
      for (const ConfigField& f : fields) expected += StrCat(expected.empty() ? "" : ", ", f.key);
      errors.AddAtKey(child, StrCat("unknown key '", child.key(), "'", InPath(node.path()),
                                    " (expected ", expected, ")"));
      continue;
    }
    ReadConfigValue(child, field->target, errors);
  }
  return true;
}

void RequireConfig(bool ok, const ConfigNode& node, std::string_view key,
                   std::string_view requirement, ConfigErrors& errors) {
  if (ok) return;
  const std::string message = StrCat(ConfigPath(node.path(), key), " ", requirement);
  if (const ConfigNode* value = node.Find(key)) {
    if (!errors.HasErrorAt(*value)) errors.Add(*value, message);
  } else if (node.key_line() > 0) {
    errors.AddAtKey(node, message);
  } else {
    errors.Add(node, message);
  }
}

std::function<void(const ConfigNode&)> EnvironmentSecret(const Environment& environment,
                                                         std::string* out, ConfigErrors& errors) {
  return [&environment, out, &errors](const ConfigNode& value) {
    std::string name;
    if (!ReadConfigValue(value, &name, errors)) return;
    auto it = environment.find(name);
    if (it == environment.end() || it->second.empty()) {
      errors.Add(value, StrCat(value.path(), ": the environment variable ", name, " is not set"));
      return;
    }
    *out = it->second;
  };
}

}  // namespace nightshift
