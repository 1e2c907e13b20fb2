// Cases: open, read, list, change, transfer and close.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/clients/identity_client.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/events.pb.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::StoreNow;
using api::ToTimestamp;
using internal::CaseTarget;
using internal::CaseToProto;
using internal::Emit;
using internal::LoadCase;
using server::RequestContext;
using storage::Transaction;

namespace {

// CheckJurisdiction over the person's open cases as stored.
absl::Status RequireNoOpenCaseElsewhere(Transaction& tx,
                                        const std::string& person,
                                        const std::string& municipality) {
  absl::StatusOr<std::vector<std::string>> open = OpenCasesOfPerson(tx, person);
  if (!open.ok()) return open.status();
  std::vector<std::string> municipalities;
  for (const std::string& id : *open) {
    absl::StatusOr<std::optional<CaseRow>> row = ReadCase(tx, id);
    if (!row.ok()) return row.status();
    if (row->has_value()) {
      municipalities.push_back((*row)->record.municipality_code());
    }
  }
  return CheckJurisdiction(municipality, municipalities);
}

// The agency registered as `new_owner_id`, which may take over a case:
// NOT_FOUND (AGENCY_NOT_FOUND) when unknown, FAILED_PRECONDITION when
// suspended (AGENCY_NOT_ACTIVE) or not a KOMMUNE (WRONG_LEGAL_DOMAIN).
absl::StatusOr<LocalAgency> ReadNewOwner(Transaction& tx,
                                         const std::string& new_owner_id) {
  absl::StatusOr<std::optional<LocalAgency>> agency =
      ReadAgency(tx, new_owner_id);
  if (!agency.ok()) return agency.status();
  if (!agency->has_value()) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
                           "no such agency in the registry");
  }
  if ((*agency)->suspended) {
    return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                           "AGENCY_NOT_ACTIVE", "the new owner is suspended");
  }
  if ((*agency)->legal_domain != internal::kKommune) {
    return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                           "WRONG_LEGAL_DOMAIN",
                           "only KOMMUNE agencies own cases");
  }
  return **std::move(agency);
}

// The participants after a transfer from `from` to `to`: the old owner
// stays only while it receives a step of the case; the new one joins.
void HandOverParticipation(const std::string& from, const std::string& to,
                           bool from_receives, v1::Case* rec) {
  std::vector<std::string> participants;
  for (const std::string& p : rec->participating_agencies()) {
    if (p != from || from_receives) participants.push_back(p);
  }
  if (std::find(participants.begin(), participants.end(), to) ==
      participants.end()) {
    participants.push_back(to);
  }
  rec->clear_participating_agencies();
  for (const std::string& p : participants) {
    rec->add_participating_agencies(p);
  }
}

// Cancels open step `s` of the case `before` because the case closes
// (reason CASE_CLOSED), and records the event.
absl::Status CancelForClosing(Transaction& tx, const v1::Case& before,
                              const std::string& owner,
                              const std::string& actor, absl::Time now,
                              StepRow* s) {
  v1::StepTransition* t = s->record.add_transitions();
  t->set_from_state(s->record.state());
  t->set_to_state(v1::STEP_STATE_CANCELLED);
  *t->mutable_transition_time() = ToTimestamp(now);
  t->set_agency(owner);
  t->set_actor(actor);
  s->record.set_state(v1::STEP_STATE_CANCELLED);
  s->record.set_cancel_reason(v1::STEP_CANCEL_REASON_CASE_CLOSED);
  *s->record.mutable_end_time() = ToTimestamp(now);
  *s->record.mutable_update_time() = ToTimestamp(now);
  ++s->version;
  if (absl::Status st = cases::UpdateStepState(tx, *s); !st.ok()) return st;
  v1::StepStateChanged changed;
  changed.set_step(StepName(s->case_id, s->id));
  changed.set_case_name(before.name());
  changed.set_person(before.person());
  changed.set_kind(s->record.kind());
  changed.set_receiving_agency(s->record.receiving_agency());
  *changed.mutable_transition() = *t;
  changed.set_cancel_reason(v1::STEP_CANCEL_REASON_CASE_CLOSED);
  return Emit(tx, before, changed);
}

// Creates a case of `person` owned by `caller` in its municipality, in
// INTAKE, with an empty plan version 1 by `actor`, and gives it the
// person's course and placement activities that waited for a case.
absl::StatusOr<CaseRow> CreateCase(Transaction& tx, const LocalAgency& caller,
                                   const std::string& person,
                                   const std::string& responsible_actor,
                                   const std::string& actor) {
  const std::string owner = AgencyName(caller.id);
  const absl::Time now = StoreNow();
  CaseRow row;
  row.id = NewId();
  row.version = 1;
  v1::Case& c = row.record;
  c.set_name(CaseName(row.id));
  c.set_person(person);
  c.set_owner_agency(owner);
  c.set_responsible_actor(responsible_actor);
  c.set_state(v1::CASE_STATE_INTAKE);
  c.set_municipality_code(caller.municipality_code);
  c.add_participating_agencies(owner);
  c.set_plan_version(1);
  *c.mutable_create_time() = ToTimestamp(now);
  *c.mutable_update_time() = ToTimestamp(now);
  if (absl::Status s = InsertCase(tx, row); !s.ok()) return s;
  v1::IntegrationPlan plan;
  plan.set_name(internal::PlanName(row.id));
  plan.set_version(1);
  plan.set_author_agency(owner);
  plan.set_author_actor(actor);
  *plan.mutable_create_time() = ToTimestamp(now);
  if (absl::Status s = InsertPlan(tx, row.id, plan); !s.ok()) return s;
  if (absl::Status s = AssignUnassignedActivities(tx, person, row.id);
      !s.ok()) {
    return s;
  }
  return row;
}

// The checks of OpenCase that need no storage.
void ValidateOpenCase(const v1::OpenCaseRequest& req,
                      FieldViolations* violations) {
  api::ValidateRequestId(req.request_id(), "request_id", violations);
  const v1::Case& in = req.case_record();
  if (in.person().empty()) {
    violations->Add("case_record.person", "is required");
  } else if (!ValidPersonName(in.person())) {
    violations->Add("case_record.person",
                    "must be a person name \"persons/{person}\"");
  }
  api::ValidateText(in.responsible_actor(), "case_record.responsible_actor",
                    {1, 128, false}, violations);
}

}  // namespace

absl::Status CasesServiceImpl::DoOpenCase(const RequestContext& rc,
                                          const v1::OpenCaseRequest& req,
                                          v1::Case* resp) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  const v1::Case& in = req.case_record();
  FieldViolations violations;
  ValidateOpenCase(req, &violations);
  agencies::AuditedCall call(call_env_, rc, "OpenCase", "cases");
  internal::AuditAs(call, "cases");
  auto kommune_only = [](const LocalAgency& caller) {
    if (caller.legal_domain == internal::kKommune) return absl::OkStatus();
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "WRONG_LEGAL_DOMAIN",
                           "only KOMMUNE agencies open cases");
  };
  // Caller and domain first, so that no other agency learns whether a
  // person exists.
  absl::Status status =
      call.Read([&](Transaction&, const LocalAgency& caller) -> absl::Status {
        if (absl::Status s = kommune_only(caller); !s.ok()) return s;
        return violations.ToStatus();
      });
  if (status.ok()) {
    // A case makes its owner CASE_OWNER of the person (residence status,
    // language, contact): only for a person already in the agency's remit,
    // never a stranger found by name. One answer for an unknown person.
    absl::StatusOr<std::vector<AccessDecision>> core = access_->Check(
        AgencyName(call.caller().id), in.person(),
        {type::v1::DATA_CATEGORY_CORE_IDENTITY}, rc.purpose, {}, rc.deadline);
    status = clients::StandingFrom(
        core.ok()
            ? absl::StatusOr<bool>(!core->empty() && core->front().allowed)
            : absl::StatusOr<bool>(core.status()));
  }
  if (!status.ok()) return call.Finish(status);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        if (absl::Status s = kommune_only(caller); !s.ok()) return s;
        const std::string owner = AgencyName(caller.id);
        const api::IdempotentCreate once(caller.id, rc.method, req);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          FieldViolations ignored;
          absl::StatusOr<CaseRow> first =
              LoadCase(tx, ParseCaseName(**seen, "name", &ignored), "");
          if (!first.ok()) return first.status();
          internal::AuditResource(call, **seen);
          *resp = CaseToProto(*first);
          return absl::OkStatus();
        }
        absl::StatusOr<std::string> person = ResolveSurvivor(tx, in.person());
        if (!person.ok()) return person.status();
        // One lock per person: two municipalities opening a case at once
        // must not both succeed.
        if (absl::Status s = tx.LockNamed(absl::StrCat("open/", *person));
            !s.ok()) {
          return s;
        }
        absl::StatusOr<std::optional<std::string>> open =
            FindOpenCase(tx, *person, owner);
        if (!open.ok()) return open.status();
        if (open->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kAlreadyExists, "OPEN_CASE_EXISTS",
              "the agency already owns an open case of the person",
              {{"case", CaseName(**open)}});
        }
        // A KOMMUNE acts for its own municipality; a person's case moves to
        // another one only by transfer.
        if (absl::Status s = RequireNoOpenCaseElsewhere(
                tx, *person, caller.municipality_code);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<CaseRow> created =
            CreateCase(tx, caller, *person, in.responsible_actor(), rc.actor);
        if (!created.ok()) return created.status();
        const CaseRow& row = *created;
        const v1::Case& c = row.record;
        if (absl::Status s = once.Record(tx, c.name()); !s.ok()) {
          return s;
        }
        v1::CaseOpened opened;
        opened.set_case_name(c.name());
        opened.set_person(c.person());
        opened.set_owner_agency(owner);
        opened.set_municipality_code(c.municipality_code());
        if (absl::Status s = Emit(tx, c, opened); !s.ok()) return s;
        internal::AuditResource(call, c.name());
        *resp = CaseToProto(row);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoGetCase(const RequestContext& rc,
                                         const v1::GetCaseRequest& req,
                                         v1::Case* resp) {
  const std::string target = CaseTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "GetCase", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParseCaseName(req.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<CaseRow> c = LoadCase(tx, id, AgencyName(caller.id));
        if (!c.ok()) return c.status();
        *resp = CaseToProto(*c);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoListCases(const RequestContext& rc,
                                           const v1::ListCasesRequest& req,
                                           v1::ListCasesResponse* resp) {
  const std::string target = "cases";
  agencies::AuditedCall call(call_env_, rc, "ListCases", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency& caller) -> absl::Status {
    FieldViolations violations;
    CaseFilter f;
    f.viewer_agency = AgencyName(caller.id);
    f.limit = api::NormalizePageSize(req.page_size(), "page_size", &violations);
    for (int i = 0; i < req.states_size(); ++i) {
      const int s = req.states(i);
      if (s == v1::CASE_STATE_UNSPECIFIED || !v1::CaseState_IsValid(s)) {
        violations.Add(absl::StrCat("states[", i, "]"), "must be a case state");
      } else {
        f.states.push_back(s);
      }
    }
    if (!req.owner_agency().empty()) {
      ParseAgencyName(req.owner_agency(), "owner_agency", &violations);
      f.owner_agency = req.owner_agency();
    }
    if (!req.participating_agency().empty()) {
      ParseAgencyName(req.participating_agency(), "participating_agency",
                      &violations);
      f.participating_agency = req.participating_agency();
    }
    if (!req.person().empty()) {
      if (!ValidPersonName(req.person())) {
        violations.Add("person", "must be a person name");
      }
      f.person = req.person();
    }
    v1::ListCasesRequest filter = req;
    filter.clear_page_size();
    filter.clear_page_token();
    const std::string fp = api::RequestFingerprint(filter);
    const std::string last =
        api::DecodePageToken(req.page_token(), fp, "page_token", &violations);
    if (!violations.empty()) return violations.ToStatus();
    if (!last.empty()) {
      std::vector<std::string> parts = absl::StrSplit(last, '|');
      if (parts.size() != 2 ||
          !absl::SimpleAtoi(parts[0], &f.after_create_us)) {
        violations.Add("page_token", "is not a valid page token");
        return violations.ToStatus();
      }
      f.after_id = parts[1];
      f.has_after = true;
    }
    const int page = f.limit;
    f.limit = page + 1;
    absl::StatusOr<std::vector<CaseRow>> rows = cases::ListCases(tx, f);
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < static_cast<int>(rows->size()) && i < page; ++i) {
      *resp->add_cases() = CaseToProto((*rows)[i]);
    }
    if (static_cast<int>(rows->size()) > page) {
      const CaseRow& l = (*rows)[page - 1];
      resp->set_next_page_token(api::EncodePageToken(
          fp, absl::StrCat(ToMicros(api::FromTimestamp(l.record.create_time())),
                           "|", l.id)));
    }
    return absl::OkStatus();
  }));
}

absl::Status CasesServiceImpl::DoUpdateCase(const RequestContext& rc,
                                            const v1::UpdateCaseRequest& req,
                                            v1::Case* resp) {
  const v1::Case& in = req.case_record();
  const std::string target = CaseTarget(in.name());
  agencies::AuditedCall call(call_env_, rc, "UpdateCase", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParseCaseName(in.name(), "case_record.name", &violations);
        if (in.etag().empty())
          violations.Add("case_record.etag", "is required");
        if (req.update_mask().paths_size() == 0) {
          violations.Add("update_mask", "is required");
        }
        for (const std::string& path : req.update_mask().paths()) {
          if (path != "responsible_actor") {
            violations.Add("update_mask",
                           "only \"responsible_actor\" can be changed");
          }
        }
        api::ValidateText(in.responsible_actor(),
                          "case_record.responsible_actor", {1, 128, false},
                          &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<CaseRow> c =
            internal::LoadOwnOpenCase(tx, id, AgencyName(caller.id), in.etag());
        if (!c.ok()) return c.status();
        c->record.set_responsible_actor(in.responsible_actor());
        *c->record.mutable_update_time() = ToTimestamp(StoreNow());
        ++c->version;
        if (absl::Status s = cases::UpdateCase(tx, *c); !s.ok()) return s;
        *resp = CaseToProto(*c);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoChangeCaseState(
    const RequestContext& rc, const v1::ChangeCaseStateRequest& req,
    v1::Case* resp) {
  const std::string target = CaseTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "ChangeCaseState", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParseCaseName(req.name(), "name", &violations);
        if (req.etag().empty()) violations.Add("etag", "is required");
        if (req.state() != v1::CASE_STATE_INTAKE &&
            req.state() != v1::CASE_STATE_ASSESSMENT &&
            req.state() != v1::CASE_STATE_ACTIVE) {
          violations.Add("state",
                         "must be INTAKE, ASSESSMENT or ACTIVE (close with "
                         "CloseCase)");
        }
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<CaseRow> c = internal::LoadOwnOpenCase(
            tx, id, AgencyName(caller.id), req.etag());
        if (!c.ok()) return c.status();
        const v1::CaseState from = c->record.state();
        if (!CaseTransitionAllowed(from, req.state())) {
          return ErrorWithReason(
              absl::StatusCode::kFailedPrecondition, "TRANSITION_NOT_ALLOWED",
              absl::StrCat("a case in state ", v1::CaseState_Name(from),
                           " cannot move to ", v1::CaseState_Name(req.state())),
              {{"state", v1::CaseState_Name(from)}});
        }
        c->record.set_state(req.state());
        *c->record.mutable_update_time() = ToTimestamp(StoreNow());
        ++c->version;
        if (absl::Status s = cases::UpdateCase(tx, *c); !s.ok()) return s;
        v1::CaseStateChanged changed;
        changed.set_case_name(CaseName(id));
        changed.set_person(c->record.person());
        changed.set_from_state(from);
        changed.set_to_state(req.state());
        if (absl::Status s = Emit(tx, CaseToProto(*c), changed); !s.ok()) {
          return s;
        }
        *resp = CaseToProto(*c);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoTransferCase(
    const RequestContext& rc, const v1::TransferCaseRequest& req,
    v1::Case* resp) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  const std::string target = CaseTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "TransferCase", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParseCaseName(req.name(), "name", &violations);
        if (req.etag().empty()) violations.Add("etag", "is required");
        const std::string new_owner_id = ParseAgencyName(
            req.new_owner_agency(), "new_owner_agency", &violations);
        api::ValidateText(req.new_responsible_actor(), "new_responsible_actor",
                          {0, 128, false}, &violations);
        api::ValidateText(req.reason(), "reason", {1, 500, false}, &violations);
        if (!new_owner_id.empty() && new_owner_id == caller.id) {
          violations.Add("new_owner_agency", "must differ from the owner");
        }
        if (!violations.empty()) return violations.ToStatus();
        const std::string from = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c =
            internal::LoadOwnOpenCase(tx, id, from, req.etag());
        if (!c.ok()) return c.status();
        absl::StatusOr<LocalAgency> new_owner = ReadNewOwner(tx, new_owner_id);
        if (!new_owner.ok()) return new_owner.status();
        const std::string to = AgencyName(new_owner_id);
        absl::StatusOr<std::optional<std::string>> open =
            FindOpenCase(tx, c->record.person(), to);
        if (!open.ok()) return open.status();
        if (open->has_value()) {
          return ErrorWithReason(
              absl::StatusCode::kFailedPrecondition, "OPEN_CASE_EXISTS",
              "the new owner already has an open case of the person",
              {{"case", CaseName(**open)}});
        }
        absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
        if (!steps.ok()) return steps.status();
        bool from_receives = false;
        for (const StepRow& s : *steps) {
          if (s.record.receiving_agency() == from) from_receives = true;
        }
        const absl::Time now = StoreNow();
        v1::Case& rec = c->record;
        rec.set_owner_agency(to);
        rec.set_responsible_actor(req.new_responsible_actor());
        rec.set_municipality_code(new_owner->municipality_code);
        HandOverParticipation(from, to, from_receives, &rec);
        v1::OwnershipTransfer* t = rec.add_transfers();
        t->set_from_agency(from);
        t->set_to_agency(to);
        t->set_reason(req.reason());
        *t->mutable_transfer_time() = ToTimestamp(now);
        *rec.mutable_update_time() = ToTimestamp(now);
        ++c->version;
        if (absl::Status s = cases::UpdateCase(tx, *c); !s.ok()) return s;
        v1::CaseTransferred moved;
        moved.set_case_name(CaseName(id));
        moved.set_person(rec.person());
        moved.set_from_agency(from);
        moved.set_to_agency(to);
        if (absl::Status s = Emit(tx, CaseToProto(*c), moved, {from});
            !s.ok()) {
          return s;
        }
        *resp = CaseToProto(*c);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoCloseCase(const RequestContext& rc,
                                           const v1::CloseCaseRequest& req,
                                           v1::Case* resp) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  const std::string target = CaseTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "CloseCase", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParseCaseName(req.name(), "name", &violations);
        if (req.etag().empty()) violations.Add("etag", "is required");
        if (req.closing_reason() == v1::CASE_CLOSING_REASON_UNSPECIFIED ||
            !v1::CaseClosingReason_IsValid(req.closing_reason())) {
          violations.Add("closing_reason", "is required");
        }
        const bool comment_required =
            req.closing_reason() == v1::CASE_CLOSING_REASON_OTHER;
        api::ValidateText(
            req.closing_comment(), "closing_comment",
            {comment_required ? size_t{1} : size_t{0}, 2000, true},
            &violations);
        if (!violations.empty()) return violations.ToStatus();
        const std::string owner = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c =
            internal::LoadOwnOpenCase(tx, id, owner, req.etag());
        if (!c.ok()) return c.status();
        absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
        if (!steps.ok()) return steps.status();
        std::vector<StepRow*> open;
        for (StepRow& s : *steps) {
          if (!IsFinalStepState(s.record.state())) open.push_back(&s);
        }
        if (!open.empty() && !req.cancel_open_steps()) {
          std::string names;
          for (const StepRow* s : open) {
            absl::StrAppend(&names, names.empty() ? "" : ",",
                            StepName(id, s->id));
          }
          return ErrorWithReason(
              absl::StatusCode::kFailedPrecondition, "OPEN_STEPS",
              "the case has steps that are not final", {{"steps", names}});
        }
        const absl::Time now = StoreNow();
        const v1::Case before = CaseToProto(*c);
        for (StepRow* s : open) {
          if (absl::Status st =
                  CancelForClosing(tx, before, owner, rc.actor, now, s);
              !st.ok()) {
            return st;
          }
        }
        v1::Case& rec = c->record;
        rec.set_state(v1::CASE_STATE_CLOSED);
        rec.set_closing_reason(req.closing_reason());
        rec.set_closing_comment(req.closing_comment());
        *rec.mutable_close_time() = ToTimestamp(now);
        *rec.mutable_update_time() = ToTimestamp(now);
        ++c->version;
        if (absl::Status s = cases::UpdateCase(tx, *c); !s.ok()) return s;
        v1::CaseClosed closed;
        closed.set_case_name(CaseName(id));
        closed.set_person(rec.person());
        closed.set_closing_reason(req.closing_reason());
        if (absl::Status s = Emit(tx, CaseToProto(*c), closed); !s.ok()) {
          return s;
        }
        *resp = CaseToProto(*c);
        return absl::OkStatus();
      }));
}

}  // namespace lotse::cases
