#include "tools/api_reference/api_reference.h"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"

namespace lotse::api_reference {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorSet;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using google::protobuf::SourceLocation;

const char* const kStatusCodes[] = {"OK",
                                    "CANCELLED",
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
  // "OK" is a code but never an error; it is listed so that it ends a list
  // of reasons, and filtered out where codes are collected.
  for (const char* code : kStatusCodes) {
    if (word == code) return true;
  }
  return false;
}

bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

// An UPPER_SNAKE word at `pos` ([A-Z][A-Z0-9_]*, two characters or more,
// not part of a longer word, trailing underscores dropped): its length, or 0.
size_t TokenAt(absl::string_view text, size_t pos) {
  if (pos >= text.size() || !absl::ascii_isupper(text[pos])) return 0;
  if (pos > 0 && IsIdentChar(text[pos - 1])) return 0;
  size_t end = pos;
  while (end < text.size() &&
         (absl::ascii_isupper(text[end]) || absl::ascii_isdigit(text[end]) ||
          text[end] == '_')) {
    ++end;
  }
  if (end < text.size() && IsIdentChar(text[end])) return 0;
  while (end > pos && text[end - 1] == '_') --end;
  return end - pos >= 2 ? end - pos : 0;
}

size_t SkipSpace(absl::string_view text, size_t pos) {
  while (pos < text.size() && absl::ascii_isspace(text[pos])) ++pos;
  return pos;
}

bool NamesEnumValue(const std::vector<std::string>& values,
                    absl::string_view word) {
  for (const std::string& value : values) {
    if (value == word ||
        (value.size() > word.size() && absl::EndsWith(value, word) &&
         value[value.size() - word.size() - 1] == '_')) {
      return true;
    }
  }
  return false;
}

// The reasons listed from `pos`: "A, B or C", "A / B", "A and B".
std::vector<std::string> ReasonList(absl::string_view text, size_t pos) {
  std::vector<std::string> out;
  for (;;) {
    const size_t length = TokenAt(text, pos);
    if (length == 0) return out;
    const std::string token(text.substr(pos, length));
    if (IsStatusCode(token)) return out;
    out.push_back(token);
    size_t after = SkipSpace(text, pos + length);
    if (after < text.size() && (text[after] == ',' || text[after] == '/')) {
      after = SkipSpace(text, after + 1);
      // "A, B, or C"
      if (text.substr(after, 3) == "or ") after = SkipSpace(text, after + 2);
      if (text.substr(after, 4) == "and ") after = SkipSpace(text, after + 3);
    } else if (text.substr(after, 3) == "or ") {
      after = SkipSpace(text, after + 2);
    } else if (text.substr(after, 4) == "and ") {
      after = SkipSpace(text, after + 3);
    } else {
      return out;
    }
    pos = after;
  }
}

// Each "reason X" / "reasons X, Y" / "Reasons: X" in [begin, end): the list
// that follows, and whether it was introduced with a colon.
void ReasonMentions(absl::string_view text, size_t begin, size_t end,
                    std::vector<std::pair<std::string, bool>>* out) {
  const absl::string_view part = text.substr(0, end);
  for (size_t pos = begin; (pos = part.find("eason", pos)) != part.npos;
       ++pos) {
    if (pos == 0 || (part[pos - 1] != 'r' && part[pos - 1] != 'R')) continue;
    if (pos >= 2 && IsIdentChar(part[pos - 2])) continue;
    size_t next = pos + 5;
    if (next < part.size() && part[next] == 's') ++next;
    bool colon = false;
    if (next < part.size() && part[next] == ':') {
      ++next;
      colon = true;
    }
    if (next >= part.size() || !absl::ascii_isspace(part[next])) continue;
    for (std::string& reason : ReasonList(part, SkipSpace(part, next))) {
      out->push_back({std::move(reason), colon});
    }
  }
}

std::string CollapseSpace(absl::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (absl::ascii_isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Units of a comment: a bullet ("- ...") with its continuation lines, or a
// paragraph, each as one line.
std::vector<std::string> Units(absl::string_view comment) {
  std::vector<std::string> units;
  std::string current;
  auto flush = [&] {
    std::string unit = CollapseSpace(current);
    if (absl::StartsWith(unit, "- ")) unit = unit.substr(2);
    if (!unit.empty()) units.push_back(unit);
    current.clear();
  };
  for (absl::string_view line : absl::StrSplit(comment, '\n')) {
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty() || absl::StartsWith(stripped, "- ")) flush();
    absl::StrAppend(&current, stripped, " ");
  }
  flush();
  return units;
}

// Splits `text` after each `end` character followed by a space (or at the
// end of text) outside parentheses; with `keep`, the character stays with
// the part before it. "e.g." and "i.e." end nothing.
std::vector<std::string> SplitOutsideParens(absl::string_view text, char end,
                                            bool keep) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  auto take = [&](size_t stop) {
    std::string part(
        absl::StripAsciiWhitespace(text.substr(start, stop - start)));
    if (!part.empty()) out.push_back(part);
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '(') ++depth;
    if (c == ')' && depth > 0) --depth;
    if (depth > 0 || c != end) continue;
    if (i + 1 < text.size() && text[i + 1] != ' ') continue;
    const absl::string_view before = text.substr(0, i);
    if (end == '.' &&
        (absl::EndsWith(before, "e.g") || absl::EndsWith(before, "i.e") ||
         absl::EndsWith(before, " etc") || absl::EndsWith(before, " vs"))) {
      continue;
    }
    take(keep ? i + 1 : i);
    start = i + 1;
  }
  take(text.size());
  return out;
}

// Sentences of a unit.
std::vector<std::string> Sentences(absl::string_view unit) {
  return SplitOutsideParens(unit, '.', true);
}

bool HasStatusCode(absl::string_view text) {
  for (size_t pos = 0; pos < text.size(); ++pos) {
    const size_t length = TokenAt(text, pos);
    if (length != 0 && IsStatusCode(text.substr(pos, length))) return true;
    pos += length;
  }
  return false;
}

// The clauses of a sentence that each document errors: its parts between
// semicolons when two or more of them name a status code ("Errors:
// INVALID_ARGUMENT ...; NOT_FOUND ..."), else the whole sentence (so that
// "the agency must be registered ...; else PERMISSION_DENIED" keeps its
// subject).
std::vector<std::string> Clauses(const std::string& sentence) {
  std::vector<std::string> parts = SplitOutsideParens(sentence, ';', false);
  const int with_code = static_cast<int>(
      std::count_if(parts.begin(), parts.end(), HasStatusCode));
  if (with_code >= 2) return parts;
  return {sentence};
}

// The errors one clause names.
void ClauseErrors(const std::string& clause,
                  const std::vector<std::string>& enum_values,
                  std::vector<ErrorRow>* out) {
  const absl::string_view text = clause;
  // Positions and lengths of the status codes in the clause.
  std::vector<std::pair<size_t, size_t>> codes;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    const size_t length = TokenAt(text, pos);
    if (length == 0) continue;
    if (IsStatusCode(text.substr(pos, length))) codes.push_back({pos, length});
    pos += length;
  }
  // "Reasons: A, B" before any code: reasons documented without a code.
  {
    std::vector<std::pair<std::string, bool>> mentions;
    ReasonMentions(text, 0, codes.empty() ? text.size() : codes[0].first,
                   &mentions);
    for (const auto& [reason, colon] : mentions) {
      if (colon) out->push_back({"", reason, clause});
    }
  }
  // Codes only enumerated ("ErrorInfo for PERMISSION_DENIED,
  // FAILED_PRECONDITION and ABORTED") describe error details, not errors.
  std::vector<bool> listed(codes.size(), false);
  for (size_t i = 0; i + 1 < codes.size(); ++i) {
    const size_t gap_begin = codes[i].first + codes[i].second;
    const absl::string_view gap = absl::StripAsciiWhitespace(
        text.substr(gap_begin, codes[i + 1].first - gap_begin));
    if (gap == "," || gap == "/" || gap == "and" || gap == "or" ||
        gap == ", and" || gap == ", or") {
      listed[i] = listed[i + 1] = true;
    }
  }
  for (size_t i = 0; i < codes.size(); ++i) {
    const auto [pos, length] = codes[i];
    const std::string code(text.substr(pos, length));
    if (code == "OK" || listed[i]) continue;
    const size_t end = i + 1 < codes.size() ? codes[i + 1].first : text.size();
    std::vector<std::string> reasons;
    // Reasons right after the code: "ALREADY_EXISTS ACTIVE_BOOKING_EXISTS",
    // "FAILED_PRECONDITION (WORK_PERMISSION_UNKNOWN)".
    size_t next = SkipSpace(text, pos + length);
    if (next < text.size() && (text[next] == '(' || text[next] == ',')) {
      next = SkipSpace(text, next + 1);
    }
    const size_t first = TokenAt(text, next);
    if (first != 0 && next < end &&
        !NamesEnumValue(enum_values, text.substr(next, first))) {
      reasons = ReasonList(text.substr(0, end), next);
    }
    std::vector<std::pair<std::string, bool>> mentions;
    ReasonMentions(text, pos + length, end, &mentions);
    for (auto& [reason, colon] : mentions) {
      if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
        reasons.push_back(std::move(reason));
      }
    }
    if (reasons.empty()) out->push_back({code, "", clause});
    for (const std::string& reason : reasons) {
      out->push_back({code, reason, clause});
    }
  }
}

void AddUnique(std::vector<ErrorRow>* rows, ErrorRow row) {
  if (std::find(rows->begin(), rows->end(), row) == rows->end()) {
    rows->push_back(std::move(row));
  }
}

// ---------------------------------------------------------------------------
// Descriptors.

bool Documented(const FileDescriptor* file) {
  return absl::StartsWith(file->name(), "lotse/") &&
         !absl::StartsWith(file->name(), "lotse/bench/");
}

// The comment of a source location: leading comments, else trailing ones,
// one leading space per line removed, no trailing newline.
std::string CommentOf(const SourceLocation& location, bool leading_only) {
  std::string raw = location.leading_comments;
  if (absl::StripAsciiWhitespace(raw).empty() && !leading_only) {
    raw = location.trailing_comments;
  }
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(raw, '\n')) {
    absl::ConsumePrefix(&line, " ");
    lines.push_back(std::string(absl::StripTrailingAsciiWhitespace(line)));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  while (!lines.empty() && lines.front().empty()) lines.erase(lines.begin());
  return absl::StrJoin(lines, "\n");
}

template <typename D>
std::string Comment(const D* d) {
  SourceLocation location;
  if (!d->GetSourceLocation(&location)) return "";
  return CommentOf(location, false);
}

template <typename D>
std::pair<bool, int> LeadingComment(const D* d) {
  SourceLocation location;
  if (!d->GetSourceLocation(&location)) return {false, 0};
  return {!CommentOf(location, true).empty(), location.start_line + 1};
}

absl::Status BuildPool(const FileDescriptorSet& set, DescriptorPool* pool) {
  for (const auto& file : set.file()) {
    if (pool->BuildFile(file) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("descriptor set: cannot build ", file.name(),
                       " (are its imports included before it?)"));
    }
  }
  return absl::OkStatus();
}

std::vector<const FileDescriptor*> DocumentedFiles(const FileDescriptorSet& set,
                                                   const DescriptorPool& pool) {
  std::vector<const FileDescriptor*> files;
  for (const auto& proto : set.file()) {
    const FileDescriptor* file = pool.FindFileByName(proto.name());
    if (file != nullptr && Documented(file)) files.push_back(file);
  }
  std::sort(files.begin(), files.end(),
            [](const FileDescriptor* a, const FileDescriptor* b) {
              return a->name() < b->name();
            });
  return files;
}

void ForEachMessage(const Descriptor* message,
                    const std::function<void(const Descriptor*)>& f) {
  if (message->options().map_entry()) return;
  f(message);
  for (int i = 0; i < message->nested_type_count(); ++i) {
    ForEachMessage(message->nested_type(i), f);
  }
}

// Every message of a file (nested ones after their parent) and every enum
// (top-level ones after the messages, nested ones after their message's
// nested messages), in declaration order.
std::vector<const Descriptor*> MessagesOf(const FileDescriptor* file) {
  std::vector<const Descriptor*> out;
  for (int i = 0; i < file->message_type_count(); ++i) {
    ForEachMessage(file->message_type(i),
                   [&out](const Descriptor* d) { out.push_back(d); });
  }
  return out;
}

std::vector<const EnumDescriptor*> EnumsOf(const FileDescriptor* file) {
  std::vector<const EnumDescriptor*> out;
  for (int i = 0; i < file->enum_type_count(); ++i) {
    out.push_back(file->enum_type(i));
  }
  for (const Descriptor* message : MessagesOf(file)) {
    for (int i = 0; i < message->enum_type_count(); ++i) {
      out.push_back(message->enum_type(i));
    }
  }
  return out;
}

std::vector<std::string> EnumValueNames(
    const std::vector<const FileDescriptor*>& files) {
  std::vector<std::string> out;
  for (const FileDescriptor* file : files) {
    for (const EnumDescriptor* e : EnumsOf(file)) {
      for (int i = 0; i < e->value_count(); ++i) {
        out.push_back(e->value(i)->name());
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Markdown.

// The page of a package: "lotse.identity.v1" -> "identity.md".
std::string PageOf(absl::string_view package) {
  std::vector<absl::string_view> parts = absl::StrSplit(package, '.');
  if (parts.size() >= 2) return absl::StrCat(parts[1], ".md");
  return absl::StrCat(package, ".md");
}

// Turns the names of documented elements in comment text into links:
// full names ("lotse.cases.v1.CaseOpened"), and within a page's package
// CamelCase names of messages, enums, services and RPCs ("CaseOpened",
// "GetCaseView") and dotted names of fields ("Person.merged_names").
// Single words with one capital ("Person") stay text: in prose they are
// as often the plain word. Text between backticks stays as written.
class Linker {
 public:
  // `page` is where the text appears, `package` the package names are
  // resolved in first.
  void SetContext(std::string page, std::string package) {
    page_ = std::move(page);
    package_ = std::move(package);
  }
  void Add(const std::string& full_name, const std::string& page) {
    targets_[full_name] = page;
  }
  // A type's simple name, resolved from any package when no other
  // documented type has it ("CourseBooked" in the identity service's
  // comment).
  void AddUnique(const std::string& name, const std::string& full_name) {
    auto [it, added] = unique_.emplace(name, full_name);
    if (!added) it->second.clear();  // ambiguous
  }
  // Per package, RPC name to its full name.
  void AddMethod(const std::string& package, const std::string& name,
                 const std::string& full_name) {
    methods_[package + "." + name] = full_name;
  }

  std::string Link(absl::string_view text) const {
    std::string out;
    bool in_code = false;
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '`') in_code = !in_code;
      const bool starts =
          !in_code && absl::ascii_isalpha(c) &&
          (i == 0 ||
           (!IsIdentChar(text[i - 1]) && text[i - 1] != '.' &&
            text[i - 1] != '&' && text[i - 1] != '#' && text[i - 1] != '/'));
      if (!starts) {
        out.push_back(c);
        continue;
      }
      size_t end = i;
      while (end < text.size() && (IsIdentChar(text[end]) ||
                                   (text[end] == '.' && end + 1 < text.size() &&
                                    IsIdentChar(text[end + 1])))) {
        ++end;
      }
      const absl::string_view word = text.substr(i, end - i);
      const std::string target = Resolve(word);
      if (target.empty()) {
        absl::StrAppend(&out, word);
      } else {
        absl::StrAppend(&out, "[", word, "](", target, ")");
      }
      i = end - 1;
    }
    return out;
  }

 private:
  static bool CamelCase(absl::string_view word) {
    int upper = 0;
    bool lower = false;
    for (char c : word) {
      if (absl::ascii_isupper(c)) ++upper;
      if (absl::ascii_islower(c)) lower = true;
    }
    return absl::ascii_isupper(word[0]) && lower && upper >= 2;
  }

  std::string To(const std::string& full_name) const {
    auto it = targets_.find(full_name);
    if (it == targets_.end()) return "";
    return absl::StrCat(it->second == page_ ? "" : it->second, "#", full_name);
  }

  std::string Resolve(absl::string_view word) const {
    if (absl::StartsWith(word, "lotse.")) return To(std::string(word));
    if (package_.empty()) return "";
    const bool dotted = absl::StrContains(word, '.');
    if (!dotted && !CamelCase(word)) return "";
    if (dotted && !absl::ascii_isupper(word[0])) return "";
    const std::string local = absl::StrCat(package_, ".", word);
    if (std::string target = To(local); !target.empty()) return target;
    if (dotted) return "";
    auto method = methods_.find(local);
    if (method != methods_.end()) return To(method->second);
    auto unique = unique_.find(std::string(word));
    return unique == unique_.end() ? "" : To(unique->second);
  }

  std::map<std::string, std::string> targets_;  // full name -> page
  std::map<std::string, std::string> methods_;  // package.Rpc -> full name
  std::map<std::string, std::string> unique_;   // name -> full name or ""
  std::string page_;
  std::string package_;
};

// Text of a comment for a Markdown block: "<" and ">" escaped so that
// "<Rpc>" stays text; names linked when a linker is given.
std::string Block(absl::string_view comment, const Linker* linker = nullptr) {
  const std::string escaped =
      absl::StrReplaceAll(comment, {{"<", "&lt;"}, {">", "&gt;"}});
  return linker == nullptr ? escaped : linker->Link(escaped);
}

// Text of a comment for one table cell: one line, "|" escaped, bullets
// kept apart by line breaks.
std::string Cell(absl::string_view comment, const Linker* linker) {
  std::vector<std::string> parts;
  for (absl::string_view line : absl::StrSplit(comment, '\n')) {
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty()) {
      if (!parts.empty() && parts.back() != "<br><br>")
        parts.push_back("<br><br>");
      continue;
    }
    if (absl::StartsWith(stripped, "- ") && !parts.empty()) {
      parts.push_back("<br>");
    }
    parts.push_back(std::string(stripped));
  }
  std::string out;
  for (const std::string& part : parts) {
    if (part == "<br>" || part == "<br><br>") {
      absl::StrAppend(&out, part);
      continue;
    }
    if (!out.empty() && !absl::EndsWith(out, ">")) out.push_back(' ');
    absl::StrAppend(&out, Block(part, linker));
  }
  return absl::StrReplaceAll(out, {{"|", "\\|"}});
}

// First sentence of a comment, for summaries.
std::string Summary(absl::string_view comment) {
  const std::vector<std::string> units = Units(comment);
  if (units.empty()) return "";
  const std::string sentence = Sentences(units[0]).front();
  return absl::StrReplaceAll(Block(sentence), {{"|", "\\|"}});
}

// A comment as a Markdown paragraph followed by a blank line; nothing for
// no comment.
//
// Indented lines that do not continue a bullet ("- ...") are a drawing or
// a table in the comment, such as a state machine ("  REFERRED ->
// ACCEPTED"): they are kept as written, in a text block, instead of being
// joined into the paragraph.
std::string Paragraph(absl::string_view comment, const Linker* linker) {
  if (comment.empty()) return "";
  std::string out;
  bool in_bullet = false;
  bool in_code = false;
  for (absl::string_view line : absl::StrSplit(comment, '\n')) {
    const bool indented = absl::StartsWith(line, "  ");
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    const bool code = indented && !in_bullet && !stripped.empty();
    if (code != in_code) {
      absl::StrAppend(&out, code ? "\n```text\n" : "```\n\n");
      in_code = code;
    }
    if (code) {
      absl::StrAppend(&out, line, "\n");
      continue;
    }
    if (stripped.empty()) {
      in_bullet = false;
    } else if (absl::StartsWith(stripped, "- ")) {
      in_bullet = true;
    } else if (!indented) {
      in_bullet = false;
    }
    absl::StrAppend(&out, Block(line, linker), "\n");
  }
  if (in_code) absl::StrAppend(&out, "```\n");
  while (absl::EndsWith(out, "\n")) out.pop_back();
  return absl::StrCat(out, "\n\n");
}

std::string Anchor(absl::string_view full_name) {
  return absl::StrCat("<a id=\"", full_name, "\"></a>");
}

class Renderer {
 public:
  explicit Renderer(std::vector<const FileDescriptor*> files)
      : files_(std::move(files)), enum_values_(EnumValueNames(files_)) {
    for (const FileDescriptor* file : files_) {
      const std::string page = PageOf(file->package());
      for (int i = 0; i < file->service_count(); ++i) {
        const ServiceDescriptor* s = file->service(i);
        linker_.Add(s->full_name(), page);
        for (int j = 0; j < s->method_count(); ++j) {
          const MethodDescriptor* m = s->method(j);
          linker_.Add(m->full_name(), page);
          linker_.AddMethod(file->package(), m->name(), m->full_name());
        }
      }
      for (const Descriptor* d : MessagesOf(file)) {
        linker_.Add(d->full_name(), page);
        if (d->containing_type() == nullptr) {
          linker_.AddUnique(d->name(), d->full_name());
        }
        for (int i = 0; i < d->field_count(); ++i) {
          linker_.Add(d->field(i)->full_name(), page);
        }
      }
      for (const EnumDescriptor* e : EnumsOf(file)) {
        linker_.Add(e->full_name(), page);
        if (e->containing_type() == nullptr) {
          linker_.AddUnique(e->name(), e->full_name());
        }
      }
    }
  }

  std::map<std::string, std::string> Render() {
    std::map<std::string, std::vector<const FileDescriptor*>> by_page;
    for (const FileDescriptor* file : files_) {
      by_page[PageOf(file->package())].push_back(file);
    }
    std::map<std::string, std::string> pages;
    for (const auto& [page, files] : by_page) {
      pages[page] = RenderPage(page, files);
    }
    pages["index.md"] = RenderIndex(by_page);
    return pages;
  }

 private:
  // Link to a type from `page`: within the page by anchor, elsewhere by
  // page and anchor; types outside the reference as plain code.
  std::string TypeLink(const std::string& page, const std::string& full_name,
                       const FileDescriptor* file) const {
    const std::string shown = file != nullptr && PageOf(file->package()) == page
                                  ? full_name.substr(file->package().size() + 1)
                                  : full_name;
    if (file == nullptr || !Documented(file)) {
      return absl::StrCat("`", full_name, "`");
    }
    const std::string target = PageOf(file->package());
    return absl::StrCat("[`", shown, "`](", target == page ? "" : target, "#",
                        full_name, ")");
  }

  std::string FieldType(const std::string& page,
                        const FieldDescriptor* field) const {
    if (field->is_map()) {
      const Descriptor* entry = field->message_type();
      return absl::StrCat("map&lt;", FieldType(page, entry->field(0)), ", ",
                          FieldType(page, entry->field(1)), "&gt;");
    }
    std::string base;
    if (field->message_type() != nullptr) {
      base = TypeLink(page, field->message_type()->full_name(),
                      field->message_type()->file());
    } else if (field->enum_type() != nullptr) {
      base = TypeLink(page, field->enum_type()->full_name(),
                      field->enum_type()->file());
    } else {
      base = absl::StrCat("`", field->type_name(), "`");
    }
    if (field->is_repeated()) return absl::StrCat("repeated ", base);
    if (field->has_optional_keyword()) return absl::StrCat("optional ", base);
    return base;
  }

  std::string MessageLink(const std::string& page, const Descriptor* d) const {
    return TypeLink(page, d->full_name(), d->file());
  }

  // Errors of each RPC of `service` from its own comment and the service
  // comment's clauses that name it; the rest of the service comment's
  // errors are common to every RPC.
  void ServiceErrors(const ServiceDescriptor* service,
                     std::vector<ErrorRow>* common,
                     std::map<std::string, std::vector<ErrorRow>>* per_rpc) {
    std::set<std::string> rpcs;
    for (int i = 0; i < service->method_count(); ++i) {
      rpcs.insert(service->method(i)->name());
    }
    auto named_rpcs = [&rpcs](const std::string& text) {
      std::vector<std::string> named;
      for (const std::string& rpc : rpcs) {
        for (size_t pos = 0; (pos = text.find(rpc, pos)) != text.npos;
             pos += rpc.size()) {
          const size_t end = pos + rpc.size();
          if ((pos == 0 || !IsIdentChar(text[pos - 1])) &&
              (end >= text.size() || !IsIdentChar(text[end]))) {
            named.push_back(rpc);
            break;
          }
        }
      }
      return named;
    };
    for (const std::string& unit : Units(Comment(service))) {
      for (const std::string& sentence : Sentences(unit)) {
        // "RegisterAgency: ALREADY_EXISTS (reason A); RegisterAgency and
        // UpdateAgency: ALREADY_EXISTS (reason B)": each part goes to the
        // RPCs it names, with only that part as its meaning.
        const std::vector<std::string> parts =
            SplitOutsideParens(sentence, ';', false);
        bool any_named = false;
        for (const std::string& part : parts) {
          const std::vector<std::string> named = named_rpcs(part);
          if (named.empty()) continue;
          any_named = true;
          std::vector<ErrorRow> rows;
          ClauseErrors(part, enum_values_, &rows);
          for (const ErrorRow& row : rows) {
            for (const std::string& rpc : named) {
              AddUnique(&(*per_rpc)[rpc], row);
            }
          }
        }
        if (any_named) continue;
        for (const std::string& clause : Clauses(sentence)) {
          std::vector<ErrorRow> rows;
          ClauseErrors(clause, enum_values_, &rows);
          for (const ErrorRow& row : rows) AddUnique(common, row);
        }
      }
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      std::vector<ErrorRow>& rows = (*per_rpc)[method->name()];
      std::vector<ErrorRow> own = ExtractErrors(Comment(method), enum_values_);
      // The RPC's own comment first, then what the service comment adds.
      std::vector<ErrorRow> merged;
      for (ErrorRow& row : own) AddUnique(&merged, std::move(row));
      for (ErrorRow& row : rows) AddUnique(&merged, std::move(row));
      rows = std::move(merged);
    }
  }

  // One line per code and sentence: the reasons a sentence gives for one
  // code share its meaning.
  void ErrorTable(const std::vector<ErrorRow>& rows, std::string* out) const {
    const Linker* linker = &linker_;
    absl::StrAppend(out, "| Code | Reason | When |\n|---|---|---|\n");
    std::vector<bool> done(rows.size(), false);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (done[i]) continue;
      std::vector<std::string> reasons;
      for (size_t j = i; j < rows.size(); ++j) {
        if (done[j] || rows[j].code != rows[i].code ||
            rows[j].when != rows[i].when) {
          continue;
        }
        done[j] = true;
        if (!rows[j].reason.empty()) {
          reasons.push_back(absl::StrCat("`", rows[j].reason, "`"));
        }
      }
      absl::StrAppend(
          out, "| ",
          rows[i].code.empty() ? "(see text)"
                               : absl::StrCat("`", rows[i].code, "`"),
          " | ", reasons.empty() ? "—" : absl::StrJoin(reasons, ", "), " | ",
          absl::StrReplaceAll(Block(rows[i].when, linker), {{"|", "\\|"}}),
          " |\n");
    }
  }

  void RenderService(const std::string& page, const ServiceDescriptor* service,
                     std::string* out) {
    std::vector<ErrorRow> common;
    std::map<std::string, std::vector<ErrorRow>> per_rpc;
    ServiceErrors(service, &common, &per_rpc);
    const std::string common_anchor =
        absl::StrCat(service->full_name(), ".errors");

    absl::StrAppend(out, Anchor(service->full_name()), "\n## ", service->name(),
                    "\n\n", Paragraph(Comment(service), &linker_));
    absl::StrAppend(out,
                    "### RPCs\n\n| RPC | Request | Response | Summary |\n"
                    "|---|---|---|---|\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* m = service->method(i);
      absl::StrAppend(out, "| [", m->name(), "](#", m->full_name(), ") | ",
                      m->client_streaming() ? "stream " : "",
                      MessageLink(page, m->input_type()), " | ",
                      m->server_streaming() ? "stream " : "",
                      MessageLink(page, m->output_type()), " | ",
                      Summary(Comment(m)), " |\n");
    }
    absl::StrAppend(out, "\n", Anchor(common_anchor),
                    "\n### Errors every RPC can return\n\n");
    if (common.empty()) {
      absl::StrAppend(out, "None documented beyond each RPC's own.\n\n");
    } else {
      absl::StrAppend(out,
                      "From the calling conventions above; each RPC's own "
                      "errors follow it.\n\n");
      ErrorTable(common, out);
      absl::StrAppend(out, "\n");
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* m = service->method(i);
      absl::StrAppend(out, Anchor(m->full_name()), "\n### ", m->name(),
                      "\n\n```proto\nrpc ", m->name(), "(",
                      m->client_streaming() ? "stream " : "",
                      m->input_type()->full_name(), ") returns (",
                      m->server_streaming() ? "stream " : "",
                      m->output_type()->full_name(), ");\n```\n\n");
      absl::StrAppend(
          out, "Request: ", m->client_streaming() ? "stream of " : "",
          MessageLink(page, m->input_type()),
          " · Response: ", m->server_streaming() ? "stream of " : "",
          MessageLink(page, m->output_type()), "\n\n");
      absl::StrAppend(out, Paragraph(Comment(m), &linker_));
      const std::vector<ErrorRow>& rows = per_rpc[m->name()];
      absl::StrAppend(out, "**Errors** (besides [those every RPC can return](#",
                      common_anchor, ")):");
      if (rows.empty()) {
        absl::StrAppend(out, " none of its own.\n\n");
      } else {
        absl::StrAppend(out, "\n\n");
        ErrorTable(rows, out);
        absl::StrAppend(out, "\n");
      }
    }
  }

  void RenderMessage(const std::string& page, const Descriptor* d,
                     std::string* out) {
    const std::string shown =
        d->full_name().substr(d->file()->package().size() + 1);
    absl::StrAppend(out, Anchor(d->full_name()), "\n### ", shown, "\n\n",
                    Paragraph(Comment(d), &linker_));
    if (d->field_count() == 0) {
      absl::StrAppend(out, "No fields.\n\n");
    } else {
      absl::StrAppend(out,
                      "| Field | Number | Type | Description |\n"
                      "|---|---|---|---|\n");
      for (int i = 0; i < d->field_count(); ++i) {
        const FieldDescriptor* f = d->field(i);
        std::string description = Cell(Comment(f), &linker_);
        if (f->real_containing_oneof() != nullptr) {
          absl::StrAppend(&description, description.empty() ? "" : "<br>",
                          "Member of oneof `",
                          f->real_containing_oneof()->name(),
                          "`: at most one of its fields is set.");
        }
        if (f->options().deprecated()) {
          absl::StrAppend(&description, description.empty() ? "" : "<br>",
                          "Deprecated.");
        }
        absl::StrAppend(out, "| ", Anchor(f->full_name()), "`", f->name(),
                        "` | ", f->number(), " | ", FieldType(page, f), " | ",
                        description, " |\n");
      }
      absl::StrAppend(out, "\n");
    }
    std::vector<std::string> reserved;
    for (int i = 0; i < d->reserved_range_count(); ++i) {
      const auto* range = d->reserved_range(i);
      reserved.push_back(range->end - 1 == range->start
                             ? absl::StrCat(range->start)
                             : absl::StrCat(range->start, "–", range->end - 1));
    }
    for (int i = 0; i < d->reserved_name_count(); ++i) {
      reserved.push_back(absl::StrCat("`", d->reserved_name(i), "`"));
    }
    if (!reserved.empty()) {
      absl::StrAppend(out, "Reserved (never reused): ",
                      absl::StrJoin(reserved, ", "), ".\n\n");
    }
  }

  void RenderEnum(const EnumDescriptor* e, std::string* out) {
    const std::string shown =
        e->full_name().substr(e->file()->package().size() + 1);
    absl::StrAppend(out, Anchor(e->full_name()), "\n### ", shown, "\n\n",
                    Paragraph(Comment(e), &linker_),
                    "| Value | Number | Description |\n"
                    "|---|---|---|\n");
    for (int i = 0; i < e->value_count(); ++i) {
      const EnumValueDescriptor* v = e->value(i);
      absl::StrAppend(out, "| ", Anchor(v->full_name()), "`", v->name(), "` | ",
                      v->number(), " | ", Cell(Comment(v), &linker_), " |\n");
    }
    absl::StrAppend(out, "\n");
  }

  static std::string FileComment(const FileDescriptor* file) {
    // The comment before `syntax` (path 12 of FileDescriptorProto).
    google::protobuf::FileDescriptorProto proto;
    file->CopySourceCodeInfoTo(&proto);
    for (const auto& location : proto.source_code_info().location()) {
      if (location.path_size() == 1 && location.path(0) == 12) {
        SourceLocation l;
        l.leading_comments = location.leading_comments();
        return CommentOf(l, true);
      }
    }
    return "";
  }

  static std::string Title(const std::vector<const FileDescriptor*>& files) {
    std::vector<std::string> services;
    for (const FileDescriptor* file : files) {
      for (int i = 0; i < file->service_count(); ++i) {
        services.push_back(file->service(i)->name());
      }
    }
    if (services.empty()) return files.front()->package();
    return absl::StrCat(absl::StrJoin(services, ", "), " (",
                        files.front()->package(), ")");
  }

  std::string RenderPage(const std::string& page,
                         const std::vector<const FileDescriptor*>& files) {
    linker_.SetContext(page, files.front()->package());
    std::string out;
    absl::StrAppend(&out, "# ", Title(files), "\n\n", kGeneratedNote,
                    "[Index](index.md)\n\n## Files\n\n");
    for (const FileDescriptor* file : files) {
      const std::string comment = FileComment(file);
      absl::StrAppend(
          &out, "- `proto/", file->name(), "`",
          comment.empty() ? "" : absl::StrCat(": ", Cell(comment, &linker_)),
          "\n");
    }
    absl::StrAppend(&out, "\n");
    for (const FileDescriptor* file : files) {
      for (int i = 0; i < file->service_count(); ++i) {
        RenderService(page, file->service(i), &out);
      }
    }
    bool any = false;
    for (const FileDescriptor* file : files) {
      for (const Descriptor* d : MessagesOf(file)) {
        if (!any) absl::StrAppend(&out, "## Messages\n\n");
        any = true;
        RenderMessage(page, d, &out);
      }
    }
    any = false;
    for (const FileDescriptor* file : files) {
      for (const EnumDescriptor* e : EnumsOf(file)) {
        if (!any) absl::StrAppend(&out, "## Enums\n\n");
        any = true;
        RenderEnum(e, &out);
      }
    }
    while (absl::EndsWith(out, "\n\n")) out.pop_back();
    return out;
  }

  std::string RenderIndex(
      const std::map<std::string, std::vector<const FileDescriptor*>>&
          by_page) {
    std::string out;
    absl::StrAppend(&out, "# Lotse API reference\n\n", kGeneratedNote,
                    "Lotse's gRPC contracts (package `lotse.*.v1`), one page "
                    "per package. Every RPC lists the errors it can return "
                    "(gRPC status code and `google.rpc.ErrorInfo` reason); "
                    "the calling conventions at the top of each service "
                    "(mutual TLS, the `x-lotse-actor` and `x-lotse-purpose` "
                    "metadata, idempotency, etags, paging) apply to all of "
                    "its RPCs.\n\n| Page | Package | Services | RPCs | "
                    "Messages | Enums |\n|---|---|---|---|---|---|\n");
    for (const auto& [page, files] : by_page) {
      int rpcs = 0, messages = 0, enums = 0;
      std::vector<std::string> services;
      for (const FileDescriptor* file : files) {
        for (int i = 0; i < file->service_count(); ++i) {
          const ServiceDescriptor* s = file->service(i);
          services.push_back(absl::StrCat("[", s->name(), "](", page, "#",
                                          s->full_name(), ")"));
          rpcs += s->method_count();
        }
        messages += MessagesOf(file).size();
        enums += EnumsOf(file).size();
      }
      absl::StrAppend(&out, "| [", page, "](", page, ") | `",
                      files.front()->package(), "` | ",
                      services.empty() ? "—" : absl::StrJoin(services, ", "),
                      " | ", rpcs, " | ", messages, " | ", enums, " |\n");
    }
    absl::StrAppend(&out, "\n## Services\n\n");
    for (const auto& [page, files] : by_page) {
      for (const FileDescriptor* file : files) {
        for (int i = 0; i < file->service_count(); ++i) {
          const ServiceDescriptor* s = file->service(i);
          absl::StrAppend(&out, "- [", s->full_name(), "](", page, "#",
                          s->full_name(), "): ", Summary(Comment(s)), "\n");
        }
      }
    }
    absl::StrAppend(&out,
                    "\n## All types\n\n| Type | Kind | Summary |\n"
                    "|---|---|---|\n");
    std::vector<std::pair<std::string, std::string>> types;  // name, row
    for (const auto& [page, files] : by_page) {
      for (const FileDescriptor* file : files) {
        for (const Descriptor* d : MessagesOf(file)) {
          types.push_back({d->full_name(),
                           absl::StrCat("| [`", d->full_name(), "`](", page,
                                        "#", d->full_name(), ") | message | ",
                                        Summary(Comment(d)), " |\n")});
        }
        for (const EnumDescriptor* e : EnumsOf(file)) {
          types.push_back(
              {e->full_name(), absl::StrCat("| [`", e->full_name(), "`](", page,
                                            "#", e->full_name(), ") | enum | ",
                                            Summary(Comment(e)), " |\n")});
        }
      }
    }
    std::sort(types.begin(), types.end());
    for (const auto& [name, row] : types) absl::StrAppend(&out, row);
    return out;
  }

  static constexpr const char* kGeneratedNote =
      "<!-- Generated by tools/api_reference from proto/lotse; do not edit. "
      "Regenerate with: cmake --build --preset ci --target "
      "api_reference_update -->\n\n";

  const std::vector<const FileDescriptor*> files_;
  const std::vector<std::string> enum_values_;
  Linker linker_;
};

}  // namespace

std::vector<ErrorRow> ExtractErrors(
    absl::string_view comment, const std::vector<std::string>& enum_values) {
  std::vector<ErrorRow> rows;
  for (const std::string& unit : Units(comment)) {
    for (const std::string& sentence : Sentences(unit)) {
      for (const std::string& clause : Clauses(sentence)) {
        std::vector<ErrorRow> found;
        ClauseErrors(clause, enum_values, &found);
        for (ErrorRow& row : found) AddUnique(&rows, std::move(row));
      }
    }
  }
  return rows;
}

absl::StatusOr<std::vector<MissingComment>> FindMissingComments(
    const FileDescriptorSet& set) {
  DescriptorPool pool;
  if (absl::Status s = BuildPool(set, &pool); !s.ok()) return s;
  std::vector<MissingComment> out;
  auto check = [&out](const auto* d, const char* kind) {
    const auto [has, line] = LeadingComment(d);
    if (!has) out.push_back({d->file()->name(), line, kind, d->full_name()});
  };
  for (const FileDescriptor* file : DocumentedFiles(set, pool)) {
    const size_t first = out.size();
    for (int i = 0; i < file->service_count(); ++i) {
      const ServiceDescriptor* s = file->service(i);
      check(s, "service");
      for (int j = 0; j < s->method_count(); ++j) check(s->method(j), "rpc");
    }
    for (const Descriptor* d : MessagesOf(file)) {
      check(d, "message");
      for (int i = 0; i < d->field_count(); ++i) check(d->field(i), "field");
    }
    for (const EnumDescriptor* e : EnumsOf(file)) {
      check(e, "enum");
      for (int i = 0; i < e->value_count(); ++i)
        check(e->value(i), "enum value");
    }
    std::stable_sort(out.begin() + first, out.end(),
                     [](const MissingComment& a, const MissingComment& b) {
                       return a.line < b.line;
                     });
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> RenderReference(
    const FileDescriptorSet& set) {
  DescriptorPool pool;
  if (absl::Status s = BuildPool(set, &pool); !s.ok()) return s;
  Renderer renderer(DocumentedFiles(set, pool));
  std::map<std::string, std::string> pages = renderer.Render();
  for (auto& [name, text] : pages) {
    if (!absl::EndsWith(text, "\n")) text.push_back('\n');
  }
  return pages;
}

}  // namespace lotse::api_reference
