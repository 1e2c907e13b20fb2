// Fuzz target: resource names and ids as requests carry them
// (common/api/names.h) and the cases service's name parsers
// (services/cases/domain/rules.h). The input is a name. Checked: a name
// that matches a pattern has valid ids and is rebuilt from them exactly;
// a refusal always names the field; the cases parsers agree with the
// names they issue.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "resource name invariant broken: %s\n", what);
  std::abort();
}

// `pattern` with its {id} segments replaced by `ids`, in order.
std::string Build(absl::string_view pattern,
                  const std::vector<std::string>& ids) {
  std::vector<std::string> segments;
  size_t next = 0;
  for (absl::string_view s : absl::StrSplit(pattern, '/')) {
    if (!s.empty() && s.front() == '{') {
      segments.push_back(next < ids.size() ? ids[next] : "");
      ++next;
    } else {
      segments.emplace_back(s);
    }
  }
  if (next != ids.size()) Broken("ids do not fit the pattern");
  return absl::StrJoin(segments, "/");
}

void CheckViolations(const lotse::FieldViolations& v, bool ok) {
  if (ok != v.empty()) Broken("violations disagree with the result");
  for (const lotse::FieldViolation& f : v.violations()) {
    if (f.field != "name") Broken("violation for another field");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace api = ::lotse::api;
  namespace cases = ::lotse::cases;
  const absl::string_view name(reinterpret_cast<const char*>(data), size);

  for (absl::string_view pattern :
       {absl::string_view(api::kPersonName),
        absl::string_view(api::kAgencyName),
        absl::string_view(api::kCaseStepName),
        absl::string_view("courses/{course}/bookings/{booking}"),
        absl::string_view("cases/{case}/plan")}) {
    std::vector<std::string> ids;
    const bool matched = api::MatchName(name, pattern, &ids);
    if (matched) {
      for (const std::string& id : ids) {
        if (!api::IsValidId(id)) Broken("matched an invalid id");
      }
      if (Build(pattern, ids) != name) Broken("name not rebuilt from ids");
    }
    lotse::FieldViolations v;
    const std::vector<std::string> parsed =
        api::ParseName(name, pattern, "name", &v);
    CheckViolations(v, matched);
    if (matched && parsed != ids) Broken("ParseName disagrees with MatchName");
    lotse::FieldViolations v2;
    const std::string id = api::ParseNameId(name, pattern, "name", &v2);
    CheckViolations(v2, matched);
    if (matched && id != ids.back()) Broken("ParseNameId is not the last id");
  }

  lotse::FieldViolations v;
  const std::string case_id = cases::ParseCaseName(name, "name", &v);
  CheckViolations(v, !case_id.empty());
  if (!case_id.empty() && cases::CaseName(case_id) != name) {
    Broken("case name not rebuilt");
  }
  std::string c, s, n;
  lotse::FieldViolations vs;
  if (cases::ParseStepName(name, "name", &c, &s, &vs)) {
    CheckViolations(vs, true);
    if (cases::StepName(c, s) != name) Broken("step name not rebuilt");
  } else {
    CheckViolations(vs, false);
  }
  lotse::FieldViolations vn;
  c.clear();
  s.clear();
  if (cases::ParseNoteName(name, "name", &c, &s, &n, &vn)) {
    CheckViolations(vn, true);
    if (cases::NoteName(c, s, n) != name) Broken("note name not rebuilt");
  } else {
    CheckViolations(vn, false);
  }
  lotse::FieldViolations va;
  const std::string agency = cases::ParseAgencyName(name, "name", &va);
  CheckViolations(va, !agency.empty());
  if (!agency.empty() && cases::AgencyName(agency) != name) {
    Broken("agency name not rebuilt");
  }
  if (cases::ValidPersonName(name) != api::MatchName(name, api::kPersonName)) {
    Broken("person names judged differently");
  }
  return 0;
}
