#include "agent/tools.h"

#include <sodium.h>

#include <algorithm>
#include <filesystem>

#include "core/digest.h"
#include "core/secrets.h"

namespace nightshift::agent {
namespace {

// Resolves "$P" inside the sandbox (symlinks included) and refuses what leaves /workspace.
constexpr const char* kResolve = R"SH(p=$(realpath -m -- "$P") || exit 3
case "$p" in /workspace|/workspace/*) ;; *) echo "path leaves /workspace through a symlink: $P" >&2; exit 3 ;; esac
)SH";

constexpr const char* kReadFile = R"SH(
[ -e "$p" ] || { echo "no such file: $P" >&2; exit 3; }
[ -f "$p" ] || { echo "not a regular file: $P" >&2; exit 3; }
if [ -s "$p" ] && ! grep -qI . "$p"; then echo "(binary file, $(wc -c < "$p") bytes)"; exit 0; fi
awk -v s="$S" -v e="$E" 'NR >= s && (e == 0 || NR <= e) { printf "%6d\t%s\n", NR, $0 }' "$p"
)SH";

// The exact bytes, whatever the line structure: base64 on one line.
constexpr const char* kCat = R"SH(
[ -f "$p" ] || { echo "no such file: $P" >&2; exit 3; }
base64 -w0 -- "$p"
)SH";

StatusOr<std::string> DecodeBase64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return InternalError("cannot decode the file's content");
  }
  out.resize(length);
  return out;
}

constexpr const char* kWriteFile = R"SH(
[ -d "$p" ] && { echo "is a directory: $P" >&2; exit 3; }
mkdir -p -- "$(dirname -- "$p")" && cat > "$p" && echo "wrote $(wc -c < "$p") bytes to $P"
)SH";

constexpr const char* kListFiles = R"SH(
[ -d "$p" ] || { echo "not a directory: $P" >&2; exit 3; }
cd "$p" || exit 3
if [ -n "$PAT" ]; then
  find . -path ./.git -prune -o \( -type f -o -type l \) -name "$PAT" -print
else
  find . -path ./.git -prune -o \( -type f -o -type l \) -print
fi | sed 's|^\./||' | LC_ALL=C sort | head -n 2000
)SH";

constexpr const char* kSearch = R"SH(
[ -e "$p" ] || { echo "no such path: $P" >&2; exit 3; }
grep -rInE --exclude-dir=.git -e "$PAT" -- "$p" | sed 's|^/workspace/||' | head -n 1000
)SH";

Json Schema(std::vector<std::pair<std::string, std::string>> properties,
            std::vector<std::string> required) {
  Json props = Json::object();
  for (const auto& [name, type] : properties) {
    std::string_view t = type;
    std::string description;
    if (auto colon = t.find(':'); colon != std::string_view::npos) {
      description = std::string(t.substr(colon + 1));
      t = t.substr(0, colon);
    }
    props[name] = {{"type", std::string(t)}, {"description", description}};
  }
  return {{"type", "object"}, {"properties", props}, {"required", required}};
}

StatusOr<std::string> StringArg(const Json& args, const char* name, bool required) {
  auto it = args.find(name);
  if (it == args.end() || it->is_null()) {
    if (required) return InvalidArgumentError(StrCat("missing required argument '", name, "'"));
    return std::string();
  }
  if (!it->is_string())
    return InvalidArgumentError(StrCat("argument '", name, "' must be a string"));
  return it->get<std::string>();
}

StatusOr<int64_t> IntArg(const Json& args, const char* name, int64_t fallback) {
  auto it = args.find(name);
  if (it == args.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return InvalidArgumentError(StrCat("argument '", name, "' must be a non-negative integer"));
  }
  return it->get<int64_t>();
}

Tools::Result Error(std::string message) { return {std::move(message), true, false}; }

}  // namespace

Redactor::Redactor(std::vector<std::string> secrets) {
  for (const auto& secret : secrets) {
    for (auto& form : SecretForms(secret)) secrets_.push_back(std::move(form));
  }
}

std::string Redactor::operator()(std::string text) const {
  constexpr std::string_view kRedacted = "[REDACTED]";
  text = RedactForms(std::move(text), secrets_);
  const std::vector<SecretMatch> found = FindSecrets(text);
  if (found.empty()) return text;
  std::string out;
  out.reserve(text.size());
  size_t from = 0;
  for (const SecretMatch& match : found) {
    out.append(text, from, match.offset - from).append(kRedacted);
    from = match.offset + match.length;
  }
  out.append(text, from);
  return out;
}

std::string Bound(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  const size_t half = max_bytes / 2;
  return StrCat(text.substr(0, half), "\n[… ", text.size() - 2 * half, " bytes cut …]\n",
                text.substr(text.size() - half));
}

StatusOr<std::string> WorkspacePath(const std::string& path) {
  if (path.find('\0') != std::string::npos) return InvalidArgumentError("path contains a NUL byte");
  std::filesystem::path p(path.empty() ? "." : path);
  if (p.is_absolute()) {
    auto relative = p.lexically_normal().lexically_relative("/workspace");
    if (relative.empty() || *relative.begin() == "..") {
      return InvalidArgumentError(StrCat("path outside /workspace: ", path));
    }
    p = relative;
  }
  auto normal = (std::filesystem::path("/workspace") / p).lexically_normal();
  auto check = normal.lexically_relative("/workspace");
  if (check.empty() || *check.begin() == "..") {
    return InvalidArgumentError(StrCat("path outside /workspace: ", path));
  }
  std::string out = normal.string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

const std::vector<ToolSpec>& Tools::Specs() {
  static const auto* specs = new std::vector<ToolSpec>{
      {"read_file",
       "Read a text file of the repository, with line numbers. Paths are relative to /workspace "
       "(the repository root).",
       Schema({{"path", "string:file path"},
               {"start_line", "integer:first line (1-based), optional"},
               {"end_line", "integer:last line, optional"}},
              {"path"})},
      {"write_file",
       "Create or overwrite a file with the given content (parent directories are made).",
       Schema({{"path", "string:file path"}, {"content", "string:the whole new content"}},
              {"path", "content"})},
      {"edit_file",
       "Replace one exact occurrence of old_string with new_string in a file. old_string must "
       "appear exactly once (include surrounding lines to make it unique).",
       Schema({{"path", "string:file path"},
               {"old_string", "string:text to replace, exactly as in the file"},
               {"new_string", "string:replacement text"}},
              {"path", "old_string", "new_string"})},
      {"list_files",
       "List files under a directory (default: the repository root), optionally only those whose "
       "name matches a glob.",
       Schema({{"path", "string:directory, optional"},
               {"pattern", "string:file name glob, e.g. *.py, optional"}},
              {})},
      {"search",
       "Search file contents for an extended regular expression (grep -rnE); prints "
       "file:line:text.",
       Schema({{"pattern", "string:regular expression"},
               {"path", "string:file or directory, optional"}},
              {"pattern"})},
      {"run_command",
       "Run a shell command in /workspace (e.g. the tests) and get its exit code and output. No "
       "network beyond loopback.",
       Schema({{"command", "string:shell command"},
               {"timeout_seconds", "integer:optional, default and maximum set by the platform"}},
              {"command"})},
      {"finish",
       "Finish the task: call this once the work is done (or cannot be done), with a summary of "
       "what you did and how you verified it.",
       Schema({{"summary", "string:what was done, tests run, anything left"}}, {"summary"})},
  };
  return *specs;
}

StatusOr<Tools::Result> Tools::InSandbox(const std::string& script,
                                         std::map<std::string, std::string> env,
                                         const std::string& stdin_data, int64_t timeout_ms,
                                         const CancelToken* cancel, bool prefix_exit_code) {
  ASSIGN_OR_RETURN(Sandbox::Result r, sandbox_.Run(script, env, stdin_data, timeout_ms, cancel));
  if (cancel != nullptr && cancel->IsCancelled()) return CancelledError("cancelled");
  std::string output = redactor_(Bound(r.output, output_bytes_));
  if (prefix_exit_code) {
    std::string head = r.timed_out ? StrCat("timed out after ", timeout_ms / 1000, " s")
                                   : StrCat("exit code ", r.exit_code);
    return Result{StrCat(head, "\n", output), false, false};
  }
  if (r.timed_out) return Error("timed out");
  if (r.exit_code != 0) {
    while (!output.empty() && output.back() == '\n') output.pop_back();
    return Error(output.empty() ? StrCat("failed with exit code ", r.exit_code) : output);
  }
  return Result{output, false, false};
}

StatusOr<Tools::Result> Tools::Call(const ToolCall& call, const CancelToken* cancel) {
  Json args = Json::parse(call.arguments.empty() ? "{}" : call.arguments, nullptr, false);
  if (args.is_discarded()) {
    return Error(
        StrCat("invalid JSON arguments for ", call.name, ": ", Bound(call.arguments, 200)));
  }
  if (!args.is_object()) return Error("the arguments must be a JSON object");
  auto known = std::find_if(Specs().begin(), Specs().end(),
                            [&](const ToolSpec& s) { return s.name == call.name; });
  if (known == Specs().end()) {
    std::string names;
    for (const auto& s : Specs()) names += (names.empty() ? "" : ", ") + s.name;
    return Error(StrCat("unknown tool '", call.name, "'; the tools are: ", names));
  }
  auto result = Dispatch(call.name, args, cancel);
  if (!result.ok() && result.status().code() != StatusCode::kCancelled) {
    return Error(result.status().message());
  }
  return result;
}

StatusOr<Tools::Result> Tools::Dispatch(const std::string& name, const Json& args,
                                        const CancelToken* cancel) {
  constexpr int64_t kFileToolTimeoutMs = 60'000;
  if (name == "finish") {
    ASSIGN_OR_RETURN(std::string summary, StringArg(args, "summary", true));
    return Result{summary, false, true};
  }
  // What policy says about the action; a denial is the tool's error, for the model.
  auto permitted = [&](const std::string& action, policy::Attributes resource,
                       policy::Attributes context) -> Status {
    if (!authorize_) return OkStatus();
    const policy::Decision decision = authorize_(action, std::move(resource), std::move(context));
    if (decision.allowed) return OkStatus();
    return PermissionDeniedError(
        StrCat("denied by policy: ", decision.reason,
               ". Do not try to get around the rule; find another way, or finish and say why."));
  };
  if (name == "run_command") {
    ASSIGN_OR_RETURN(std::string command, StringArg(args, "command", true));
    if (command.empty()) return InvalidArgumentError("the command is empty");
    RETURN_IF_ERROR(permitted("exec", {}, {{"command", command}}));
    ASSIGN_OR_RETURN(int64_t seconds, IntArg(args, "timeout_seconds", 0));
    int64_t timeout =
        seconds > 0 ? std::min(seconds * 1000, command_timeout_ms_) : command_timeout_ms_;
    return InSandbox(command, {}, "", timeout, cancel, /*prefix_exit_code=*/true);
  }
  ASSIGN_OR_RETURN(std::string raw_path,
                   StringArg(args, "path", name != "list_files" && name != "search"));
  ASSIGN_OR_RETURN(std::string path, WorkspacePath(raw_path));
  std::map<std::string, std::string> env = {{"P", path}};
  if (name == "write_file" || name == "edit_file") {
    constexpr std::string_view kRoot = "/workspace/";
    const std::string relative =
        path.starts_with(kRoot) ? path.substr(kRoot.size()) : std::string();
    RETURN_IF_ERROR(permitted("file.write", {{"path", relative}}, {}));
  }
  if (name == "read_file") {
    ASSIGN_OR_RETURN(int64_t start, IntArg(args, "start_line", 1));
    ASSIGN_OR_RETURN(int64_t end, IntArg(args, "end_line", 0));
    env["S"] = std::to_string(std::max<int64_t>(start, 1));
    env["E"] = std::to_string(end);
    return InSandbox(StrCat(kResolve, kReadFile), env, "", kFileToolTimeoutMs, cancel);
  }
  if (name == "write_file") {
    ASSIGN_OR_RETURN(std::string content, StringArg(args, "content", true));
    return InSandbox(StrCat(kResolve, kWriteFile), env, content, kFileToolTimeoutMs, cancel);
  }
  if (name == "edit_file") {
    ASSIGN_OR_RETURN(std::string old_string, StringArg(args, "old_string", true));
    ASSIGN_OR_RETURN(std::string new_string, StringArg(args, "new_string", true));
    if (old_string.empty()) return InvalidArgumentError("old_string is empty");
    // Read the whole file, unbounded (the edit needs all of it), replace, write back.
    ASSIGN_OR_RETURN(Sandbox::Result read,
                     sandbox_.Run(StrCat(kResolve, kCat), env, "", kFileToolTimeoutMs, cancel));
    if (read.exit_code != 0) {
      std::string why = read.output;
      while (!why.empty() && why.back() == '\n') why.pop_back();
      return InvalidArgumentError(why.empty() ? "cannot read the file" : why);
    }
    ASSIGN_OR_RETURN(std::string content, DecodeBase64(read.output));
    const size_t first = content.find(old_string);
    if (first == std::string::npos) {
      return InvalidArgumentError(StrCat("old_string not found in ", raw_path,
                                         " (it must match exactly, whitespace included)"));
    }
    if (content.find(old_string, first + 1) != std::string::npos) {
      return InvalidArgumentError(StrCat("old_string appears more than once in ", raw_path,
                                         "; include more surrounding text"));
    }
    content.replace(first, old_string.size(), new_string);
    ASSIGN_OR_RETURN(Result written, InSandbox(StrCat(kResolve, kWriteFile), env, content,
                                               kFileToolTimeoutMs, cancel));
    if (written.is_error) return written;
    return Result{StrCat("edited ", raw_path), false, false};
  }
  if (name == "list_files") {
    ASSIGN_OR_RETURN(env["PAT"], StringArg(args, "pattern", false));
    return InSandbox(StrCat(kResolve, kListFiles), env, "", kFileToolTimeoutMs, cancel);
  }
  if (name == "search") {
    ASSIGN_OR_RETURN(env["PAT"], StringArg(args, "pattern", true));
    if (env["PAT"].empty()) return InvalidArgumentError("the pattern is empty");
    ASSIGN_OR_RETURN(Result found,
                     InSandbox(StrCat(kResolve, kSearch), env, "", kFileToolTimeoutMs, cancel));
    if (!found.is_error && found.output.empty()) found.output = "no matches";
    return found;
  }
  return InvalidArgumentError(StrCat("unknown tool '", name, "'"));
}

}  // namespace nightshift::agent
