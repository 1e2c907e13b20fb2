// The residence status RPCs of IdentityServiceImpl: RecordResidenceStatus,
// GetCurrentResidenceStatus and ListResidenceStatuses. Their records carry
// the data category RESIDENCE_STATUS, also the DENIED record of a refused
// read. The two reads also serve Lotse's own services (placement checks a
// work permission), which are in no registry.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr char kResidenceStatus[] = "RESIDENCE_STATUS";
constexpr char kImmigrationDomain[] = "AUSLAENDERBEHOERDE";

// A calendar date, or nullopt (and a violation) when it is not one.
std::optional<absl::CivilDay> ValidateDate(const type::v1::Date& date,
                                           const std::string& field,
                                           FieldViolations* violations) {
  const absl::CivilDay day(date.year(), date.month(), date.day());
  if (date.year() < 1 || date.year() > 9999 || day.year() != date.year() ||
      day.month() != date.month() || day.day() != date.day()) {
    violations->Add(field, "is not a valid calendar date");
    return std::nullopt;
  }
  return day;
}

bool DateSet(const type::v1::Date& date) {
  return date.year() != 0 || date.month() != 0 || date.day() != 0;
}

// RecordResidenceStatus' fields; returns the person id.
std::string ValidateRecording(const v1::RecordResidenceStatusRequest& request,
                              FieldViolations* violations) {
  std::string person_id =
      ParsePersonName(request.parent(), "parent", violations);
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  const v1::ResidenceStatus& status = request.residence_status();
  if (!request.has_residence_status()) {
    violations->Add("residence_status", "is required");
  }
  const int kind = status.title_kind();
  if (kind == v1::RESIDENCE_TITLE_KIND_UNSPECIFIED) {
    violations->Add("residence_status.title_kind", "is required");
  } else if (!v1::ResidenceTitleKind_IsValid(kind)) {
    violations->Add("residence_status.title_kind",
                    absl::StrCat("unknown residence title kind ", kind));
  }
  api::ValidateText(status.legal_basis(), "residence_status.legal_basis",
                    {0, 100, false}, violations);
  std::optional<absl::CivilDay> from;
  if (!status.has_valid_from() || !DateSet(status.valid_from())) {
    violations->Add("residence_status.valid_from", "is required");
  } else {
    from = ValidateDate(status.valid_from(), "residence_status.valid_from",
                        violations);
  }
  if (status.has_valid_until() && DateSet(status.valid_until())) {
    auto until = ValidateDate(status.valid_until(),
                              "residence_status.valid_until", violations);
    if (from.has_value() && until.has_value() && *until < *from) {
      violations->Add("residence_status.valid_until",
                      "must not be before valid_from");
    }
  }
  const int work = status.work_permission();
  if (work == type::v1::WORK_PERMISSION_UNSPECIFIED) {
    violations->Add("residence_status.work_permission", "is required");
  } else if (!type::v1::WorkPermission_IsValid(work)) {
    violations->Add("residence_status.work_permission",
                    absl::StrCat("unknown work permission ", work));
  }
  api::ValidateText(status.work_permission_conditions(),
                    "residence_status.work_permission_conditions",
                    {0, 500, false}, violations);
  return person_id;
}

void ResidenceToProto(const ResidenceRecord& record, bool current,
                      v1::ResidenceStatus* out) {
  *out = record.fields;
  out->set_name(ResidenceResourceName(record.person_id, record.id));
  out->set_recording_agency(record.recording_agency);
  *out->mutable_create_time() = api::ToTimestamp(record.create_time);
  out->set_current(current);
  out->set_etag(ResidenceEtag(record.person_id, record.id));
}

// The answer to a retry whose first call recorded `recorded`.
absl::Status AnswerRecordingRetry(Transaction& tx, const std::string& recorded,
                                  const std::optional<ResidenceRecord>& current,
                                  v1::ResidenceStatus* response) {
  absl::StatusOr<std::optional<ResidenceRecord>> first =
      ReadResidenceById(tx, recorded.substr(recorded.rfind('/') + 1));
  if (!first.ok()) return first.status();
  if (!first->has_value()) {
    return absl::InternalError("recorded residence status is gone");
  }
  ResidenceToProto(**first, current.has_value() && current->id == (*first)->id,
                   response);
  return absl::OkStatus();
}

absl::Status RequireImmigrationOffice(const LocalAgency& caller) {
  if (caller.legal_domain == kImmigrationDomain) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "only AUSLAENDERBEHOERDE agencies record residence "
                         "status");
}

}  // namespace

absl::Status IdentityServiceImpl::DoRecordResidence(
    const RequestContext& rc, const v1::RecordResidenceStatusRequest& request,
    v1::ResidenceStatus* response) {
  AuditedCall call(call_env_, rc, "RecordResidenceStatus",
                   PersonTarget(request.parent(), "/residenceStatuses"));
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        call.set_target_categories({kResidenceStatus});
        if (absl::Status s = RequireImmigrationOffice(caller); !s.ok())
          return s;
        FieldViolations violations;
        const std::string person_id = ValidateRecording(request, &violations);
        if (!violations.empty()) return violations.ToStatus();

        // Locked before the person is read: a merge holds this lock while it
        // moves the records, so once it is granted a merged person reads as
        // merged and no record lands under it. A merged id is refused below,
        // so the lock is the resolved person's.
        if (absl::Status s = LockResidence(tx, person_id); !s.ok()) return s;
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/true);
        if (!person.ok()) return person.status();

        const api::IdempotentCreate once(caller.id, rc.method, request);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        if (seen->has_value()) {
          call.set_target(**seen);
          return AnswerRecordingRetry(tx, **seen, *current, response);
        }
        const std::string current_etag =
            current->has_value()
                ? ResidenceEtag((*current)->person_id, (*current)->id)
                : "";
        if (absl::Status s =
                api::CheckEtag(request.current_etag(), current_etag);
            !s.ok()) {
          return s;
        }

        absl::StatusOr<std::string> id = api::NewId();
        if (!id.ok()) return id.status();
        ResidenceRecord record;
        record.id = *id;
        record.person_id = person->id;
        record.recording_agency = AgencyResourceName(caller.id);
        record.create_time = api::StoreNow();
        record.fields = request.residence_status();
        // Output-only fields are ignored, as the contract says.
        record.fields.clear_name();
        record.fields.clear_recording_agency();
        record.fields.clear_create_time();
        record.fields.clear_current();
        record.fields.clear_etag();
        if (absl::Status s = InsertResidence(tx, record); !s.ok()) return s;
        const std::string name = ResidenceResourceName(person->id, record.id);
        call.set_target(name);
        if (absl::Status s = once.Record(tx, name); !s.ok()) return s;
        if (absl::Status s =
                EnqueuePersonEvent(tx, person->id, ResidenceChanged(record));
            !s.ok()) {
          return s;
        }
        ResidenceToProto(record, /*current=*/true, response);
        return absl::OkStatus();
      });
  return FinishAccessCall(call, DataCategory::kResidenceStatus, status);
}

absl::Status IdentityServiceImpl::DoGetCurrentResidence(
    const RequestContext& rc,
    const v1::GetCurrentResidenceStatusRequest& request,
    v1::ResidenceStatus* response) {
  AuditedCall call(call_env_, rc, "GetCurrentResidenceStatus",
                   PersonTarget(request.person(), "/residenceStatuses"));
  call.admit_services();
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        call.set_target_categories({kResidenceStatus});
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.person(), "person", &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        call.set_target(
            absl::StrCat(PersonResourceName(person->id), "/residenceStatuses"));
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kResidenceStatus, rc);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        if (!current->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "NO_RESIDENCE_STATUS",
                                 "no residence status has been recorded for "
                                 "this person");
        }
        call.set_target(
            ResidenceResourceName((*current)->person_id, (*current)->id));
        ResidenceToProto(**current, /*current=*/true, response);
        return absl::OkStatus();
      });
  return FinishAccessCall(call, DataCategory::kResidenceStatus, status);
}

absl::Status IdentityServiceImpl::DoListResidence(
    const RequestContext& rc, const v1::ListResidenceStatusesRequest& request,
    v1::ListResidenceStatusesResponse* response) {
  AuditedCall call(call_env_, rc, "ListResidenceStatuses",
                   PersonTarget(request.parent(), "/residenceStatuses"));
  call.admit_services();
  if (absl::Status s = RequireAccess(); !s.ok()) return call.Finish(s);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        call.set_target_categories({kResidenceStatus});
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        // Tokens carry a record's seq and are bound to the person asked for.
        const std::string after = api::DecodePageToken(
            request.page_token(), request.parent(), "page_token", &violations);
        int64_t before_seq = 0;
        if (!after.empty() &&
            (!absl::SimpleAtoi(after, &before_seq) || before_seq <= 0)) {
          violations.Add("page_token", "is not a valid page token");
        }
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<PersonLookup> person =
            FindPerson(tx, *access_matcher_, person_id, /*for_write=*/false);
        if (!person.ok()) return person.status();
        call.set_target(
            absl::StrCat(PersonResourceName(person->id), "/residenceStatuses"));
        if (absl::Status s = RequireRead(tx, *access_rules_, *person, caller,
                                         DataCategory::kResidenceStatus, rc);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::optional<ResidenceRecord>> current =
            ReadCurrentResidence(tx, person->id);
        if (!current.ok()) return current.status();
        absl::StatusOr<std::vector<ResidenceRecord>> rows =
            ListResidence(tx, person->id, before_seq, page_size + 1);
        if (!rows.ok()) return rows.status();
        response->Clear();
        const bool more = static_cast<int>(rows->size()) > page_size;
        if (more) rows->resize(page_size);
        for (const ResidenceRecord& r : *rows) {
          ResidenceToProto(r, current->has_value() && (*current)->id == r.id,
                           response->add_residence_statuses());
        }
        if (more) {
          response->set_next_page_token(api::EncodePageToken(
              request.parent(), absl::StrCat(rows->back().seq)));
        }
        return absl::OkStatus();
      });
  return FinishAccessCall(call, DataCategory::kResidenceStatus, status);
}

}  // namespace lotse::identity
