#pragma once

// The policy engine (docs/governance.md): rules in YAML, in the spirit of Cedar. A rule has an
// effect — `permit`, `forbid`, or `audit` (allows, and the decision is recorded) — and says which
// principals, actions and resources it covers, with a `when` (and `unless`) condition over the
// request. A request is decided so:
//
//   - any forbid that applies denies, whatever permits (forbid overrides permit);
//   - else a permit or audit rule that applies allows;
//   - else an agent (principal kind "agent") is denied: agents get only what a rule gives them;
//     anyone else (a user, a token, a trigger) is allowed, their scopes having decided already.
//
// A condition that cannot be evaluated (a missing attribute, a type mismatch) makes a permit not
// apply and a forbid apply: an error never opens a gate. Policies come from operators' files;
// requests carry what runs produce — command lines, paths — and are matched in time linear in
// their size (core/glob.h). Decide is thread-safe on a set no longer being added to.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/config_node.h"
#include "core/json.h"
#include "core/status.h"

namespace nightshift::policy {

// The actions rules speak of.
inline constexpr std::array<std::string_view, 9> kActions = {
    "run.start", "exec",    "file.write", "egress.connect", "secret.read",
    "repo.push", "cr.open", "cr.approve", "cr.merge"};

// An attribute's value: null, true/false, an integer, a number, a string or a list of values.
struct Value {
  using List = std::vector<Value>;
  std::variant<std::monostate, bool, int64_t, double, std::string, List> v;

  Value() = default;
  Value(bool b) : v(b) {}  // NOLINT: values are written as literals
  Value(int i) : v(int64_t{i}) {}
  Value(int64_t i) : v(i) {}
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(std::string_view s) : v(std::string(s)) {}
  Value(List list) : v(std::move(list)) {}
  Value(const std::vector<std::string>& strings);

  bool operator==(const Value& other) const;
};

using Attributes = std::map<std::string, Value, std::less<>>;

// Who acts: a kind ("agent", "user", "token", "admin", "trigger", "schedule", …) and a name
// within it, with attributes (an agent's run, who asked for it).
struct Principal {
  std::string kind;
  std::string name;
  Attributes attributes;
  std::string Describe() const { return name.empty() ? kind : kind + ":" + name; }
};

struct Request {
  Principal principal;
  std::string action;   // one of kActions
  Attributes resource;  // repository, branch, path, host, port, labels, …
  Attributes context;   // command, diff_lines, paths, hour, spend_usd, …
};

struct Decision {
  bool allowed = false;
  bool audit = false;               // an `audit` rule applied: the decision is to be recorded
  std::vector<std::string> rules;   // the ids that decided: forbids when denied, else permits
  std::vector<std::string> errors;  // "RULE: why its condition could not be evaluated"
  // One line for people and models: "forbidden by rule 'no-main': agents never push to main",
  // "no rule permits agent 'fixer' to exec", "permitted by rule 'tests'".
  std::string reason;
};

// A request as JSON ({"principal": {"kind", "name", …attributes} or "kind:name", "action",
// "resource": {…}, "context": {…}}) and back. InvalidArgument naming the field.
StatusOr<Request> RequestFromJson(const Json& json);
Json RequestToJson(const Request& request);
Json ValueToJson(const Value& value);
Json DecisionToJson(const Decision& decision);

// A rule as written.
struct Rule;

class PolicySet {
 public:
  PolicySet();
  ~PolicySet();
  PolicySet(PolicySet&&) noexcept;
  PolicySet& operator=(PolicySet&&) noexcept;

  // Adds the rules of one policy document — a mapping with `rules:` (and `cases:`, read by
  // ReadPolicyCases, not here) — recording every problem in `errors`; nothing of a document
  // with errors should be used. A rule id must be unique across the set.
  void Add(const ConfigNode& document, ConfigErrors& errors);

  Decision Decide(const Request& request) const;

  size_t size() const;
  // Each rule's id, effect and where it was written ("policies/base.yml:12").
  struct RuleInfo {
    std::string id;
    std::string effect;
    std::string source;
    std::string description;
  };
  std::vector<RuleInfo> Describe() const;

 private:
  void Index();

  std::vector<std::unique_ptr<Rule>> rules_;
  struct Bucket {
    std::vector<const Rule*> forbids;
    std::vector<const Rule*> allows;  // permit and audit
  };
  using Buckets = std::array<Bucket, kActions.size()>;
  Buckets any_kind_;                                   // for a kind no rule names
  std::map<std::string, Buckets, std::less<>> kinds_;  // by principal kind named in a rule
};

// The rules every server starts with unless the config turns them off (`policy: baseline:
// false`): agents may run commands and write files in their own sandboxes, and push and open
// change requests on the platform's branches (nightshift/…) only.
std::string_view BaselinePolicy();

// Reads policy files (and the baseline, when `baseline`) into one set. Errors name the file,
// line and column; the first is returned, all are in `errors`' lines.
StatusOr<PolicySet> LoadPolicies(const std::vector<std::string>& files, bool baseline,
                                 std::vector<std::string>* errors = nullptr);

// A test of a policy written next to it (`cases:`): a request, and what it must decide.
struct PolicyCase {
  std::string name;
  std::string where;  // "FILE:LINE"
  Request request;
  std::optional<bool> want_allowed;                    // `want: allow|deny`
  std::optional<std::vector<std::string>> want_rules;  // `rules: [...]`, in any order
};
std::vector<PolicyCase> ReadPolicyCases(const ConfigNode& document, ConfigErrors& errors);

// Whether `decision` is what `test` wants; else why not, in one line.
std::optional<std::string> CheckCase(const PolicyCase& test, const Decision& decision);

// The server's `policy:` section: files of rules (relative paths from the config file's
// directory), whether the baseline comes first, and the set they make.
struct PolicyConfig {
  std::vector<std::string> files;
  bool baseline = true;
  std::shared_ptr<const PolicySet> set;  // read by ReadPolicyConfig; the baseline alone by default
};
// Reads the section and the files it names; their errors ("FILE:LINE:COLUMN: …") go to `errors`.
void ReadPolicyConfig(const ConfigNode& node, PolicyConfig& config, ConfigErrors& errors);
// The baseline alone: what a server without a `policy:` section decides with.
std::shared_ptr<const PolicySet> BaselinePolicySet();

}  // namespace nightshift::policy
