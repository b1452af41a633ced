#include "workspace/environment.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "core/fs.h"
#include "core/json.h"
#include "core/shell.h"

namespace nightshift::workspace {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr int64_t kMaxSetupTimeoutSeconds = 86400;

bool ValidEnvName(const std::string& name) {
  static const std::regex pattern("[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(name, pattern);
}

bool ValidRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/') return false;
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "..") return false;
  }
  return true;
}

// --- environment.yml ---

Status YamlError(std::string_view file, const YAML::Mark& mark, std::string_view reason) {
  return InvalidArgumentError(StrCat(file, ":", mark.line + 1, ":", mark.column + 1, ": ", reason));
}

StatusOr<std::string> Scalar(std::string_view file, const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) return YamlError(file, node.Mark(), StrCat(what, " must be a string"));
  return node.Scalar();
}

StatusOr<std::vector<std::string>> StringOrList(std::string_view file, const YAML::Node& node,
                                                std::string_view what) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
  } else if (node.IsSequence()) {
    for (const auto& item : node) {
      ASSIGN_OR_RETURN(std::string s, Scalar(file, item, StrCat("each of ", what)));
      out.push_back(std::move(s));
    }
  } else {
    return YamlError(file, node.Mark(), StrCat(what, " must be a string or a list of strings"));
  }
  return out;
}

StatusOr<EnvironmentSpec> ParseYamlNode(const YAML::Node& root, std::string_view file) {
  EnvironmentSpec spec;
  spec.sources.emplace_back(file);
  if (root.IsNull()) return spec;  // an empty file
  if (!root.IsMap()) return YamlError(file, root.Mark(), "the top level must be a mapping");
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "setup") {
      ASSIGN_OR_RETURN(spec.setup, StringOrList(file, value, "setup"));
      for (const auto& command : spec.setup) {
        if (command.find_first_not_of(" \t\n") == std::string::npos) {
          return YamlError(file, value.Mark(), "a setup command is empty");
        }
      }
    } else if (key == "env") {
      if (!value.IsMap()) return YamlError(file, value.Mark(), "env must be a mapping");
      for (const auto& var : value) {
        const std::string name = var.first.Scalar();
        if (!ValidEnvName(name)) {
          return YamlError(file, var.first.Mark(),
                           StrCat("invalid environment variable name '", name, "'"));
        }
        ASSIGN_OR_RETURN(spec.env[name], Scalar(file, var.second, StrCat("env ", name)));
      }
    } else if (key == "lock_files") {
      ASSIGN_OR_RETURN(auto files, StringOrList(file, value, "lock_files"));
      for (const auto& path : files) {
        if (!ValidRelativePath(path)) {
          return YamlError(file, value.Mark(),
                           StrCat("lock file '", path,
                                  "' must be a relative path inside the "
                                  "repository"));
        }
      }
      spec.lock_files = std::move(files);
    } else if (key == "setup_timeout") {
      int64_t seconds = 0;
      if (!value.IsScalar() || !YAML::convert<int64_t>::decode(value, seconds) || seconds < 1 ||
          seconds > kMaxSetupTimeoutSeconds) {
        return YamlError(file, value.Mark(),
                         StrCat("setup_timeout must be a number of seconds from 1 to ",
                                kMaxSetupTimeoutSeconds));
      }
      spec.setup_timeout_seconds = seconds;
    } else {
      return YamlError(file, entry.first.Mark(),
                       StrCat("unknown key '", key,
                              "' (expected setup, env, lock_files, "
                              "setup_timeout)"));
    }
  }
  return spec;
}

// --- devcontainer.json ---

// JSON with comments: trailing commas before } or ] are dropped (nlohmann handles comments).
std::string DropTrailingCommas(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false, escaped = false, line_comment = false, block_comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (line_comment) {
      line_comment = c != '\n';
      out += c;
      continue;
    }
    if (block_comment) {
      if (c == '*' && i + 1 < text.size() && text[i + 1] == '/') {
        block_comment = false;
        out += "*/";
        ++i;
      } else {
        out += c;
      }
      continue;
    }
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') line_comment = true;
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') block_comment = true;
    if (c == ',') {
      // Look past whitespace and comments for a closing bracket.
      size_t j = i + 1;
      for (;;) {
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        if (j + 1 < text.size() && text[j] == '/' && text[j + 1] == '/') {
          while (j < text.size() && text[j] != '\n') ++j;
        } else if (j + 1 < text.size() && text[j] == '/' && text[j + 1] == '*') {
          size_t end = text.find("*/", j + 2);
          j = end == std::string_view::npos ? text.size() : end + 2;
        } else {
          break;
        }
      }
      if (j < text.size() && (text[j] == '}' || text[j] == ']')) {
        out += ' ';  // keep byte offsets for error positions
        continue;
      }
    }
    out += c;
  }
  return out;
}

Status JsonError(std::string_view file, std::string_view text, size_t byte, std::string_view why) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return InvalidArgumentError(StrCat(file, ":", line, ":", column, ": ", why));
}

// A lifecycle command: a string (shell), an array (exec form), or an object of those (each,
// in the object's key order: nlohmann sorts keys, so by name).
Status AddCommands(std::string_view file, const std::string& key, const Json& value,
                   std::vector<std::string>& setup) {
  auto one = [&](const Json& v, const std::string& what) -> Status {
    if (v.is_string()) {
      if (!v.get<std::string>().empty()) setup.push_back(v.get<std::string>());
      return OkStatus();
    }
    if (v.is_array()) {
      std::string command;
      for (const Json& arg : v) {
        if (!arg.is_string()) {
          return InvalidArgumentError(StrCat(file, ": ", what, " must hold only strings"));
        }
        command += (command.empty() ? "" : " ") + ShellQuote(arg.get<std::string>());
      }
      if (!command.empty()) setup.push_back(command);
      return OkStatus();
    }
    return InvalidArgumentError(
        StrCat(file, ": ", what, " must be a string, an array of strings or an object"));
  };
  if (value.is_object()) {
    for (const auto& [name, command] : value.items()) {
      RETURN_IF_ERROR(one(command, StrCat(key, ".", name)));
    }
    return OkStatus();
  }
  return one(value, key);
}

// ${containerEnv:NAME} from `container`; ${localEnv:NAME[:default]} is the default or empty:
// the host's environment never leaks into a run.
std::string Expand(const std::string& value, const std::map<std::string, std::string>& container) {
  static const std::regex variable(
      R"(\$\{(containerEnv|localEnv):([A-Za-z_][A-Za-z0-9_]*)(:([^}]*))?\})");
  std::string out;
  auto begin = std::sregex_iterator(value.begin(), value.end(), variable);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out += value.substr(last, static_cast<size_t>(m.position()) - last);
    if (m[1] == "containerEnv") {
      auto found = container.find(m[2]);
      out += found != container.end() ? found->second : std::string(m[4].matched ? m[4].str() : "");
    } else {
      out += m[4].matched ? m[4].str() : "";
    }
    last = static_cast<size_t>(m.position() + m.length());
  }
  return out + value.substr(last);
}

}  // namespace

std::string EnvironmentSpec::Canonical() const {
  Json env_json = Json::object();
  for (const auto& [name, value] : env) env_json[name] = value;
  return Json{{"setup", setup},
              {"env", env_json},
              {"lock_files", lock_files},
              {"setup_timeout", setup_timeout_seconds}}
      .dump();
}

const std::vector<std::string>& DefaultLockFiles() {
  static const auto* files = new std::vector<std::string>{"package-lock.json",
                                                          "npm-shrinkwrap.json",
                                                          "yarn.lock",
                                                          "pnpm-lock.yaml",
                                                          "bun.lockb",
                                                          "Cargo.lock",
                                                          "go.sum",
                                                          "poetry.lock",
                                                          "Pipfile.lock",
                                                          "uv.lock",
                                                          "requirements.txt",
                                                          "requirements-dev.txt",
                                                          "Gemfile.lock",
                                                          "composer.lock",
                                                          "mix.lock",
                                                          "pubspec.lock",
                                                          "gradle.lockfile",
                                                          "packages.lock.json",
                                                          "flake.lock"};
  return *files;
}

StatusOr<EnvironmentSpec> ParseEnvironmentYaml(std::string_view text, std::string_view file_name) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return ParseYamlNode(root, file_name);
  } catch (const YAML::Exception& e) {
    return YamlError(file_name, e.mark, e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError(StrCat(file_name, ": ", e.what()));
  }
}

StatusOr<EnvironmentSpec> ParseDevcontainerJson(std::string_view text, std::string_view file_name) {
  const std::string cleaned = DropTrailingCommas(text);
  Json root;
  try {
    root = Json::parse(cleaned, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    std::string why = e.what();
    if (auto colon = why.rfind(": "); colon != std::string::npos) why = why.substr(colon + 2);
    return JsonError(file_name, cleaned, e.byte > 0 ? e.byte - 1 : 0, why);
  }
  if (!root.is_object()) {
    return InvalidArgumentError(StrCat(file_name, ":1:1: the top level must be an object"));
  }
  EnvironmentSpec spec;
  spec.sources.emplace_back(file_name);
  for (const char* key : {"onCreateCommand", "updateContentCommand", "postCreateCommand"}) {
    if (auto it = root.find(key); it != root.end() && !it->is_null()) {
      RETURN_IF_ERROR(AddCommands(file_name, key, *it, spec.setup));
    }
  }
  std::map<std::string, std::string> container;
  for (const char* key : {"containerEnv", "remoteEnv"}) {
    auto it = root.find(key);
    if (it == root.end() || it->is_null()) continue;
    if (!it->is_object()) {
      return InvalidArgumentError(StrCat(file_name, ": ", key, " must be an object"));
    }
    for (const auto& [name, value] : it->items()) {
      if (!ValidEnvName(name)) {
        return InvalidArgumentError(
            StrCat(file_name, ": invalid environment variable name '", name, "' in ", key));
      }
      if (value.is_null()) continue;  // remoteEnv: null unsets
      if (!value.is_string()) {
        return InvalidArgumentError(StrCat(file_name, ": ", key, ".", name, " must be a string"));
      }
      std::string expanded = Expand(value.get<std::string>(), container);
      if (std::string_view(key) == "containerEnv") container[name] = expanded;
      spec.env[name] = std::move(expanded);
    }
  }
  return spec;
}

StatusOr<EnvironmentSpec> LoadEnvironment(const std::filesystem::path& root) {
  auto read = [&](const std::string& relative) -> StatusOr<std::optional<std::string>> {
    const auto path = root / relative;
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(path, ec);
    if (ec || status.type() == std::filesystem::file_type::not_found) {
      return std::optional<std::string>();
    }
    if (status.type() != std::filesystem::file_type::regular) {
      return InvalidArgumentError(StrCat(relative, ":1:1: must be a regular file"));
    }
    if (std::filesystem::file_size(path, ec) > kMaxFileBytes) {
      return InvalidArgumentError(StrCat(relative, ":1:1: larger than 1 MiB"));
    }
    ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    return std::optional<std::string>(std::move(text));
  };
  EnvironmentSpec spec;
  for (const std::string& file :
       {std::string(".devcontainer/devcontainer.json"), std::string(".devcontainer.json")}) {
    ASSIGN_OR_RETURN(auto text, read(file));
    if (!text) continue;
    ASSIGN_OR_RETURN(spec, ParseDevcontainerJson(*text, file));
    break;
  }
  for (const std::string& file :
       {std::string(".nightshift/environment.yml"), std::string(".nightshift/environment.yaml")}) {
    ASSIGN_OR_RETURN(auto text, read(file));
    if (!text) continue;
    ASSIGN_OR_RETURN(EnvironmentSpec own, ParseEnvironmentYaml(*text, file));
    spec.setup.insert(spec.setup.end(), own.setup.begin(), own.setup.end());
    for (auto& [name, value] : own.env) spec.env[name] = std::move(value);
    spec.lock_files.insert(spec.lock_files.end(), own.lock_files.begin(), own.lock_files.end());
    spec.setup_timeout_seconds = own.setup_timeout_seconds;
    spec.sources.insert(spec.sources.end(), own.sources.begin(), own.sources.end());
    break;
  }
  return spec;
}

}  // namespace nightshift::workspace
