// The error reasons the contracts promise and the ones the code gives must
// agree, in both directions:
//  - every reason the .proto comments or the README document with a status
//    code ("PERMISSION_DENIED (reason NOT_CASE_OWNER)", "ABORTED, reason
//    ETAG_MISMATCH") is produced somewhere in common/ or services/ with that
//    code; a reason documented without a code ("Reasons: A, B") is
//    produced with some code;
//  - every reason the code produces (google.rpc.ErrorInfo through
//    ErrorWithReason, directly or through a helper that passes its
//    parameter on, such as Denied("NOT_ISSUER", ...)) is documented, and
//    where the documentation names codes for it, with one of them.
// The sources are read as text: a call whose reason the scan cannot follow
// (neither a literal, a constant nor a helper's parameter) fails the test
// until it is listed in kDynamicReasonSites below.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"

namespace lotse::testing {
namespace {

// ---------------------------------------------------------------------------
// Lists to extend. Keep each entry's comment: it is the reason it is here.

// Reason expressions the scan cannot follow, by file, and what they yield.
// Each converts the AccessDenialReason of an access decision (identity's
// CheckAccess) into the ErrorInfo reason of the refused read: the enum
// value's name without "ACCESS_DENIAL_REASON_" (UNSPECIFIED becomes
// NO_LEGAL_BASIS), documented in lotse/type/v1/access.proto.
struct DynamicReasonSite {
  const char* file;
  const char* expression;  // the reason argument, as written
};
const DynamicReasonSite kDynamicReasonSites[] = {
    {"services/identity/service/person_access.cc", "reason"},
    {"services/cases/service/plan_handlers.cc",
     "type::v1::AccessDenialReason_Name(d.denial_reason).substr(21)"},
    {"services/courses/service/courses_service.cc", "reason"},
    {"services/placement/service/placement_service.cc", "reason"},
};

// Reasons the code produces that neither the contracts nor the README
// document, on purpose. Add a reason here only with the reason why clients
// never see it.
const std::set<std::string> kInternalReasons = {
    // A sealed record whose person's key was shredded by an erasure
    // (common/lifecycle/person_keys.h): the outbox relay and the cases
    // watch history skip such records, so no RPC answers with it.
    "PERSON_KEY_SHREDDED",
};

// Words the documentation writes after "reason" that are no ErrorInfo
// reason at all, such as the reason column of an audit record. Enum values
// ("closes one (reason DUPLICATE)") need no entry: they are recognised.
const std::set<std::string> kNotErrorReasons = {
    // SearchPersons / FindDuplicates: the audit record of a person disclosed
    // only as a match carries this reason; the call itself succeeds.
    "MATCH_ONLY",
    // The audit record a restore from a backup appends to each chain
    // (common/server/backup_command.h); no RPC answers with it.
    "RESTORED",
};

// Reasons the contracts document although no code produces them yet, so
// that clients handle them before the server starts to.
const std::set<std::string> kReservedReasons = {
    // WatchCaseEvents: the case event history is retained in full today,
    // so no cursor expires; the contract keeps the code for when it is
    // pruned.
    "CURSOR_EXPIRED",
};

// ---------------------------------------------------------------------------

const char* const kStatusCodes[] = {"CANCELLED",
                                    "UNKNOWN",
                                    "INVALID_ARGUMENT",
                                    "DEADLINE_EXCEEDED",
                                    "NOT_FOUND",
                                    "ALREADY_EXISTS",
                                    "PERMISSION_DENIED",
                                    "UNAUTHENTICATED",
                                    "RESOURCE_EXHAUSTED",
                                    "FAILED_PRECONDITION",
                                    "ABORTED",
                                    "OUT_OF_RANGE",
                                    "UNIMPLEMENTED",
                                    "INTERNAL",
                                    "UNAVAILABLE",
                                    "DATA_LOSS"};

bool IsStatusCode(absl::string_view word) {
  for (const char* code : kStatusCodes) {
    if (word == code) return true;
  }
  return false;
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Files under `dir` (relative to the source root) ending in one of
// `suffixes`, as paths relative to the source root.
std::vector<std::string> FilesUnder(const std::string& dir,
                                    const std::vector<std::string>& suffixes) {
  std::vector<std::string> out;
  const std::filesystem::path root(SourceDir());
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root / dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().lexically_relative(root).string();
    for (const std::string& suffix : suffixes) {
      if (absl::EndsWith(path, suffix)) out.push_back(path);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

int LineOf(const std::string& text, size_t pos) {
  return 1 +
         static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

// Where something was found, for messages.
struct Place {
  std::string file;
  int line = 0;
  std::string ToString() const { return absl::StrCat(file, ":", line); }
};

// ---------------------------------------------------------------------------
// The documentation side.

struct Mention {
  std::string code;  // empty: documented without a code
  std::string reason;
  Place place;
};

// An UPPER_SNAKE token at `pos`: [A-Z][A-Z0-9_]*[A-Z0-9], two characters or
// more, not part of a longer word. Its length, or 0.
size_t TokenAt(absl::string_view text, size_t pos) {
  if (pos >= text.size() || !absl::ascii_isupper(text[pos])) return 0;
  if (pos > 0 && IsIdentChar(text[pos - 1])) return 0;
  size_t end = pos;
  while (end < text.size() &&
         (absl::ascii_isupper(text[end]) || absl::ascii_isdigit(text[end]) ||
          text[end] == '_')) {
    ++end;
  }
  if (end < text.size() && IsIdentChar(text[end])) return 0;  // "Reasons"
  while (end > pos && text[end - 1] == '_') --end;
  return end - pos >= 2 ? end - pos : 0;
}

size_t SkipSpace(absl::string_view text, size_t pos) {
  while (pos < text.size() && absl::ascii_isspace(text[pos])) ++pos;
  return pos;
}

// Names of proto enum values ("CASE_CLOSING_REASON_DUPLICATE = 3;").
std::set<std::string> EnumValues(const std::vector<std::string>& protos) {
  std::set<std::string> values;
  for (const std::string& file : protos) {
    const std::string text =
        ReadText(std::filesystem::path(SourceDir()) / file);
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      const size_t length = TokenAt(line, 0);
      if (length == 0) continue;
      absl::string_view rest =
          absl::StripLeadingAsciiWhitespace(line.substr(length));
      if (absl::ConsumePrefix(&rest, "=")) {
        values.insert(std::string(line.substr(0, length)));
      }
    }
  }
  return values;
}

// "reason DUPLICATE" next to a CaseClosingReason field names an enum value,
// not an error reason.
bool IsEnumValueName(const std::set<std::string>& values,
                     const std::string& word) {
  for (const std::string& value : values) {
    if (value == word || absl::EndsWith(value, absl::StrCat("_", word))) {
      return true;
    }
  }
  return false;
}

// The status code written right before `pos` ("PERMISSION_DENIED (",
// "ABORTED, ", "ALREADY_EXISTS ", "UNAUTHENTICATED and ", "INVALID_ARGUMENT
// with "), or "".
std::string CodeBefore(absl::string_view text, size_t pos) {
  auto word_before = [&text](size_t end, size_t* begin) {
    while (end > 0 && absl::ascii_isspace(text[end - 1])) --end;
    *begin = end;
    while (*begin > 0 && IsIdentChar(text[*begin - 1])) --*begin;
    return text.substr(*begin, end - *begin);
  };
  size_t end = pos;
  while (end > 0 && absl::ascii_isspace(text[end - 1])) --end;
  if (end > 0 && (text[end - 1] == '(' || text[end - 1] == ',')) --end;
  size_t begin = 0;
  absl::string_view word = word_before(end, &begin);
  if (word == "and" || word == "with") word = word_before(begin, &begin);
  return IsStatusCode(word) ? std::string(word) : "";
}

// Reason mentions in one block of prose: "reason X", "reasons X, Y or Z",
// "Reasons: X / Y", each bound to the status code written right before
// it, if any. `line_of` maps an offset in `text` to a line of `file`.
void ScanProse(absl::string_view text, const std::string& file,
               const std::function<int(size_t)>& line_of,
               const std::set<std::string>& enum_values,
               std::vector<Mention>* out) {
  // The list of reasons starting at `next`, bound to `code`.
  auto take_list = [&](size_t next, const std::string& code) {
    for (;;) {
      const size_t length = TokenAt(text, next);
      if (length == 0) return;
      const std::string token(text.substr(next, length));
      if (IsStatusCode(token)) return;
      out->push_back({code, token, {file, line_of(next)}});
      size_t after = SkipSpace(text, next + length);
      if (after < text.size() && (text[after] == ',' || text[after] == '/')) {
        after = SkipSpace(text, after + 1);
      } else if (text.substr(after, 3) == "or ") {
        after = SkipSpace(text, after + 2);
      } else if (text.substr(after, 4) == "and ") {
        after = SkipSpace(text, after + 3);
      } else {
        return;
      }
      next = after;
    }
  };
  // "ALREADY_EXISTS ACTIVE_BOOKING_EXISTS", "FAILED_PRECONDITION
  // (WORK_PERMISSION_UNKNOWN)": a code followed directly by reasons. Not
  // when the word after the code names an enum value: "CANCELLED
  // ATTENDING" is two booking states.
  for (size_t pos = 0; pos < text.size(); ++pos) {
    const size_t length = TokenAt(text, pos);
    if (length == 0) continue;
    const std::string word(text.substr(pos, length));
    size_t next = pos + length;
    pos = next;
    if (!IsStatusCode(word)) continue;
    next = SkipSpace(text, next);
    if (next < text.size() && (text[next] == '(' || text[next] == ',')) {
      next = SkipSpace(text, next + 1);
    }
    const size_t first = TokenAt(text, next);
    if (first == 0 ||
        IsEnumValueName(enum_values, std::string(text.substr(next, first)))) {
      continue;
    }
    take_list(next, word);
  }
  for (size_t pos = 0; (pos = text.find("eason", pos)) != text.npos; ++pos) {
    if (pos == 0 || (text[pos - 1] != 'r' && text[pos - 1] != 'R')) continue;
    const size_t start = pos - 1;
    if (start > 0 && IsIdentChar(text[start - 1])) continue;
    size_t next = pos + 5;
    if (next < text.size() && text[next] == 's') ++next;
    if (next < text.size() && text[next] == ':') ++next;
    if (next >= text.size() || !absl::ascii_isspace(text[next])) continue;
    take_list(SkipSpace(text, next), CodeBefore(text, start));
  }
}

// The comments of a .proto file as blocks of prose (consecutive // lines
// joined), each scanned for mentions.
void ScanProto(const std::string& file,
               const std::set<std::string>& enum_values,
               std::vector<Mention>* out) {
  const std::string text = ReadText(std::filesystem::path(SourceDir()) / file);
  std::string block;
  std::vector<std::pair<size_t, int>> line_starts;  // offset in block, line
  auto flush = [&] {
    if (block.empty()) return;
    ScanProse(
        block, file,
        [&line_starts](size_t offset) {
          int line = 0;
          for (const auto& [start, l] : line_starts) {
            if (start <= offset) line = l;
          }
          return line;
        },
        enum_values, out);
    block.clear();
    line_starts.clear();
  };
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&stripped, "//")) {
      flush();
      continue;
    }
    line_starts.push_back({block.size(), line_number});
    absl::StrAppend(&block, stripped, " ");
  }
  flush();
}

// Markdown: backticks dropped, the whole file one block of prose.
void ScanMarkdown(const std::string& file,
                  const std::set<std::string>& enum_values,
                  std::vector<Mention>* out) {
  std::string text = ReadText(std::filesystem::path(SourceDir()) / file);
  text.erase(std::remove(text.begin(), text.end(), '`'), text.end());
  ScanProse(
      text, file, [&text](size_t offset) { return LineOf(text, offset); },
      enum_values, out);
}

// The AccessDenialReason values without their prefix: access.proto says a
// refused direct read carries them as the reason of PERMISSION_DENIED.
std::vector<std::string> AccessDenialReasons() {
  const std::string text = ReadText(std::filesystem::path(SourceDir()) /
                                    "proto/lotse/type/v1/access.proto");
  std::vector<std::string> out;
  const size_t begin = text.find("enum AccessDenialReason {");
  const size_t end = text.find('}', begin);
  if (begin == text.npos || end == text.npos) return out;
  for (absl::string_view line :
       absl::StrSplit(text.substr(begin, end - begin), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "ACCESS_DENIAL_REASON_")) continue;
    const std::string name(line.substr(0, line.find(' ')));
    if (name != "UNSPECIFIED") out.push_back(name);
  }
  return out;
}

std::vector<Mention> DocumentedReasons(
    const std::set<std::string>& enum_values) {
  std::vector<Mention> out;
  for (const std::string& file : FilesUnder("proto/lotse", {".proto"})) {
    ScanProto(file, enum_values, &out);
  }
  ScanMarkdown("README.md", enum_values, &out);
  for (const std::string& reason : AccessDenialReasons()) {
    out.push_back(
        {"PERMISSION_DENIED", reason, {"proto/lotse/type/v1/access.proto", 0}});
  }
  return out;
}

// ---------------------------------------------------------------------------
// The code side.

// `text` with comments blanked out (same length, line breaks kept), string
// and character literals untouched.
std::string StripComments(const std::string& text) {
  std::string out = text;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '"' || out[i] == '\'') {
      const char quote = out[i];
      for (++i; i < out.size() && out[i] != quote; ++i) {
        if (out[i] == '\\') ++i;
      }
    } else if (out.compare(i, 2, "//") == 0) {
      for (; i < out.size() && out[i] != '\n'; ++i) out[i] = ' ';
    } else if (out.compare(i, 2, "/*") == 0) {
      const size_t end = std::min(out.find("*/", i + 2) + 2, out.size());
      for (; i < end; ++i) {
        if (out[i] != '\n') out[i] = ' ';
      }
      --i;
    }
  }
  return out;
}

// The arguments of the call whose '(' is at `open`, trimmed; nested
// brackets and literals kept together.
std::vector<std::string> CallArguments(const std::string& text, size_t open) {
  std::vector<std::string> args;
  std::string current;
  int depth = 0;
  for (size_t i = open + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      const size_t start = i;
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      current.append(text, start, i - start + 1);
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) {
        args.emplace_back(absl::StripAsciiWhitespace(current));
        return args;
      }
      --depth;
    }
    if (c == ',' && depth == 0) {
      args.emplace_back(absl::StripAsciiWhitespace(current));
      current.clear();
      continue;
    }
    current.push_back(c);
  }
  return args;
}

// "absl::StatusCode::kFailedPrecondition" -> "FAILED_PRECONDITION"; "" for
// any other expression.
std::string CodeOf(absl::string_view expression) {
  if (!absl::ConsumePrefix(&expression, "absl::StatusCode::k")) return "";
  std::string out;
  for (size_t i = 0; i < expression.size(); ++i) {
    const char c = expression[i];
    if (!IsIdentChar(c)) return "";
    if (i > 0 && absl::ascii_isupper(c)) out.push_back('_');
    out.push_back(absl::ascii_toupper(c));
  }
  return out;
}

bool IsStringLiteral(absl::string_view s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"';
}

bool IsIdentifier(absl::string_view s) {
  return !s.empty() && !absl::ascii_isdigit(s[0]) &&
         std::all_of(s.begin(), s.end(), IsIdentChar);
}

// A function definition enclosing a position: its name and parameter names.
struct Enclosing {
  std::string name;
  std::vector<std::string> params;
};

// The innermost named function (not a lambda, not a control statement)
// whose body contains `pos`.
std::optional<Enclosing> EnclosingFunction(const std::string& text,
                                           size_t pos) {
  // Each open brace with the text before it, back to the previous ';', '{'
  // or '}'.
  std::vector<std::string> headers;
  size_t statement_start = 0;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (c == '{') {
      headers.push_back(text.substr(statement_start, i - statement_start));
      statement_start = i + 1;
    } else if (c == '}') {
      if (!headers.empty()) headers.pop_back();
      statement_start = i + 1;
    } else if (c == ';') {
      statement_start = i + 1;
    }
  }
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    absl::string_view header = absl::StripAsciiWhitespace(*it);
    const size_t open = header.find('(');
    if (open == header.npos || header.find(']') != header.npos) continue;
    if (header.substr(0, open).find('=') != header.npos) continue;
    size_t name_end = open;
    while (name_end > 0 && absl::ascii_isspace(header[name_end - 1])) {
      --name_end;
    }
    size_t name_begin = name_end;
    while (name_begin > 0 && IsIdentChar(header[name_begin - 1])) {
      --name_begin;
    }
    const std::string name(header.substr(name_begin, name_end - name_begin));
    static const std::set<std::string> kNotFunctions = {
        "if", "for", "while", "switch", "catch", "return", "sizeof"};
    if (name.empty() || kNotFunctions.count(name)) continue;
    Enclosing found;
    found.name = name;
    const std::string header_text(header);
    for (const std::string& param : CallArguments(header_text, open)) {
      absl::string_view p = absl::string_view(param).substr(0, param.find('='));
      p = absl::StripTrailingAsciiWhitespace(p);
      size_t begin = p.size();
      while (begin > 0 && IsIdentChar(p[begin - 1])) --begin;
      found.params.emplace_back(p.substr(begin));
    }
    return found;
  }
  return std::nullopt;
}

struct Production {
  std::string code;
  std::string reason;
  Place place;
};

struct Unfollowed {
  std::string code;
  std::string expression;
  Place place;
};

// A function that passes one of its parameters on as the reason:
// Denied(reason, message) -> ErrorWithReason(kPermissionDenied, reason, ...)
// or NotFound(what, name) -> reason absl::StrCat(what, "_NOT_FOUND").
struct Helper {
  std::string name;
  size_t reason_index;
  std::string suffix;
  std::string code;
  std::string scope;  // directory whose files may call it
  bool operator<(const Helper& o) const {
    return std::tie(name, reason_index, suffix, code, scope) <
           std::tie(o.name, o.reason_index, o.suffix, o.code, o.scope);
  }
};

struct CodeScan {
  std::vector<Production> produced;
  std::vector<Unfollowed> unfollowed;
  std::set<Helper> helpers;
};

class Scanner {
 public:
  Scanner() {
    for (const char* dir : {"common", "services"}) {
      for (const std::string& file : FilesUnder(dir, {".cc", ".h"})) {
        sources_[file] =
            StripComments(ReadText(std::filesystem::path(SourceDir()) / file));
      }
    }
    for (const auto& [file, text] : sources_) CollectConstants(text);
  }

  CodeScan Scan() {
    for (const auto& [file, text] : sources_) {
      // The definition of ErrorWithReason itself.
      if (absl::StartsWith(file, "common/errors/status.")) continue;
      for (size_t open : CallsOf(text, "ErrorWithReason")) {
        const std::vector<std::string> args = CallArguments(text, open);
        if (args.size() < 2) continue;
        Follow(file, text, open, args[1], "", CodeOf(args[0]), args[0]);
      }
    }
    std::vector<Helper> pending(scan_.helpers.begin(), scan_.helpers.end());
    std::set<Helper> done;
    while (!pending.empty()) {
      const Helper helper = pending.back();
      pending.pop_back();
      if (!done.insert(helper).second) continue;
      const size_t before = scan_.helpers.size();
      for (const auto& [file, text] : sources_) {
        if (!absl::StartsWith(file, helper.scope + "/")) continue;
        for (size_t open : CallsOf(text, helper.name)) {
          const std::vector<std::string> args = CallArguments(text, open);
          if (helper.reason_index >= args.size()) continue;
          const std::string& arg = args[helper.reason_index];
          if (IsDeclaration(arg)) continue;  // the helper's own signature
          Follow(file, text, open, arg, helper.suffix, helper.code,
                 helper.code);
        }
      }
      if (scan_.helpers.size() != before) {
        pending.assign(scan_.helpers.begin(), scan_.helpers.end());
      }
    }
    return scan_;
  }

 private:
  // Offsets of the '(' of every call `name(`.
  static std::vector<size_t> CallsOf(const std::string& text,
                                     const std::string& name) {
    std::vector<size_t> out;
    const std::string needle = name + "(";
    for (size_t pos = 0; (pos = text.find(needle, pos)) != text.npos;
         pos += needle.size()) {
      if (pos > 0 && IsIdentChar(text[pos - 1])) continue;
      out.push_back(pos + name.size());
    }
    return out;
  }

  // "absl::string_view reason", "const std::string& what": a parameter
  // declaration, not an argument.
  static bool IsDeclaration(absl::string_view arg) {
    if (IsStringLiteral(arg)) return false;
    const size_t split = arg.find_last_of(" &*");
    if (split == arg.npos || !IsIdentifier(arg.substr(split + 1))) {
      return false;
    }
    const absl::string_view type = arg.substr(0, split);
    return std::any_of(type.begin(), type.end(), IsIdentChar) &&
           std::all_of(type.begin(), type.end(), [](char c) {
             return IsIdentChar(c) || c == ':' || c == '<' || c == '>' ||
                    c == ' ' || c == '&' || c == '*';
           });
  }

  // kFoo[] = "FOO" / kFoo = "FOO"
  void CollectConstants(const std::string& text) {
    for (size_t pos = 0; (pos = text.find("= \"", pos)) != text.npos; ++pos) {
      size_t end = pos;
      while (end > 0 && absl::ascii_isspace(text[end - 1])) --end;
      if (end >= 2 && text.compare(end - 2, 2, "[]") == 0) end -= 2;
      size_t begin = end;
      while (begin > 0 && IsIdentChar(text[begin - 1])) --begin;
      const std::string name = text.substr(begin, end - begin);
      const size_t close = text.find('"', pos + 3);
      if (name.size() < 2 || name[0] != 'k' || close == text.npos) continue;
      constants_[name] = text.substr(pos + 3, close - pos - 3);
    }
  }

  void Follow(const std::string& file, const std::string& text, size_t at,
              const std::string& reason_expression, const std::string& suffix,
              const std::string& code, const std::string& code_expression) {
    const Place place{file, LineOf(text, at)};
    if (code.empty()) {
      scan_.unfollowed.push_back(
          {"?", absl::StrCat("the status code ", code_expression), place});
      return;
    }
    if (IsStringLiteral(reason_expression)) {
      scan_.produced.push_back(
          {code,
           absl::StrCat(
               reason_expression.substr(1, reason_expression.size() - 2),
               suffix),
           place});
      return;
    }
    if (auto constant = constants_.find(reason_expression);
        constant != constants_.end()) {
      scan_.produced.push_back(
          {code, absl::StrCat(constant->second, suffix), place});
      return;
    }
    // A parameter passed on, possibly with a suffix:
    // absl::StrCat(what, "_NOT_FOUND").
    std::string parameter = reason_expression;
    std::string added;
    absl::string_view rest = reason_expression;
    if (absl::ConsumePrefix(&rest, "absl::StrCat(") &&
        absl::ConsumeSuffix(&rest, ")")) {
      const std::vector<std::string> parts = absl::StrSplit(rest, ',');
      if (parts.size() == 2) {
        parameter = std::string(absl::StripAsciiWhitespace(parts[0]));
        const std::string literal(absl::StripAsciiWhitespace(parts[1]));
        if (IsStringLiteral(literal)) {
          added = literal.substr(1, literal.size() - 2);
        }
      }
    }
    const std::optional<Enclosing> function = EnclosingFunction(text, at);
    if (IsIdentifier(parameter) && function.has_value() &&
        (parameter == reason_expression || !added.empty())) {
      const auto& params = function->params;
      const auto it = std::find(params.begin(), params.end(), parameter);
      if (it != params.end()) {
        const std::vector<std::string> parts = absl::StrSplit(file, '/');
        scan_.helpers.insert(
            {function->name, static_cast<size_t>(it - params.begin()),
             absl::StrCat(added, suffix), code,
             absl::StrCat(parts[0], "/", parts.size() > 1 ? parts[1] : "")});
        return;
      }
    }
    scan_.unfollowed.push_back(
        {code, absl::StrCat("the reason ", reason_expression), place});
  }

  std::map<std::string, std::string> sources_;
  std::map<std::string, std::string> constants_;
  CodeScan scan_;
};

// The dynamic sites resolved to the AccessDenialReason names; what remains
// unfollowed is returned.
std::vector<Unfollowed> ResolveDynamicSites(CodeScan& scan,
                                            std::set<std::string>* used) {
  std::vector<Unfollowed> left;
  const std::vector<std::string> names = AccessDenialReasons();
  for (const Unfollowed& u : scan.unfollowed) {
    bool known = false;
    for (const DynamicReasonSite& site : kDynamicReasonSites) {
      if (u.place.file == site.file &&
          u.expression == absl::StrCat("the reason ", site.expression)) {
        known = true;
        used->insert(absl::StrCat(site.file, ": ", site.expression));
      }
    }
    if (!known) {
      left.push_back(u);
      continue;
    }
    for (const std::string& name : names) {
      scan.produced.push_back({u.code, name, u.place});
    }
  }
  return left;
}

class ContractReasonsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    enum_values_ = new std::set<std::string>(
        EnumValues(FilesUnder("proto/lotse", {".proto"})));
    documented_ = new std::vector<Mention>(DocumentedReasons(*enum_values_));
    scan_ = new CodeScan(Scanner().Scan());
    used_sites_ = new std::set<std::string>();
    unfollowed_ =
        new std::vector<Unfollowed>(ResolveDynamicSites(*scan_, used_sites_));
  }

  // reason -> codes it is produced with
  static std::map<std::string, std::set<std::string>> ProducedCodes() {
    std::map<std::string, std::set<std::string>> out;
    for (const Production& p : scan_->produced) out[p.reason].insert(p.code);
    return out;
  }

  static std::vector<Mention>* documented_;
  static CodeScan* scan_;
  static std::vector<Unfollowed>* unfollowed_;
  static std::set<std::string>* enum_values_;
  static std::set<std::string>* used_sites_;  // of kDynamicReasonSites
};

std::vector<Mention>* ContractReasonsTest::documented_ = nullptr;
CodeScan* ContractReasonsTest::scan_ = nullptr;
std::vector<Unfollowed>* ContractReasonsTest::unfollowed_ = nullptr;
std::set<std::string>* ContractReasonsTest::enum_values_ = nullptr;
std::set<std::string>* ContractReasonsTest::used_sites_ = nullptr;

TEST_F(ContractReasonsTest, TheScansFindTheCallingConventions) {
  // Guards the scanners themselves: if they found nothing, the other tests
  // would pass vacuously.
  EXPECT_GT(scan_->produced.size(), 100u);
  EXPECT_GE(scan_->helpers.size(), 3u);  // Denied, Precondition, NotFound
  bool produced = false;
  for (const Production& p : scan_->produced) {
    produced = produced ||
               (p.reason == "MISSING_PURPOSE" && p.code == "UNAUTHENTICATED" &&
                p.place.file == "common/server/request_context.cc");
  }
  EXPECT_TRUE(produced);
  std::set<std::string> documenting;
  for (const Mention& m : *documented_) {
    if (m.reason == "INVALID_PURPOSE" && m.code == "UNAUTHENTICATED") {
      documenting.insert(m.place.file);
    }
  }
  EXPECT_EQ(documenting,
            (std::set<std::string>{
                "README.md", "proto/lotse/cases/v1/cases_service.proto",
                "proto/lotse/courses/v1/courses_service.proto",
                "proto/lotse/identity/v1/identity_service.proto",
                "proto/lotse/placement/v1/placement_service.proto"}));
}

TEST_F(ContractReasonsTest, EveryReasonSourceIsFollowed) {
  ASSERT_FALSE(scan_->produced.empty()) << "the scan found no reasons at all";
  std::vector<std::string> problems;
  for (const Unfollowed& u : *unfollowed_) {
    problems.push_back(absl::StrCat(
        u.place.ToString(), ": cannot follow ", u.expression, " (code ", u.code,
        "). Write the code as absl::StatusCode::k..., the reason as a "
        "literal, a k-constant or a parameter the caller fills in, or list "
        "the site in kDynamicReasonSites with what it yields"));
  }
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

TEST_F(ContractReasonsTest, EveryDocumentedReasonIsProducedWithItsCode) {
  ASSERT_FALSE(documented_->empty()) << "the contracts document no reasons";
  const auto produced = ProducedCodes();
  std::vector<std::string> problems;
  for (const Mention& m : *documented_) {
    if (kReservedReasons.count(m.reason) || kNotErrorReasons.count(m.reason)) {
      continue;
    }
    const auto it = produced.find(m.reason);
    if (m.code.empty()) {
      // "reason DUPLICATE" next to an enum field is that enum's value.
      if (it == produced.end() && !IsEnumValueName(*enum_values_, m.reason)) {
        problems.push_back(absl::StrCat(m.place.ToString(),
                                        ": documents reason ", m.reason,
                                        ", which no code produces"));
      }
      continue;
    }
    if (it == produced.end() || !it->second.count(m.code)) {
      problems.push_back(absl::StrCat(
          m.place.ToString(), ": documents ", m.code, " (reason ", m.reason,
          "); the code produces it ",
          it == produced.end()
              ? std::string("nowhere")
              : absl::StrCat("with ", absl::StrJoin(it->second, ", "))));
    }
  }
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

TEST_F(ContractReasonsTest, EveryProducedReasonIsDocumentedWithThatCode) {
  ASSERT_FALSE(scan_->produced.empty()) << "the scan found no reasons at all";
  std::map<std::string, std::set<std::string>> documented_codes;
  for (const Mention& m : *documented_) {
    auto& codes = documented_codes[m.reason];
    if (!m.code.empty()) codes.insert(m.code);
  }
  std::vector<std::string> problems;
  for (const Production& p : scan_->produced) {
    if (kInternalReasons.count(p.reason)) continue;
    const auto it = documented_codes.find(p.reason);
    if (it == documented_codes.end()) {
      problems.push_back(absl::StrCat(
          p.place.ToString(), ": produces ", p.code, " (reason ", p.reason,
          "), which no contract and not the README documents"));
    } else if (!it->second.empty() && !it->second.count(p.code)) {
      problems.push_back(absl::StrCat(
          p.place.ToString(), ": produces ", p.code, " (reason ", p.reason,
          "), documented with ", absl::StrJoin(it->second, ", ")));
    }
  }
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

TEST_F(ContractReasonsTest, AllowListsHoldOnlyWhatIsStillTrue) {
  const auto produced = ProducedCodes();
  for (const std::string& reason : kInternalReasons) {
    EXPECT_TRUE(produced.count(reason)) << reason << " is no longer produced";
  }
  for (const std::string& reason : kReservedReasons) {
    EXPECT_FALSE(produced.count(reason))
        << reason << " is produced now: take it off kReservedReasons";
  }
  for (const DynamicReasonSite& site : kDynamicReasonSites) {
    EXPECT_TRUE(
        used_sites_->count(absl::StrCat(site.file, ": ", site.expression)))
        << site.file << ": no reason " << site.expression
        << " there any more: take it off kDynamicReasonSites";
  }
  for (const std::string& reason : kNotErrorReasons) {
    EXPECT_FALSE(produced.count(reason))
        << reason << " is an ErrorInfo reason now: take it off "
        << "kNotErrorReasons";
  }
}

}  // namespace
}  // namespace lotse::testing
