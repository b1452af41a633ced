#include "policy/engine.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/fs.h"
#include "core/glob.h"

namespace nightshift::policy {

// ---- Values ------------------------------------------------------------------------------

Value::Value(const std::vector<std::string>& strings) {
  List list;
  list.reserve(strings.size());
  for (const auto& s : strings) list.emplace_back(s);
  v = std::move(list);
}

namespace {

// A value seen by the evaluator: a view, so that evaluating allocates nothing.
struct View {
  enum Kind : uint8_t { kNull, kBool, kInt, kDouble, kString, kList } kind = kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
  const Value::List* list = nullptr;

  bool IsNumber() const { return kind == kInt || kind == kDouble; }
  double Number() const { return kind == kInt ? static_cast<double>(i) : d; }
};

View ViewOf(const Value& value) {
  View out;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out.kind = View::kBool, out.b = x;
        } else if constexpr (std::is_same_v<T, int64_t>) {
          out.kind = View::kInt, out.i = x;
        } else if constexpr (std::is_same_v<T, double>) {
          out.kind = View::kDouble, out.d = x;
        } else if constexpr (std::is_same_v<T, std::string>) {
          out.kind = View::kString, out.s = x;
        } else if constexpr (std::is_same_v<T, Value::List>) {
          out.kind = View::kList, out.list = &x;
        }
      },
      value.v);
  return out;
}

View BoolView(bool b) {
  View out;
  out.kind = View::kBool;
  out.b = b;
  return out;
}

bool Equal(const View& a, const View& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.kind == View::kInt && b.kind == View::kInt) return a.i == b.i;
    return a.Number() == b.Number();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case View::kNull:
      return true;
    case View::kBool:
      return a.b == b.b;
    case View::kString:
      return a.s == b.s;
    case View::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i) {
        if (!Equal(ViewOf((*a.list)[i]), ViewOf((*b.list)[i]))) return false;
      }
      return true;
    default:
      return false;
  }
}

const char* KindName(View::Kind kind) {
  switch (kind) {
    case View::kNull:
      return "null";
    case View::kBool:
      return "a boolean";
    case View::kInt:
    case View::kDouble:
      return "a number";
    case View::kString:
      return "a string";
    case View::kList:
      return "a list";
  }
  return "?";
}

}  // namespace

bool Value::operator==(const Value& other) const { return Equal(ViewOf(*this), ViewOf(other)); }

Json ValueToJson(const Value& value) {
  return std::visit(
      [](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, Value::List>) {
          Json list = Json::array();
          for (const auto& item : x) list.push_back(ValueToJson(item));
          return list;
        } else {
          return x;
        }
      },
      value.v);
}

namespace {

constexpr int kMaxDepth = 32;

StatusOr<Value> ValueFromJson(const Json& json, std::string_view field, int depth = 0) {
  if (depth > kMaxDepth) return InvalidArgumentError(StrCat(field, " is nested too deeply"));
  if (json.is_null()) return Value{};
  if (json.is_boolean()) return Value(json.get<bool>());
  if (json.is_number_unsigned() && json.get<uint64_t>() > uint64_t{INT64_MAX}) {
    return Value(json.get<double>());
  }
  if (json.is_number_integer()) return Value(json.get<int64_t>());
  if (json.is_number()) return Value(json.get<double>());
  if (json.is_string()) return Value(json.get<std::string>());
  if (json.is_array()) {
    Value::List list;
    for (const auto& item : json) {
      ASSIGN_OR_RETURN(Value v, ValueFromJson(item, field, depth + 1));
      list.push_back(std::move(v));
    }
    return Value(std::move(list));
  }
  return InvalidArgumentError(StrCat(field, " must be a string, number, boolean or list"));
}

StatusOr<Attributes> AttributesFromJson(const Json& json, std::string_view field) {
  Attributes out;
  if (json.is_null()) return out;
  if (!json.is_object()) return InvalidArgumentError(StrCat(field, " must be an object"));
  for (const auto& [key, value] : json.items()) {
    ASSIGN_OR_RETURN(out[key], ValueFromJson(value, StrCat(field, ".", key)));
  }
  return out;
}

Json AttributesToJson(const Attributes& attributes) {
  Json out = Json::object();
  for (const auto& [key, value] : attributes) out[key] = ValueToJson(value);
  return out;
}

// "kind:name" or "kind".
Principal PrincipalFromText(std::string_view text) {
  Principal p;
  const size_t colon = text.find(':');
  p.kind = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) p.name = std::string(text.substr(colon + 1));
  return p;
}

}  // namespace

StatusOr<Request> RequestFromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgumentError("a request must be a JSON object");
  Request request;
  const auto principal = json.find("principal");
  if (principal == json.end() || principal->is_null()) {
    return InvalidArgumentError("principal is required");
  }
  if (principal->is_string()) {
    request.principal = PrincipalFromText(principal->get<std::string>());
  } else if (principal->is_object()) {
    for (const auto& [key, value] : principal->items()) {
      if (key == "kind" || key == "name") {
        if (!value.is_string())
          return InvalidArgumentError(StrCat("principal.", key, " must be a string"));
        (key == "kind" ? request.principal.kind : request.principal.name) =
            value.get<std::string>();
      } else {
        ASSIGN_OR_RETURN(request.principal.attributes[key],
                         ValueFromJson(value, StrCat("principal.", key)));
      }
    }
  } else {
    return InvalidArgumentError("principal must be \"kind:name\" or an object");
  }
  if (request.principal.kind.empty()) return InvalidArgumentError("principal.kind is required");
  ASSIGN_OR_RETURN(request.action, JsonString(json, "action"));
  if (std::find(kActions.begin(), kActions.end(), request.action) == kActions.end()) {
    return InvalidArgumentError(StrCat("action must be one of ", [] {
      std::string all;
      for (auto a : kActions) all += (all.empty() ? "" : ", ") + std::string(a);
      return all;
    }()));
  }
  if (auto it = json.find("resource"); it != json.end()) {
    ASSIGN_OR_RETURN(request.resource, AttributesFromJson(*it, "resource"));
  }
  if (auto it = json.find("context"); it != json.end()) {
    ASSIGN_OR_RETURN(request.context, AttributesFromJson(*it, "context"));
  }
  return request;
}

Json RequestToJson(const Request& request) {
  Json principal = AttributesToJson(request.principal.attributes);
  principal["kind"] = request.principal.kind;
  if (!request.principal.name.empty()) principal["name"] = request.principal.name;
  return Json{{"principal", principal},
              {"action", request.action},
              {"resource", AttributesToJson(request.resource)},
              {"context", AttributesToJson(request.context)}};
}

Json DecisionToJson(const Decision& decision) {
  Json out{{"decision", decision.allowed ? "allow" : "deny"},
           {"rules", decision.rules},
           {"reason", decision.reason}};
  if (decision.audit) out["audit"] = true;
  if (!decision.errors.empty()) out["errors"] = decision.errors;
  return out;
}

// ---- Conditions --------------------------------------------------------------------------

namespace {

enum class Scope : uint8_t {
  kAction,
  kPrincipalKind,
  kPrincipalName,
  kPrincipal,
  kResource,
  kContext
};

struct Expr {
  enum class Op : uint8_t {
    kLiteral,
    kRef,
    kNot,
    kAnd,
    kOr,
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kLike,
    kGlob,
    kIn,
    kContains,
    kHas
  };
  enum class Quant : uint8_t { kNone, kAny, kAll };
  Op op = Op::kLiteral;
  Quant quant = Quant::kNone;
  Scope scope = Scope::kAction;
  Value literal;     // kLiteral
  std::string key;   // kRef, kHas: the attribute
  std::string text;  // kRef, kHas: as written, for messages
  std::vector<Expr> args;
  std::shared_ptr<const Pattern> pattern;  // kLike, kGlob: the right side, compiled
};

const char* OpName(Expr::Op op) {
  switch (op) {
    case Expr::Op::kEq:
      return "==";
    case Expr::Op::kNe:
      return "!=";
    case Expr::Op::kLt:
      return "<";
    case Expr::Op::kLe:
      return "<=";
    case Expr::Op::kGt:
      return ">";
    case Expr::Op::kGe:
      return ">=";
    case Expr::Op::kLike:
      return "like";
    case Expr::Op::kGlob:
      return "glob";
    case Expr::Op::kIn:
      return "in";
    case Expr::Op::kContains:
      return "contains";
    default:
      return "?";
  }
}

// The parser: a recursive descent over the expression's bytes.
//
//   or      := and ("||" and)*
//   and     := unary ("&&" unary)*
//   unary   := "!" unary | compare
//   compare := ("any" | "all")? operand (OP operand)?  |  SCOPE "has" NAME
//   operand := STRING | NUMBER | true | false | null | REF | "[" (literal ("," literal)*)? "]"
//            | "(" or ")"
//   REF     := action | principal.kind | principal.name | principal.NAME | resource.NAME
//            | context.NAME
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  StatusOr<Expr> Parse() {
    ASSIGN_OR_RETURN(Expr e, Or(0));
    Skip();
    if (pos_ != text_.size()) return Error("unexpected text");
    return e;
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError(StrCat(what, " at column ", pos_ + 1, " of the condition"));
  }
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view token) {
    Skip();
    if (text_.substr(pos_, token.size()) != token) return false;
    // A keyword must end where a name would.
    if (std::isalpha(static_cast<unsigned char>(token.back()))) {
      const size_t end = pos_ + token.size();
      if (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                                 text_[end] == '_' || text_[end] == '.')) {
        return false;
      }
    }
    pos_ += token.size();
    return true;
  }
  std::string_view Name() {
    Skip();
    const size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                   text_[pos_] == '_' || text_[pos_] == '.')) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  StatusOr<Expr> Or(int depth) {
    if (depth > kMaxDepth) return Error("the condition is nested too deeply");
    ASSIGN_OR_RETURN(Expr left, And(depth + 1));
    while (Eat("||")) {
      ASSIGN_OR_RETURN(Expr right, And(depth + 1));
      Expr e{.op = Expr::Op::kOr};
      e.args.push_back(std::move(left));
      e.args.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  StatusOr<Expr> And(int depth) {
    ASSIGN_OR_RETURN(Expr left, Unary(depth + 1));
    while (Eat("&&")) {
      ASSIGN_OR_RETURN(Expr right, Unary(depth + 1));
      Expr e{.op = Expr::Op::kAnd};
      e.args.push_back(std::move(left));
      e.args.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  StatusOr<Expr> Unary(int depth) {
    if (depth > kMaxDepth) return Error("the condition is nested too deeply");
    Skip();
    if (pos_ < text_.size() && text_[pos_] == '!' && text_.substr(pos_, 2) != "!=") {
      ++pos_;
      ASSIGN_OR_RETURN(Expr inner, Unary(depth + 1));
      Expr e{.op = Expr::Op::kNot};
      e.args.push_back(std::move(inner));
      return e;
    }
    return Compare(depth + 1);
  }
  StatusOr<Expr> Compare(int depth) {
    Expr::Quant quant = Expr::Quant::kNone;
    if (Eat("any")) {
      quant = Expr::Quant::kAny;
    } else if (Eat("all")) {
      quant = Expr::Quant::kAll;
    }
    Skip();
    const size_t start = pos_;
    const std::string_view first = Name();
    if ((first == "principal" || first == "resource" || first == "context") && Eat("has")) {
      if (quant != Expr::Quant::kNone) return Error("'has' takes no any/all");
      const std::string_view attribute = Name();
      if (attribute.empty() || attribute.find('.') != std::string_view::npos) {
        return Error("expected an attribute name after 'has'");
      }
      Expr e{.op = Expr::Op::kHas};
      e.scope = first == "principal"  ? Scope::kPrincipal
                : first == "resource" ? Scope::kResource
                                      : Scope::kContext;
      e.key = std::string(attribute);
      e.text = StrCat(first, " has ", attribute);
      return e;
    }
    pos_ = start;
    ASSIGN_OR_RETURN(Expr left, Operand(depth + 1));
    static constexpr std::pair<std::string_view, Expr::Op> kOps[] = {
        {"==", Expr::Op::kEq},     {"!=", Expr::Op::kNe},
        {"<=", Expr::Op::kLe},     {">=", Expr::Op::kGe},
        {"<", Expr::Op::kLt},      {">", Expr::Op::kGt},
        {"like", Expr::Op::kLike}, {"glob", Expr::Op::kGlob},
        {"in", Expr::Op::kIn},     {"contains", Expr::Op::kContains}};
    for (const auto& [token, op] : kOps) {
      if (!Eat(token)) continue;
      ASSIGN_OR_RETURN(Expr right, Operand(depth + 1));
      if ((op == Expr::Op::kLike || op == Expr::Op::kGlob) &&
          (right.op != Expr::Op::kLiteral || right.literal.v.index() != 4)) {
        return Error(StrCat("'", token, "' needs a string pattern"));
      }
      Expr e{.op = op, .quant = quant};
      e.args.push_back(std::move(left));
      e.args.push_back(std::move(right));
      return e;
    }
    if (quant != Expr::Quant::kNone) return Error("expected an operator after any/all");
    return left;
  }
  StatusOr<Expr> Operand(int depth) {
    if (depth > kMaxDepth) return Error("the condition is nested too deeply");
    Skip();
    if (pos_ >= text_.size()) return Error("expected a value");
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      ASSIGN_OR_RETURN(Expr inner, Or(depth + 1));
      if (!Eat(")")) return Error("expected ')'");
      return inner;
    }
    if (c == '[') {
      ++pos_;
      Value::List list;
      if (!Eat("]")) {
        do {
          ASSIGN_OR_RETURN(Expr item, Operand(depth + 1));
          if (item.op != Expr::Op::kLiteral) return Error("a list holds literals only");
          list.push_back(std::move(item.literal));
        } while (Eat(","));
        if (!Eat("]")) return Error("expected ']'");
      }
      return Expr{.op = Expr::Op::kLiteral, .literal = Value(std::move(list))};
    }
    if (c == '"') return String();
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return Number();
    const size_t start = pos_;
    const std::string_view name = Name();
    if (name == "true" || name == "false") {
      return Expr{.op = Expr::Op::kLiteral, .literal = Value(name == "true")};
    }
    if (name == "null") return Expr{.op = Expr::Op::kLiteral};
    Expr e{.op = Expr::Op::kRef};
    e.text = std::string(name);
    if (name == "action") {
      e.scope = Scope::kAction;
      return e;
    }
    const size_t dot = name.find('.');
    const std::string_view head = name.substr(0, dot);
    const std::string_view attribute =
        dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (attribute.empty() || attribute.find('.') != std::string_view::npos ||
        (head != "principal" && head != "resource" && head != "context")) {
      pos_ = start;
      return Error(
          StrCat("expected a value or one of action, principal.NAME, resource.NAME, "
                 "context.NAME, not '",
                 name.empty() ? text_.substr(pos_, 1) : name, "'"));
    }
    e.key = std::string(attribute);
    if (head == "principal") {
      e.scope = attribute == "kind"   ? Scope::kPrincipalKind
                : attribute == "name" ? Scope::kPrincipalName
                                      : Scope::kPrincipal;
    } else {
      e.scope = head == "resource" ? Scope::kResource : Scope::kContext;
    }
    return e;
  }
  StatusOr<Expr> String() {
    ++pos_;  // the opening quote
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\' && pos_ < text_.size()) {
        const char next = text_[pos_++];
        switch (next) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case '"':
            c = '"';
            break;
          case '\\':
            // Kept as written inside a like pattern, where \\ and \* mean something.
            out += '\\';
            c = '\\';
            break;
          case '*':
            out += '\\';
            c = '*';
            break;
          default:
            return Error(StrCat("unknown escape '\\", std::string(1, next), "'"));
        }
      }
      out += c;
    }
    if (pos_ >= text_.size()) return Error("unterminated string");
    ++pos_;
    return Expr{.op = Expr::Op::kLiteral, .literal = Value(std::move(out))};
  }
  StatusOr<Expr> Number() {
    const size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
      ++pos_;
    }
    const std::string_view token = text_.substr(start, pos_ - start);
    if (token.find('.') == std::string_view::npos) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), n);
      if (ec != std::errc() || end != token.data() + token.size()) return Error("bad number");
      return Expr{.op = Expr::Op::kLiteral, .literal = Value(n)};
    }
    double d = 0;
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
    if (ec != std::errc() || end != token.data() + token.size() || !std::isfinite(d)) {
      return Error("bad number");
    }
    return Expr{.op = Expr::Op::kLiteral, .literal = Value(d)};
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// A literal `\\` or `\*` in a like pattern is as written; for glob and equality, a string's
// escapes are its bytes. The parser keeps like's escapes; these are the plain bytes.
std::string Unescaped(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == '*')) ++i;
    out += s[i];
  }
  return out;
}

// Strips like's escapes from every literal that is not a like pattern, and compiles the
// patterns.
void Normalize(Expr& e) {
  if (e.op == Expr::Op::kLike) {
    Normalize(e.args[0]);
    e.pattern =
        std::make_shared<const Pattern>(Pattern::Like(std::get<std::string>(e.args[1].literal.v)));
    return;
  }
  if (e.op == Expr::Op::kGlob) {
    for (auto& arg : e.args) Normalize(arg);
    e.pattern =
        std::make_shared<const Pattern>(Pattern::Glob(std::get<std::string>(e.args[1].literal.v)));
    return;
  }
  if (e.op == Expr::Op::kLiteral) {
    auto strip = [](auto&& self, Value& v) -> void {
      if (auto* s = std::get_if<std::string>(&v.v)) *s = Unescaped(*s);
      if (auto* l = std::get_if<Value::List>(&v.v)) {
        for (auto& item : *l) self(self, item);
      }
    };
    strip(strip, e.literal);
  }
  for (auto& arg : e.args) Normalize(arg);
}

// Evaluation. An error stops it: the message goes to `error`, the result is meaningless.
class Evaluator {
 public:
  Evaluator(const Request& request, std::string& error) : request_(request), error_(error) {}

  bool Condition(const Expr& e) {
    const View v = Eval(e);
    if (!error_.empty()) return false;
    if (v.kind != View::kBool) {
      Fail(StrCat("the condition is ", KindName(v.kind), ", not a boolean"));
      return false;
    }
    return v.b;
  }

 private:
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  View Lookup(const Attributes& attributes, const Expr& e) {
    const auto it = attributes.find(e.key);
    if (it == attributes.end()) {
      Fail(StrCat(e.text, " is missing"));
      return {};
    }
    return ViewOf(it->second);
  }

  View Eval(const Expr& e) {
    switch (e.op) {
      case Expr::Op::kLiteral:
        return ViewOf(e.literal);
      case Expr::Op::kRef: {
        View v;
        switch (e.scope) {
          case Scope::kAction:
            v.kind = View::kString, v.s = request_.action;
            return v;
          case Scope::kPrincipalKind:
            v.kind = View::kString, v.s = request_.principal.kind;
            return v;
          case Scope::kPrincipalName:
            v.kind = View::kString, v.s = request_.principal.name;
            return v;
          case Scope::kPrincipal:
            return Lookup(request_.principal.attributes, e);
          case Scope::kResource:
            return Lookup(request_.resource, e);
          case Scope::kContext:
            return Lookup(request_.context, e);
        }
        return v;
      }
      case Expr::Op::kHas: {
        const Attributes& a = e.scope == Scope::kPrincipal  ? request_.principal.attributes
                              : e.scope == Scope::kResource ? request_.resource
                                                            : request_.context;
        return BoolView(a.find(e.key) != a.end());
      }
      case Expr::Op::kNot: {
        const bool b = Bool(e.args[0], "!");
        return BoolView(!b);
      }
      case Expr::Op::kAnd:
        return BoolView(Bool(e.args[0], "&&") && Bool(e.args[1], "&&"));
      case Expr::Op::kOr:
        return BoolView(Bool(e.args[0], "||") || Bool(e.args[1], "||"));
      default:
        break;
    }
    const View left = Eval(e.args[0]);
    if (!error_.empty()) return {};
    const View right = Eval(e.args[1]);
    if (!error_.empty()) return {};
    if (e.quant == Expr::Quant::kNone) return BoolView(Binary(e, left, right));
    if (left.kind != View::kList) {
      Fail(StrCat(e.quant == Expr::Quant::kAny ? "any" : "all", " needs a list, not ",
                  KindName(left.kind)));
      return {};
    }
    const bool want = e.quant == Expr::Quant::kAll;  // all: stop at the first false
    for (const Value& item : *left.list) {
      const bool b = Binary(e, ViewOf(item), right);
      if (!error_.empty()) return {};
      if (b != want) return BoolView(!want);
    }
    return BoolView(want);
  }

  bool Bool(const Expr& e, std::string_view op) {
    const View v = Eval(e);
    if (!error_.empty()) return false;
    if (v.kind != View::kBool) {
      Fail(StrCat(op, " needs booleans, not ", KindName(v.kind)));
      return false;
    }
    return v.b;
  }

  bool Binary(const Expr& e, const View& a, const View& b) {
    const Expr::Op op = e.op;
    switch (op) {
      case Expr::Op::kEq:
        return Equal(a, b);
      case Expr::Op::kNe:
        return !Equal(a, b);
      case Expr::Op::kLt:
      case Expr::Op::kLe:
      case Expr::Op::kGt:
      case Expr::Op::kGe: {
        if (!a.IsNumber() || !b.IsNumber()) {
          Fail(StrCat(OpName(op), " needs numbers, not ", KindName(a.kind), " and ",
                      KindName(b.kind)));
          return false;
        }
        const bool ints = a.kind == View::kInt && b.kind == View::kInt;
        const int c = ints ? (a.i < b.i ? -1 : a.i > b.i)
                           : (a.Number() < b.Number() ? -1 : a.Number() > b.Number());
        return op == Expr::Op::kLt   ? c < 0
               : op == Expr::Op::kLe ? c <= 0
               : op == Expr::Op::kGt ? c > 0
                                     : c >= 0;
      }
      case Expr::Op::kLike:
      case Expr::Op::kGlob:
        if (a.kind != View::kString) {
          Fail(StrCat(OpName(op), " needs a string, not ", KindName(a.kind)));
          return false;
        }
        return e.pattern->Match(a.s);
      case Expr::Op::kIn:
        if (b.kind != View::kList) {
          Fail(StrCat("in needs a list on its right, not ", KindName(b.kind)));
          return false;
        }
        for (const Value& item : *b.list) {
          if (Equal(a, ViewOf(item))) return true;
        }
        return false;
      case Expr::Op::kContains:
        if (a.kind == View::kList) {
          for (const Value& item : *a.list) {
            if (Equal(ViewOf(item), b)) return true;
          }
          return false;
        }
        if (a.kind == View::kString && b.kind == View::kString) {
          return a.s.find(b.s) != std::string_view::npos;
        }
        Fail(StrCat("contains needs a list or two strings, not ", KindName(a.kind), " and ",
                    KindName(b.kind)));
        return false;
      default:
        Fail("unknown operator");
        return false;
    }
  }

  const Request& request_;
  std::string& error_;
};

}  // namespace

// ---- Rules -------------------------------------------------------------------------------

enum class Effect : uint8_t { kPermit, kForbid, kAudit };

struct Rule {
  std::string id;
  Effect effect = Effect::kPermit;
  std::string description;
  std::string source;  // "FILE:LINE"
  // Principal patterns: "*", "KIND" or "KIND:NAME" (NAME a like pattern). Empty: any.
  struct PrincipalPattern {
    std::string kind;             // "*": any
    std::optional<Pattern> name;  // unset: any
  };
  std::vector<PrincipalPattern> principals;
  std::array<bool, kActions.size()> actions{};
  // Resource attributes and the like patterns one of which each must match.
  std::vector<std::pair<std::string, std::vector<Pattern>>> resource;
  std::optional<Expr> when;
  std::optional<Expr> unless;

  bool CoversKind(std::string_view kind) const {
    if (principals.empty()) return true;
    for (const auto& p : principals) {
      if (p.kind == "*" || p.kind == kind) return true;
    }
    return false;
  }
};

namespace {

bool AttributeMatches(const Value& value, const std::vector<Pattern>& patterns) {
  if (const auto* list = std::get_if<Value::List>(&value.v)) {
    for (const Value& item : *list) {
      if (AttributeMatches(item, patterns)) return true;
    }
    return false;
  }
  if (const auto* s = std::get_if<std::string>(&value.v)) {
    for (const auto& pattern : patterns) {
      if (pattern.Match(*s)) return true;
    }
    return false;
  }
  std::string text;
  if (const auto* i = std::get_if<int64_t>(&value.v)) {
    text = std::to_string(*i);
  } else if (const auto* b = std::get_if<bool>(&value.v)) {
    text = *b ? "true" : "false";
  } else {
    return false;
  }
  for (const auto& pattern : patterns) {
    if (pattern.Match(text)) return true;
  }
  return false;
}

// Whether the rule applies; an error in its condition goes to `error`.
bool Applies(const Rule& rule, const Request& request, std::string& error) {
  if (!rule.principals.empty()) {
    bool any = false;
    for (const auto& p : rule.principals) {
      if ((p.kind == "*" || p.kind == request.principal.kind) &&
          (!p.name || p.name->Match(request.principal.name))) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  for (const auto& [key, patterns] : rule.resource) {
    const auto it = request.resource.find(key);
    if (it == request.resource.end() || !AttributeMatches(it->second, patterns)) return false;
  }
  Evaluator evaluator(request, error);
  if (rule.when && !evaluator.Condition(*rule.when)) return false;
  if (rule.unless && evaluator.Condition(*rule.unless)) return false;
  return error.empty();
}

int ActionIndex(std::string_view action) {
  for (size_t i = 0; i < kActions.size(); ++i) {
    if (kActions[i] == action) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> StringOrList(const ConfigNode& node, ConfigErrors& errors) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.scalar());
  } else if (node.IsSequence()) {
    for (const auto& item : node.children()) {
      if (!item.IsScalar()) {
        errors.Add(item, StrCat(item.path(), " must be a string"));
        continue;
      }
      out.push_back(item.scalar());
    }
  } else {
    errors.Add(node, StrCat(node.path(), " must be a string or a list of strings"));
  }
  return out;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
           c == '/' || c == ':';
  });
}

std::optional<Expr> ReadCondition(const ConfigNode& node, ConfigErrors& errors) {
  if (!node.IsScalar()) {
    errors.Add(node, StrCat(node.path(), " must be a string (a condition)"));
    return std::nullopt;
  }
  if (node.scalar().size() > 8192) {
    errors.Add(node, StrCat(node.path(), " is longer than 8192 bytes"));
    return std::nullopt;
  }
  auto parsed = Parser(node.scalar()).Parse();
  if (!parsed.ok()) {
    errors.Add(node, StrCat(node.path(), ": ", parsed.status().message()));
    return std::nullopt;
  }
  Normalize(*parsed);
  return std::move(*parsed);
}

std::unique_ptr<Rule> ReadRule(const ConfigNode& node, ConfigErrors& errors) {
  auto rule = std::make_unique<Rule>();
  rule->source = StrCat(errors.file_name(), ":", node.line());
  std::string effect;
  const ConfigNode* principal = nullptr;
  const ConfigNode* action = nullptr;
  const ConfigNode* resource = nullptr;
  const ConfigNode* when = nullptr;
  const ConfigNode* unless = nullptr;
  auto keep = [](const ConfigNode** slot) { return [slot](const ConfigNode& n) { *slot = &n; }; };
  if (!ReadConfigFields(node,
                        {{"id", &rule->id},
                         {"effect", &effect},
                         {"description", &rule->description},
                         {"principal", keep(&principal)},
                         {"action", keep(&action)},
                         {"resource", keep(&resource)},
                         {"when", keep(&when)},
                         {"unless", keep(&unless)}},
                        errors)) {
    return nullptr;
  }
  RequireConfig(ValidId(rule->id), node, "id", "is required: 1 to 128 of [A-Za-z0-9._:/-]", errors);
  if (effect == "permit") {
    rule->effect = Effect::kPermit;
  } else if (effect == "forbid") {
    rule->effect = Effect::kForbid;
  } else if (effect == "audit") {
    rule->effect = Effect::kAudit;
  } else {
    RequireConfig(false, node, "effect", "must be permit, forbid or audit", errors);
  }
  if (principal != nullptr) {
    for (const auto& p : StringOrList(*principal, errors)) {
      const size_t colon = p.find(':');
      std::string kind = p.substr(0, colon);
      std::string name = colon == std::string::npos ? "" : p.substr(colon + 1);
      if (kind.empty() || (colon != std::string::npos && name.empty())) {
        errors.Add(*principal, StrCat(principal->path(), ": '", p,
                                      "' must be KIND or KIND:NAME (NAME may hold *)"));
        continue;
      }
      if (kind == "*" && !name.empty()) {
        errors.Add(*principal, StrCat(principal->path(), ": '*' takes no name"));
        continue;
      }
      rule->principals.push_back(
          {.kind = std::move(kind),
           .name = name.empty() ? std::nullopt : std::optional<Pattern>(Pattern::Like(name))});
    }
  }
  if (action == nullptr) {
    RequireConfig(false, node, "action", "is required", errors);
  } else {
    for (const auto& a : StringOrList(*action, errors)) {
      bool any = false;
      for (size_t i = 0; i < kActions.size(); ++i) {
        if (a == "*" || a == kActions[i] ||
            (a.ends_with(".*") && kActions[i].starts_with(a.substr(0, a.size() - 1)))) {
          rule->actions[i] = any = true;
        }
      }
      if (!any) {
        std::string all;
        for (auto k : kActions) all += StrCat(all.empty() ? "" : ", ", k);
        errors.Add(*action, StrCat(action->path(), ": unknown action '", a, "' (expected ", all,
                                   ", a prefix such as cr.*, or *)"));
      }
    }
  }
  if (resource != nullptr && CheckConfigMapping(*resource, errors)) {
    for (const auto& attribute : resource->children()) {
      std::vector<Pattern> patterns;
      for (const auto& p : StringOrList(attribute, errors)) patterns.push_back(Pattern::Like(p));
      rule->resource.emplace_back(attribute.key(), std::move(patterns));
    }
  }
  if (when != nullptr) rule->when = ReadCondition(*when, errors);
  if (unless != nullptr) rule->unless = ReadCondition(*unless, errors);
  return rule;
}

std::string Quoted(std::string_view id) { return StrCat("'", id, "'"); }

}  // namespace

PolicySet::PolicySet() = default;
PolicySet::~PolicySet() = default;
PolicySet::PolicySet(PolicySet&&) noexcept = default;
PolicySet& PolicySet::operator=(PolicySet&&) noexcept = default;

size_t PolicySet::size() const { return rules_.size(); }

void PolicySet::Add(const ConfigNode& document, ConfigErrors& errors) {
  if (document.IsNull()) return;
  const ConfigNode* rules = nullptr;
  if (!ReadConfigFields(document,
                        {{"rules", [&](const ConfigNode& n) { rules = &n; }},
                         {"cases", [](const ConfigNode&) {}}},
                        errors) ||
      rules == nullptr || rules->IsNull()) {
    return;
  }
  if (!rules->IsSequence()) {
    errors.Add(*rules, "rules must be a list of rules");
    return;
  }
  std::set<std::string> ids;
  for (const auto& rule : rules_) ids.insert(rule->id);
  for (const auto& item : rules->children()) {
    auto rule = ReadRule(item, errors);
    if (rule == nullptr) continue;
    if (!rule->id.empty() && !ids.insert(rule->id).second) {
      errors.Add(*item.Find("id"), StrCat("rule id '", rule->id, "' is used twice"));
      continue;
    }
    rules_.push_back(std::move(rule));
  }
  Index();
}

void PolicySet::Index() {
  std::set<std::string> kinds;
  for (const auto& rule : rules_) {
    for (const auto& p : rule->principals) {
      if (p.kind != "*") kinds.insert(p.kind);
    }
  }
  auto fill = [&](Buckets& buckets, const std::string* kind) {
    buckets = {};
    for (const auto& rule : rules_) {
      if (kind == nullptr ? !rule->CoversKind("\x01") : !rule->CoversKind(*kind)) continue;
      for (size_t a = 0; a < kActions.size(); ++a) {
        if (!rule->actions[a]) continue;
        (rule->effect == Effect::kForbid ? buckets[a].forbids : buckets[a].allows)
            .push_back(rule.get());
      }
    }
  };
  fill(any_kind_, nullptr);
  kinds_.clear();
  for (const auto& kind : kinds) fill(kinds_[kind], &kind);
}

Decision PolicySet::Decide(const Request& request) const {
  Decision decision;
  const int action = ActionIndex(request.action);
  if (action < 0) {
    decision.reason = StrCat("unknown action ", Quoted(request.action));
    return decision;
  }
  const auto kind = kinds_.find(request.principal.kind);
  const Bucket& bucket = (kind == kinds_.end() ? any_kind_ : kind->second)[action];
  std::string error;
  const Rule* first_forbid = nullptr;
  for (const Rule* rule : bucket.forbids) {
    error.clear();
    const bool applies = Applies(*rule, request, error);
    if (!error.empty()) decision.errors.push_back(StrCat(rule->id, ": ", error));
    if (applies || !error.empty()) {  // a forbid that cannot be evaluated denies
      decision.rules.push_back(rule->id);
      if (first_forbid == nullptr) first_forbid = rule;
    }
  }
  if (first_forbid != nullptr) {
    decision.reason = StrCat("forbidden by rule ", Quoted(first_forbid->id));
    if (!first_forbid->description.empty()) {
      decision.reason += StrCat(": ", first_forbid->description);
    }
    if (!decision.errors.empty() && decision.errors.front().starts_with(first_forbid->id + ":")) {
      decision.reason += StrCat(" (its condition could not be evaluated: ",
                                decision.errors.front().substr(first_forbid->id.size() + 2), ")");
    }
    return decision;
  }
  for (const Rule* rule : bucket.allows) {
    error.clear();
    const bool applies = Applies(*rule, request, error);
    if (!error.empty()) decision.errors.push_back(StrCat(rule->id, ": ", error));
    if (!applies) continue;
    decision.rules.push_back(rule->id);
    if (rule->effect == Effect::kAudit) decision.audit = true;
  }
  if (!decision.rules.empty()) {
    decision.allowed = true;
    decision.reason = StrCat("permitted by rule ", Quoted(decision.rules.front()));
    return decision;
  }
  if (request.principal.kind == "agent") {
    decision.reason =
        StrCat("no rule permits agent ", Quoted(request.principal.name), " to ", request.action);
    return decision;
  }
  decision.allowed = true;
  decision.reason = StrCat("no rule applies to ", request.principal.kind, "; allowed by scope");
  return decision;
}

std::vector<PolicySet::RuleInfo> PolicySet::Describe() const {
  std::vector<RuleInfo> out;
  for (const auto& rule : rules_) {
    out.push_back({.id = rule->id,
                   .effect = rule->effect == Effect::kPermit   ? "permit"
                             : rule->effect == Effect::kForbid ? "forbid"
                                                               : "audit",
                   .source = rule->source,
                   .description = rule->description});
  }
  return out;
}

// ---- Files -------------------------------------------------------------------------------

std::string_view BaselinePolicy() {
  return R"(# The baseline: what an agent may do unless other rules forbid it.
rules:
  - id: baseline.agent-workspace
    effect: permit
    principal: agent
    action: [exec, file.write]
    description: agents run commands and write files inside their own sandbox
  - id: baseline.agent-deliver
    effect: permit
    principal: agent
    action: [repo.push, cr.open]
    resource:
      branch: "nightshift/*"
    description: an agent's work goes to the platform's own branches, for review
  - id: baseline.agent-secrets
    effect: permit
    principal: agent
    action: secret.read
    description: a run gets the secrets scoped to its repository and agent
)";
}

namespace {

void AddText(PolicySet& set, std::string_view text, const std::string& name,
             std::vector<std::string>& lines) {
  ConfigErrors errors(name);
  const ConfigNode root = ParseYamlConfig(text, errors);
  if (errors.empty()) set.Add(root, errors);
  for (auto& line : errors.Lines()) lines.push_back(std::move(line));
}

}  // namespace

StatusOr<PolicySet> LoadPolicies(const std::vector<std::string>& files, bool baseline,
                                 std::vector<std::string>* errors) {
  PolicySet set;
  std::vector<std::string> lines;
  if (baseline) AddText(set, BaselinePolicy(), "baseline", lines);
  for (const auto& file : files) {
    auto text = ReadFile(file);
    if (!text.ok()) {
      lines.push_back(text.status().message());  // "open FILE: why"
      continue;
    }
    AddText(set, *text, file, lines);
  }
  if (errors != nullptr) *errors = lines;
  if (!lines.empty()) {
    return InvalidArgumentError(lines.size() == 1
                                    ? lines.front()
                                    : StrCat(lines.front(), " (and ", lines.size() - 1, " more)"));
  }
  return set;
}

std::shared_ptr<const PolicySet> BaselinePolicySet() {
  static const std::shared_ptr<const PolicySet> baseline = [] {
    auto set = LoadPolicies({}, true);
    return std::make_shared<const PolicySet>(std::move(*set));
  }();
  return baseline;
}

void ReadPolicyConfig(const ConfigNode& node, PolicyConfig& config, ConfigErrors& errors) {
  if (!ReadConfigFields(node, {{"files", &config.files}, {"baseline", &config.baseline}}, errors)) {
    return;
  }
  const std::filesystem::path base = std::filesystem::path(errors.file_name()).parent_path();
  std::vector<std::string> resolved;
  for (const auto& file : config.files) {
    resolved.push_back(
        std::filesystem::path(file).is_absolute() || base.empty() ? file : (base / file).string());
  }
  std::vector<std::string> lines;
  auto set = LoadPolicies(resolved, config.baseline, &lines);
  for (const auto& line : lines) errors.AddUnplaced(StrCat("policy.files: ", line));
  if (set.ok()) {
    config.files = std::move(resolved);
    config.set = std::make_shared<const PolicySet>(std::move(*set));
  }
}

// ---- Cases -------------------------------------------------------------------------------

namespace {

// A scalar as YAML would type it: true/false, an integer, a number, else the string.
Value ScalarValue(const std::string& text) {
  if (text == "true") return Value(true);
  if (text == "false") return Value(false);
  if (!text.empty()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size()) return Value(n);
    double d = 0;
    auto [dend, dec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (dec == std::errc() && dend == text.data() + text.size() && std::isfinite(d)) {
      return Value(d);
    }
  }
  return Value(text);
}

Value NodeValue(const ConfigNode& node, ConfigErrors& errors) {
  if (node.IsScalar()) return ScalarValue(node.scalar());
  if (node.IsSequence()) {
    Value::List list;
    for (const auto& item : node.children()) list.push_back(NodeValue(item, errors));
    return Value(std::move(list));
  }
  if (node.IsMapping()) errors.Add(node, StrCat(node.path(), " must be a value or a list"));
  return Value{};
}

Attributes NodeAttributes(const ConfigNode& node, ConfigErrors& errors) {
  Attributes out;
  if (!CheckConfigMapping(node, errors)) return out;
  for (const auto& child : node.children()) out[child.key()] = NodeValue(child, errors);
  return out;
}

}  // namespace

std::vector<PolicyCase> ReadPolicyCases(const ConfigNode& document, ConfigErrors& errors) {
  std::vector<PolicyCase> out;
  const ConfigNode* cases = document.IsMapping() ? document.Find("cases") : nullptr;
  if (cases == nullptr || cases->IsNull()) return out;
  if (!cases->IsSequence()) {
    errors.Add(*cases, "cases must be a list");
    return out;
  }
  for (const auto& item : cases->children()) {
    PolicyCase test;
    test.where = StrCat(errors.file_name(), ":", item.line());
    std::string want;
    const ConfigNode* principal = nullptr;
    const ConfigNode* resource = nullptr;
    const ConfigNode* context = nullptr;
    const ConfigNode* rules = nullptr;
    const size_t before = errors.size();
    if (!ReadConfigFields(item,
                          {{"name", &test.name},
                           {"principal", [&](const ConfigNode& n) { principal = &n; }},
                           {"action", &test.request.action},
                           {"resource", [&](const ConfigNode& n) { resource = &n; }},
                           {"context", [&](const ConfigNode& n) { context = &n; }},
                           {"want", &want},
                           {"rules", [&](const ConfigNode& n) { rules = &n; }}},
                          errors)) {
      continue;
    }
    if (principal == nullptr) {
      RequireConfig(false, item, "principal", "is required", errors);
    } else if (principal->IsScalar()) {
      test.request.principal = PrincipalFromText(principal->scalar());
    } else if (CheckConfigMapping(*principal, errors)) {
      for (const auto& child : principal->children()) {
        if (child.key() == "kind") {
          test.request.principal.kind = child.scalar();
        } else if (child.key() == "name") {
          test.request.principal.name = child.scalar();
        } else {
          test.request.principal.attributes[child.key()] = NodeValue(child, errors);
        }
      }
    }
    RequireConfig(ActionIndex(test.request.action) >= 0, item, "action",
                  "must be one of the actions (run.start, exec, file.write, …)", errors);
    if (resource != nullptr) test.request.resource = NodeAttributes(*resource, errors);
    if (context != nullptr) test.request.context = NodeAttributes(*context, errors);
    if (want == "allow" || want == "deny") {
      test.want_allowed = want == "allow";
    } else if (!want.empty()) {
      RequireConfig(false, item, "want", "must be allow or deny", errors);
    }
    if (rules != nullptr) test.want_rules = StringOrList(*rules, errors);
    if (test.name.empty()) test.name = test.where;
    if (errors.size() == before) out.push_back(std::move(test));
  }
  return out;
}

std::optional<std::string> CheckCase(const PolicyCase& test, const Decision& decision) {
  std::vector<std::string> problems;
  if (test.want_allowed && *test.want_allowed != decision.allowed) {
    problems.push_back(StrCat("want ", *test.want_allowed ? "allow" : "deny", ", got ",
                              decision.allowed ? "allow" : "deny"));
  }
  if (test.want_rules) {
    auto want = *test.want_rules;
    auto got = decision.rules;
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    if (want != got) {
      auto join = [](const std::vector<std::string>& ids) {
        std::string out;
        for (const auto& id : ids) out += StrCat(out.empty() ? "" : ", ", id);
        return StrCat("[", out, "]");
      };
      problems.push_back(StrCat("want rules ", join(want), ", got ", join(got)));
    }
  }
  if (problems.empty()) return std::nullopt;
  std::string out;
  for (const auto& p : problems) out += StrCat(out.empty() ? "" : "; ", p);
  return out;
}

}  // namespace nightshift::policy
