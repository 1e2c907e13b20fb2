// The API form of stored rows, and the names derived from them.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/etag.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/internal.h"

namespace lotse::cases::internal {

v1::Case CaseToProto(const CaseRow& row) {
  v1::Case c = row.record;
  c.set_name(CaseName(row.id));
  c.set_etag(api::ComputeEtag(c.name(), row.version));
  return c;
}

v1::Step StepToProto(const StepRow& row) {
  v1::Step s = row.record;
  s.set_name(StepName(row.case_id, row.id));
  s.set_etag(api::ComputeEtag(s.name(), row.version));
  return s;
}

v1::Note NoteToProto(const NoteRow& row) {
  v1::Note n = row.record;
  n.set_name(NoteName(row.case_id, row.step_id, row.id));
  n.set_etag(api::ComputeEtag(n.name(), row.version));
  return n;
}

std::string PlanName(const std::string& case_id) {
  return absl::StrCat(CaseName(case_id), "/plan");
}

std::string PlanEtag(const std::string& case_id, int version) {
  return api::ComputeEtag(PlanName(case_id), version);
}

// The case a request names, for the audit trail of a call refused before
// its body ran.
std::string CaseTarget(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() >= 2 && parts[0] == "cases") {
    FieldViolations ignored;
    const std::string id =
        ParseCaseName(absl::StrCat("cases/", parts[1]), "n", &ignored);
    if (!id.empty()) return CaseName(id);
  }
  return "cases";
}

}  // namespace lotse::cases::internal
