// Helpers shared by the cases handlers (not part of the service's API).
#ifndef LOTSE_SERVICES_CASES_SERVICE_INTERNAL_H_
#define LOTSE_SERVICES_CASES_SERVICE_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases::internal {

inline constexpr char kKommune[] = "KOMMUNE";
inline constexpr char kAdministration[] = "ADMINISTRATION";
inline constexpr char kCategoryCaseStatus[] = "CASE_STATUS";
inline constexpr char kCategoryNotes[] = "PRIVATE_NOTES";

// A cases call writes one audit record: the resource the request names
// with the categories the call reads or writes (CASE_STATUS unless said
// otherwise). AuditAs sets it; it stays when a later phase fails, so a
// refused call is audited as what it asked for. AuditResource names what a
// successful phase created or found instead (e.g. the case a create
// returned); it is forgotten when the phase fails.
void AuditAs(agencies::AuditedCall& call, const std::string& resource,
             std::vector<std::string> categories = {kCategoryCaseStatus});
void AuditResource(agencies::AuditedCall& call, const std::string& resource,
                   std::vector<std::string> categories = {kCategoryCaseStatus});

// The API form of stored rows (name and etag derived).
v1::Case CaseToProto(const CaseRow& row);
v1::Step StepToProto(const StepRow& row);
v1::Note NoteToProto(const NoteRow& row);
std::string PlanName(const std::string& case_id);
std::string PlanEtag(const std::string& case_id, int version);

// The case a request names, for the audit trail of a call refused before
// its body ran ("cases" when the name is malformed).
std::string CaseTarget(absl::string_view name);

bool Participates(const v1::Case& c, const std::string& agency_name);

// Loads a case or NOT_FOUND (CASE_NOT_FOUND); with `agency_name` also
// requires participation (PERMISSION_DENIED, NO_RELATION).
absl::StatusOr<CaseRow> LoadCase(storage::Transaction& tx,
                                 const std::string& case_id,
                                 const std::string& agency_name);
absl::StatusOr<StepRow> LoadStep(storage::Transaction& tx,
                                 const std::string& case_id,
                                 const std::string& step_id);

absl::Status NotCaseOwner();
absl::Status CaseClosed();

// The case a change by its owner acts on: locks and loads it as LoadCase
// does for `agency_name`, then refuses, in this order, an agency that is
// not the owner (NotCaseOwner), a stale `etag` (api::CheckEtag) and a
// closed case (CaseClosed).
absl::StatusOr<CaseRow> LoadOwnOpenCase(storage::Transaction& tx,
                                        const std::string& case_id,
                                        const std::string& agency_name,
                                        absl::string_view etag);

// Records a case event: the outbox (source "cases", ordering key the case
// name) and the case-event log for the case's participants plus `extra`
// audience, with the same event id. `payload` must be one of the messages
// of CaseEvent's payload oneof.
absl::Status Emit(storage::Transaction& tx, const v1::Case& c,
                  const google::protobuf::Message& payload,
                  const std::vector<std::string>& extra_audience = {});

}  // namespace lotse::cases::internal

#endif  // LOTSE_SERVICES_CASES_SERVICE_INTERNAL_H_
