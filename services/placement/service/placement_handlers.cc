// ProposePlacement, GetPlacement, ListPlacements and the transitions
// (MarkPlacementApplied / Interview / Hired, RejectPlacement,
// WithdrawPlacement), with the hire's training-toleration notice.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;
using ::lotse::type::v1::DATA_CATEGORY_EMPLOYMENT;

namespace {

constexpr char kProposers[] = "propose placements";

// The work permission identity reports now: OK with the permission
// (PERMITTED or NEEDS_APPROVAL) and the recording office, or the refusal.
struct PermissionCheck {
  type::v1::WorkPermission permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
  std::string recording_agency;
};

absl::StatusOr<PermissionCheck> CheckWorkPermission(
    PlacementServiceImpl& service, const server::RequestContext& rc,
    const std::string& person, int64_t today) {
  absl::StatusOr<identity::v1::ResidenceStatus> status =
      service.options().identity->GetCurrentResidenceStatus(person, rc.purpose,
                                                            rc.deadline);
  if (!status.ok()) {
    if (status.status().code() == absl::StatusCode::kNotFound) {
      if (ReasonOf(status.status()).value_or("") == "PERSON_NOT_FOUND") {
        return NotFound("PERSON_NOT_FOUND", "identity knows no such person");
      }
      return Precondition("WORK_PERMISSION_UNKNOWN",
                          "no residence status is recorded for the person");
    }
    // Fail closed; the client may retry.
    return ErrorWithReason(
        absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
        "identity did not answer the work-permission check; try again");
  }
  PermissionCheck out;
  out.permission = status->work_permission();
  out.recording_agency = status->recording_agency();
  std::optional<int64_t> until = DayNumber(status->valid_until());
  if (until && *until < today) {
    out.permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
  }
  switch (out.permission) {
    case type::v1::WORK_PERMISSION_PERMITTED:
    case type::v1::WORK_PERMISSION_NEEDS_APPROVAL:
      return out;
    case type::v1::WORK_PERMISSION_NOT_PERMITTED:
      return Precondition("WORK_PERMISSION_NOT_PERMITTED",
                          "the person may not work");
    default:
      return Precondition("WORK_PERMISSION_UNKNOWN",
                          "the person's work permission is not known");
  }
}

// Whether `me` proposed the placement or published its offer.
bool IsParty(const LocalAgency& me, const v1::Placement& p,
             const v1::Offer& offer) {
  return p.proposing_agency() == me.name() ||
         offer.publishing_agency() == me.name();
}

absl::StatusOr<OfferRow> ReadOfferOf(Transaction& tx, const v1::Placement& p) {
  absl::string_view id = p.offer();
  absl::ConsumePrefix(&id, "offers/");
  absl::StatusOr<std::optional<OfferRow>> row = ReadOffer(tx, id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return absl::InternalError("placement without offer");
  return **row;
}

void AddTransition(v1::Placement* p, v1::PlacementState to,
                   const LocalAgency& me, const std::string& actor,
                   absl::Time now) {
  v1::PlacementTransition* t = p->add_transitions();
  t->set_from_state(p->state());
  t->set_to_state(to);
  *t->mutable_transition_time() = api::ToTimestamp(now);
  t->set_agency(me.name());
  t->set_actor(actor);
  p->set_state(to);
  *p->mutable_update_time() = api::ToTimestamp(now);
}

}  // namespace

namespace {

// Takes the offer's lock and checks, under it, that a proposal of the
// candidate `candidate_id` (person `person_id`) for the offer may be made:
// the offer is open, the profile active and still the person's, and the
// person has no open placement for the offer. Returns the offer.
absl::StatusOr<OfferRow> LockProposable(Transaction& tx,
                                        const std::string& offer_id,
                                        const std::string& candidate_id,
                                        const std::string& person_id) {
  if (absl::Status s = LockOffer(tx, offer_id); !s.ok()) return s;
  absl::StatusOr<std::optional<OfferRow>> offer = ReadOffer(tx, offer_id);
  if (!offer.ok()) return offer.status();
  if (!offer->has_value()) {
    return NotFound("OFFER_NOT_FOUND", "no such offer");
  }
  if ((*offer)->offer.state() != v1::OFFER_STATE_OPEN) {
    return Precondition("OFFER_NOT_OPEN", "the offer is not open");
  }
  absl::StatusOr<ResolvedCandidate> c = ResolveCandidate(tx, candidate_id);
  if (!c.ok()) return c.status();
  if (!c->row || c->person_id != person_id) {
    return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
  }
  if (c->row->profile.state() != v1::CANDIDATE_STATE_ACTIVE) {
    return Precondition("CANDIDATE_INACTIVE",
                        "the candidate profile is not active");
  }
  absl::StatusOr<std::optional<PlacementRow>> open =
      OpenPlacement(tx, offer_id, person_id);
  if (!open.ok()) return open.status();
  if (open->has_value()) {
    return ErrorWithReason(absl::StatusCode::kAlreadyExists, "PLACEMENT_EXISTS",
                           "the candidate has an open placement for the offer",
                           {{"placement", PlacementName((*open)->id)}});
  }
  return **offer;
}

// The proposal's field violations; sets the ids its names carry.
FieldViolations ValidateProposal(const v1::ProposePlacementRequest& request,
                                 std::string* offer_id,
                                 std::string* candidate_id) {
  const v1::Placement& in = request.placement();
  FieldViolations v;
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  *offer_id =
      api::ParseNameId(in.offer(), kOfferPattern, "placement.offer", &v);
  *candidate_id = api::ParseNameId(in.candidate(), kCandidatePattern,
                                   "placement.candidate", &v);
  // Optional; names a step of a case as the cases service issued it.
  if (!in.case_step().empty()) {
    api::ParseName(in.case_step(), api::kCaseStepName, "placement.case_step",
                   &v);
  }
  api::ValidateText(in.comment(), "placement.comment", {0, 2000, true}, &v);
  return v;
}

// The person whose candidate profile a proposal names, once the offer and
// the profile are known to exist (checked again under the offer's lock).
absl::StatusOr<std::string> ProposedPerson(Transaction& tx,
                                           const std::string& offer_id,
                                           const std::string& candidate_id) {
  absl::StatusOr<std::optional<OfferRow>> offer = ReadOffer(tx, offer_id);
  if (!offer.ok()) return offer.status();
  if (!offer->has_value()) {
    return NotFound("OFFER_NOT_FOUND", "no such offer");
  }
  absl::StatusOr<ResolvedCandidate> c = ResolveCandidate(tx, candidate_id);
  if (!c.ok()) return c.status();
  if (!c->row) {
    return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
  }
  return c->person_id;
}

// Whether the proposer may read the person's EMPLOYMENT data and the person
// may work; returns the work permission identity reports. An access check
// identity did not answer is FAILED_PRECONDITION, like the other fresh
// checks of a write.
absl::StatusOr<PermissionCheck> CheckProposalAccess(
    PlacementServiceImpl& service, AuditedCall& call, const std::string& person,
    absl::Time now) {
  const server::RequestContext& rc = call.rc();
  absl::StatusOr<AccessView> access = AskAccess(
      service, call, person, {DATA_CATEGORY_EMPLOYMENT}, /*serves=*/true);
  absl::Status status = access.ok()
                            ? RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT)
                            : access.status();
  if (!status.ok()) return status;
  return CheckWorkPermission(service, rc, person, DayIndex(now));
}

// Fills `out` with the placement an earlier ProposePlacement of the same
// request created, if there was one, and sets `*replay`.
absl::Status ReplayProposal(Transaction& tx, const api::IdempotentCreate& once,
                            AuditedCall& call, v1::Placement* out,
                            bool* replay) {
  absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
  if (!seen.ok()) return seen.status();
  if (!seen->has_value()) return absl::OkStatus();
  absl::string_view id = **seen;
  absl::ConsumePrefix(&id, "placements/");
  absl::StatusOr<std::optional<PlacementRow>> row = ReadPlacement(tx, id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return absl::InternalError("recorded placement gone");
  PlacementOut(**row, out);
  call.Touch((*row)->placement.person(), PlacementName((*row)->id),
             {kEmployment});
  *replay = true;
  return absl::OkStatus();
}

// A new placement of the person for the offer, just PROPOSED by `caller`.
absl::StatusOr<PlacementRow> NewProposedPlacement(
    const v1::Placement& in, const std::string& offer_id,
    const std::string& person_id, const LocalAgency& caller,
    const std::string& actor, type::v1::WorkPermission permission,
    absl::Time now) {
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  PlacementRow row;
  row.id = *id;
  row.version = 1;
  v1::Placement& p = row.placement;
  p.set_offer(OfferName(offer_id));
  p.set_candidate(CandidateName(person_id));
  p.set_person(PersonName(person_id));
  p.set_case_step(in.case_step());
  p.set_comment(in.comment());
  p.set_proposing_agency(caller.name());
  p.set_state(v1::PLACEMENT_STATE_UNSPECIFIED);
  p.set_work_permission(permission);
  *p.mutable_create_time() = api::ToTimestamp(now);
  AddTransition(&p, v1::PLACEMENT_STATE_PROPOSED, caller, actor, now);
  return row;
}

}  // namespace

absl::Status PlacementServiceImpl::DoProposePlacement(
    const Rc& rc, const v1::ProposePlacementRequest& request,
    v1::Placement* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  AuditedCall call(call_env(), rc, "ProposePlacement", "placements");
  const absl::Time now = Now();
  std::string offer_id;
  std::string candidate_id;
  const FieldViolations v = ValidateProposal(request, &offer_id, &candidate_id);
  LocalAgency me;
  std::string person_id;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (absl::Status s = RequireDomain(
                caller, {"JOBCENTER", "ARBEITSAGENTUR"}, kProposers);
            !s.ok()) {
          return s;
        }
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<std::string> person =
            ProposedPerson(tx, offer_id, candidate_id);
        if (!person.ok()) return person.status();
        person_id = *std::move(person);
        return absl::OkStatus();
      });
  PermissionCheck permission;
  if (status.ok()) {
    const std::string person = PersonName(person_id);
    call.set_person_target(person, "placements", {kEmployment});
    // A proposal makes the proposer serve the person (it may then read
    // their core identity and contact): only for a person already in its
    // remit, never a stranger found through matching.
    status = RequireStanding(*this, rc, me, person);
  }
  if (status.ok()) {
    absl::StatusOr<PermissionCheck> checked =
        CheckProposalAccess(*this, call, PersonName(person_id), now);
    if (checked.ok()) {
      permission = *checked;
    } else {
      status = checked.status();
    }
  }
  if (status.ok()) {
    status = call.Write([&](Transaction& tx,
                            const LocalAgency& caller) -> absl::Status {
      bool replay = false;
      const api::IdempotentCreate once(caller.id, rc.method, request);
      if (absl::Status s = ReplayProposal(tx, once, call, out, &replay);
          !s.ok() || replay) {
        return s;
      }
      absl::StatusOr<OfferRow> offer =
          LockProposable(tx, offer_id, candidate_id, person_id);
      if (!offer.ok()) return offer.status();
      absl::StatusOr<PlacementRow> row =
          NewProposedPlacement(request.placement(), offer_id, person_id, caller,
                               rc.actor, permission.permission, now);
      if (!row.ok()) return row.status();
      if (absl::Status s = InsertPlacement(tx, *row); !s.ok()) return s;
      if (absl::Status s = once.Record(tx, PlacementName(row->id)); !s.ok()) {
        return s;
      }
      PlacementOut(*row, out);
      v1::Offer named = offer->offer;
      named.set_name(OfferName(offer->id));
      v1::PlacementProposed event;
      *event.mutable_context() = ContextOf(*out, named);
      const std::string& person = row->placement.person();
      if (absl::Status s = Enqueue(tx, event, person); !s.ok()) return s;
      call.Touch(person, PlacementName(row->id), {kEmployment, kResidence});
      return absl::OkStatus();
    });
  }
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoGetPlacement(
    const Rc& rc, const v1::GetPlacementRequest& request, v1::Placement* out) {
  AuditedCall call(call_env(), rc, "GetPlacement", request.name());
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kPlacementPattern, "name", &v);
  LocalAgency me;
  PlacementRow row;
  bool party = false;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<std::optional<PlacementRow>> found =
            ReadPlacement(tx, id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) {
          return NotFound("PLACEMENT_NOT_FOUND", "no such placement");
        }
        row = **found;
        absl::StatusOr<OfferRow> offer = ReadOfferOf(tx, row.placement);
        if (!offer.ok()) return offer.status();
        party = IsParty(caller, row.placement, offer->offer);
        return absl::OkStatus();
      });
  if (status.ok()) {
    const std::string& person = row.placement.person();
    call.set_person_target(person, PlacementName(row.id), {kEmployment});
    absl::StatusOr<AccessView> access =
        AskAccess(*this, call, person, {DATA_CATEGORY_EMPLOYMENT}, party);
    status = access.ok() ? RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT)
                         : access.status();
    if (status.ok()) {
      PlacementOut(row, out);
      call.Touch(person, PlacementName(row.id), {kEmployment});
    }
  }
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoListPlacements(
    const Rc& rc, const v1::ListPlacementsRequest& request,
    v1::ListPlacementsResponse* out) {
  AuditedCall call(call_env(), rc, "ListPlacements", "placements");
  FieldViolations v;
  const int size = api::NormalizePageSize(request.page_size(), "page_size", &v);
  PlacementFilter filter;
  if (!request.offer().empty()) {
    filter.offer_id =
        api::ParseNameId(request.offer(), kOfferPattern, "offer", &v);
  }
  std::string candidate_id;
  if (!request.candidate().empty()) {
    candidate_id = api::ParseNameId(request.candidate(), kCandidatePattern,
                                    "candidate", &v);
  }
  for (int i = 0; i < request.states_size(); ++i) {
    const int s = request.states(i);
    if (s == 0 || !v1::PlacementState_IsValid(s)) {
      v.Add(absl::StrCat("states[", i, "]"), "must be a placement state");
    }
    filter.states.push_back(s);
  }
  v1::ListPlacementsRequest fp = request;
  fp.clear_page_size();
  fp.clear_page_token();
  const std::string fingerprint = fp.SerializeAsString();
  const std::string last =
      api::DecodePageToken(request.page_token(), fingerprint, "page_token", &v);
  std::optional<PageKey> after = PageKey{};
  if (!last.empty()) {
    after = PageKey::Decode(last);
    if (!after) v.Add("page_token", "is not a valid page token");
  }
  LocalAgency me;
  int checks = 0;
  bool more = true;
  PageKey cursor = after.value_or(PageKey{});
  absl::Status status;
  while (status.ok() && more && out->placements_size() < size &&
         checks < options().max_access_checks) {
    std::vector<std::pair<PlacementRow, bool>> batch;  // row, caller is party
    status = call.Read(
        [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
          me = caller;
          if (!v.empty()) return v.ToStatus();
          batch.clear();
          if (!candidate_id.empty()) {
            absl::StatusOr<std::string> survivor = SurvivorOf(tx, candidate_id);
            if (!survivor.ok()) return survivor.status();
            filter.person_id = *survivor;
          }
          absl::StatusOr<std::vector<PlacementRow>> rows =
              ListPlacements(tx, filter, cursor, size + 1);
          if (!rows.ok()) return rows.status();
          for (PlacementRow& r : *rows) {
            absl::StatusOr<OfferRow> offer = ReadOfferOf(tx, r.placement);
            if (!offer.ok()) return offer.status();
            const bool party = IsParty(caller, r.placement, offer->offer);
            batch.emplace_back(std::move(r), party);
          }
          return absl::OkStatus();
        });
    if (!status.ok()) break;
    more = batch.size() > static_cast<size_t>(size);
    size_t used = 0;
    for (auto& [row, party] : batch) {
      if (out->placements_size() >= size ||
          checks >= options().max_access_checks) {
        more = true;
        break;
      }
      ++used;
      cursor = PageKey{
          ToMicros(api::FromTimestamp(row.placement.create_time())), row.id};
      ++checks;
      const std::string& person = row.placement.person();
      absl::StatusOr<AccessView> access =
          AskAccess(*this, call, person, {DATA_CATEGORY_EMPLOYMENT}, party);
      if (!access.ok()) {
        if (access.status().code() == absl::StatusCode::kNotFound) continue;
        status = access.status();
        break;
      }
      if (!access->Allowed(DATA_CATEGORY_EMPLOYMENT)) continue;
      PlacementOut(row, out->add_placements());
      call.Touch(person, PlacementName(row.id), {kEmployment});
    }
    if (used < batch.size()) more = true;
  }
  if (status.ok() && more && !cursor.empty()) {
    out->set_next_page_token(
        api::EncodePageToken(fingerprint, cursor.Encode()));
  }
  if (!status.ok()) out->Clear();
  return call.Finish(status);
}

namespace {

// What one transition RPC needs.
struct TransitionSpec {
  const char* method;
  std::string name;
  std::string etag;
  std::vector<v1::PlacementState> from;
  v1::PlacementState to;
  bool publisher_allowed = true;  // else only the proposing agency
  v1::PlacementEndReason end_reason = v1::PLACEMENT_END_REASON_UNSPECIFIED;
  std::string comment{};
  const google::protobuf::Timestamp* interview_time = nullptr;
};

absl::Status CheckParty(const LocalAgency& me, const v1::Placement& p,
                        const v1::Offer& offer, bool publisher_allowed) {
  if (p.proposing_agency() == me.name()) return absl::OkStatus();
  if (publisher_allowed && offer.publishing_agency() == me.name()) {
    return absl::OkStatus();
  }
  return Denied("NOT_PLACEMENT_PARTY",
                publisher_allowed
                    ? "only the proposing agency or the offer's publisher "
                      "may change the placement"
                    : "only the proposing agency may withdraw the placement");
}

absl::Status CheckTransition(const v1::Placement& p,
                             const std::vector<v1::PlacementState>& from,
                             v1::PlacementState to) {
  for (v1::PlacementState s : from) {
    if (p.state() == s) return absl::OkStatus();
  }
  return ErrorWithReason(
      absl::StatusCode::kFailedPrecondition, "TRANSITION_NOT_ALLOWED",
      absl::StrCat("a placement in ", v1::PlacementState_Name(p.state()),
                   " cannot move to ", v1::PlacementState_Name(to)),
      {{"state", v1::PlacementState_Name(p.state())}});
}

}  // namespace

// The non-hiring transitions share one shape.
static absl::Status RunTransition(PlacementServiceImpl& service,
                                  const server::RequestContext& rc,
                                  const TransitionSpec& spec, FieldViolations v,
                                  v1::Placement* out) {
  AuditedCall call(service.call_env(), rc, spec.method, spec.name);
  const absl::Time now = service.Now();
  const std::string id =
      api::ParseNameId(spec.name, kPlacementPattern, "name", &v);
  if (spec.etag.empty()) v.Add("etag", "is required");
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& me) -> absl::Status {
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<std::optional<PlacementRow>> found = ReadPlacement(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) {
      return NotFound("PLACEMENT_NOT_FOUND", "no such placement");
    }
    PlacementRow row = **found;
    absl::StatusOr<OfferRow> offer = ReadOfferOf(tx, row.placement);
    if (!offer.ok()) return offer.status();
    if (absl::Status s =
            CheckParty(me, row.placement, offer->offer, spec.publisher_allowed);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = api::CheckEtag(
            spec.etag, api::ComputeEtag(PlacementName(row.id), row.version));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckTransition(row.placement, spec.from, spec.to);
        !s.ok()) {
      return s;
    }
    v1::Offer named = offer->offer;
    named.set_name(OfferName(offer->id));
    if (spec.to == v1::PLACEMENT_STATE_REJECTED ||
        spec.to == v1::PLACEMENT_STATE_WITHDRAWN) {
      if (absl::Status s =
              EndPlacement(tx, &row, named, spec.to, spec.end_reason,
                           spec.comment, me.name(), rc.actor, now);
          !s.ok()) {
        return s;
      }
    } else {
      const v1::PlacementState from = row.placement.state();
      AddTransition(&row.placement, spec.to, me, rc.actor, now);
      if (spec.interview_time != nullptr) {
        *row.placement.mutable_interview_time() = *spec.interview_time;
      }
      ++row.version;
      if (absl::Status s = UpdatePlacement(tx, row); !s.ok()) return s;
      v1::Placement out_named = row.placement;
      out_named.set_name(PlacementName(row.id));
      v1::PlacementStateChanged event;
      *event.mutable_context() = ContextOf(out_named, named);
      event.set_from_state(from);
      event.set_to_state(spec.to);
      if (absl::Status s = Enqueue(tx, event, row.placement.person());
          !s.ok()) {
        return s;
      }
    }
    call.Touch(row.placement.person(), PlacementName(row.id), {kEmployment});
    PlacementOut(row, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoMarkPlacementApplied(
    const Rc& rc, const v1::MarkPlacementAppliedRequest& r,
    v1::Placement* out) {
  TransitionSpec spec{"MarkPlacementApplied",
                      r.name(),
                      r.etag(),
                      {v1::PLACEMENT_STATE_PROPOSED},
                      v1::PLACEMENT_STATE_APPLIED};
  return RunTransition(*this, rc, spec, FieldViolations(), out);
}

absl::Status PlacementServiceImpl::DoMarkPlacementInterview(
    const Rc& rc, const v1::MarkPlacementInterviewRequest& r,
    v1::Placement* out) {
  TransitionSpec spec{"MarkPlacementInterview",
                      r.name(),
                      r.etag(),
                      {v1::PLACEMENT_STATE_APPLIED},
                      v1::PLACEMENT_STATE_INTERVIEW};
  FieldViolations v;
  if (r.has_interview_time()) {
    if (r.interview_time().nanos() < 0 ||
        r.interview_time().nanos() > 999999999) {
      v.Add("interview_time", "must be a valid timestamp");
    }
    spec.interview_time = &r.interview_time();
  }
  return RunTransition(*this, rc, spec, v, out);
}

static void ValidateEnd(v1::PlacementEndReason reason,
                        const std::string& comment, FieldViolations* v) {
  if (reason == v1::PLACEMENT_END_REASON_UNSPECIFIED ||
      reason == v1::PLACEMENT_END_REASON_OFFER_CLOSED ||
      !v1::PlacementEndReason_IsValid(reason)) {
    v->Add("reason", "is required (OFFER_CLOSED is set only automatically)");
  }
  api::ValidateText(
      comment, "comment",
      {reason == v1::PLACEMENT_END_REASON_OTHER ? size_t{1} : size_t{0}, 2000,
       true},
      v);
}

absl::Status PlacementServiceImpl::DoRejectPlacement(
    const Rc& rc, const v1::RejectPlacementRequest& r, v1::Placement* out) {
  TransitionSpec spec{
      "RejectPlacement",
      r.name(),
      r.etag(),
      {v1::PLACEMENT_STATE_PROPOSED, v1::PLACEMENT_STATE_APPLIED,
       v1::PLACEMENT_STATE_INTERVIEW},
      v1::PLACEMENT_STATE_REJECTED};
  spec.end_reason = r.reason();
  spec.comment = r.comment();
  FieldViolations v;
  ValidateEnd(r.reason(), r.comment(), &v);
  return RunTransition(*this, rc, spec, v, out);
}

absl::Status PlacementServiceImpl::DoWithdrawPlacement(
    const Rc& rc, const v1::WithdrawPlacementRequest& r, v1::Placement* out) {
  TransitionSpec spec{
      "WithdrawPlacement",
      r.name(),
      r.etag(),
      {v1::PLACEMENT_STATE_PROPOSED, v1::PLACEMENT_STATE_APPLIED,
       v1::PLACEMENT_STATE_INTERVIEW},
      v1::PLACEMENT_STATE_WITHDRAWN};
  spec.publisher_allowed = false;
  spec.end_reason = r.reason();
  spec.comment = r.comment();
  FieldViolations v;
  ValidateEnd(r.reason(), r.comment(), &v);
  return RunTransition(*this, rc, spec, v, out);
}

namespace {

// Fills one position of `offer` (locked): FAILED_PRECONDITION
// NO_OPEN_POSITIONS when it was withdrawn or has none left; the last one
// makes it FILLED. Writes the offer.
absl::Status TakeOpenPosition(Transaction& tx, OfferRow* offer,
                              absl::Time now) {
  if (offer->offer.state() == v1::OFFER_STATE_WITHDRAWN ||
      offer->offer.positions_open() <= 0) {
    return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                           "NO_OPEN_POSITIONS",
                           "the offer has no open position");
  }
  offer->offer.set_positions_open(offer->offer.positions_open() - 1);
  if (offer->offer.positions_open() == 0) {
    offer->offer.set_state(v1::OFFER_STATE_FILLED);
  }
  *offer->offer.mutable_update_time() = api::ToTimestamp(now);
  ++offer->version;
  absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
  if (!seq.ok()) return seq.status();
  return UpdateOffer(tx, *offer, *seq);
}

// The training toleration notices of an apprenticeship hire: one to the
// office that recorded the person's current residence status
// (`recording_office`, as identity just named it), or without one to every
// immigration office of the workplace's municipality. Returns each
// notice's name and office, in the order written.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
WriteTolerationNotices(Transaction& tx, const PlacementRow& row,
                       const OfferRow& offer, const LocalAgency& me,
                       const std::string& recording_office,
                       const type::v1::Date& start_date, absl::Time now) {
  std::vector<std::string> offices;
  if (!recording_office.empty()) {
    offices.push_back(recording_office);
  } else {
    absl::StatusOr<std::vector<agencies::LocalAgency>> local =
        agencies::ListActiveAgencies(tx, "AUSLAENDERBEHOERDE",
                                     offer.offer.place().municipality_code());
    if (!local.ok()) return local.status();
    for (const agencies::LocalAgency& a : *local) offices.push_back(a.name());
  }
  std::vector<std::pair<std::string, std::string>> written;
  for (const std::string& office : offices) {
    absl::StatusOr<std::string> notice_id = api::NewId();
    if (!notice_id.ok()) return notice_id.status();
    NoticeRow notice;
    notice.id = *notice_id;
    notice.version = 1;
    notice.hiring_agency = me.name();
    v1::TrainingTolerationNotice& n = notice.notice;
    n.set_immigration_office(office);
    n.set_person(row.placement.person());
    n.set_placement(PlacementName(row.id));
    n.set_offer(OfferName(offer.id));
    n.set_occupation_code(offer.offer.occupation_code());
    n.set_employer_name(offer.offer.employer_name());
    *n.mutable_training_start_date() = start_date;
    n.set_training_duration_months(offer.offer.training_duration_months());
    n.set_chamber_agency(offer.offer.chamber_agency());
    *n.mutable_create_time() = api::ToTimestamp(now);
    if (absl::Status s = InsertNotice(tx, notice); !s.ok()) return s;
    written.emplace_back(NoticeName(notice.id), office);
  }
  return written;
}

// The states a placement may be hired from.
const std::vector<v1::PlacementState>& HireableStates() {
  static const auto* const kFrom = new std::vector<v1::PlacementState>{
      v1::PLACEMENT_STATE_APPLIED, v1::PLACEMENT_STATE_INTERVIEW};
  return *kFrom;
}

// The early refusals of a hire (who, which version, which state) before
// identity is asked; all are checked again under the offer's lock. Returns
// the placement's person.
absl::StatusOr<std::string> CheckHireable(Transaction& tx,
                                          const LocalAgency& me,
                                          const std::string& id,
                                          const std::string& etag) {
  absl::StatusOr<std::optional<PlacementRow>> found = ReadPlacement(tx, id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return NotFound("PLACEMENT_NOT_FOUND", "no such placement");
  }
  const PlacementRow& row = **found;
  std::string person = row.placement.person();
  absl::StatusOr<OfferRow> offer = ReadOfferOf(tx, row.placement);
  if (!offer.ok()) return offer.status();
  if (absl::Status s = CheckParty(me, row.placement, offer->offer, true);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = api::CheckEtag(
          etag, api::ComputeEtag(PlacementName(row.id), row.version));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckTransition(row.placement, HireableStates(),
                                       v1::PLACEMENT_STATE_HIRED);
      !s.ok()) {
    return s;
  }
  return person;
}

// The work permission identity reports for the hired person; one that
// needs approval needs the approval's reference.
absl::StatusOr<PermissionCheck> CheckHirePermission(
    PlacementServiceImpl& service, const server::RequestContext& rc,
    const std::string& person, absl::Time now,
    const std::string& work_approval_reference) {
  absl::StatusOr<PermissionCheck> checked =
      CheckWorkPermission(service, rc, person, DayIndex(now));
  if (!checked.ok()) return checked.status();
  if (checked->permission == type::v1::WORK_PERMISSION_NEEDS_APPROVAL &&
      work_approval_reference.empty()) {
    return ErrorWithReason(
        absl::StatusCode::kFailedPrecondition, "WORK_APPROVAL_MISSING",
        "the work permission needs approval: work_approval_reference is "
        "required");
  }
  return *checked;
}

// Takes the lock of the placement's offer and reads, under it, the offer
// and the placement, which must still be the version `etag` names and in a
// state that may be hired.
absl::Status LockHire(Transaction& tx, const std::string& id,
                      const std::string& etag, PlacementRow* row,
                      OfferRow* offer) {
  absl::StatusOr<std::optional<PlacementRow>> found = ReadPlacement(tx, id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return NotFound("PLACEMENT_NOT_FOUND", "no such placement");
  }
  absl::string_view offer_id = (*found)->placement.offer();
  absl::ConsumePrefix(&offer_id, "offers/");
  // The offer's lock first, then its positions: concurrent hires
  // serialise here and each sees the positions the previous one left.
  if (absl::Status s = LockOffer(tx, offer_id); !s.ok()) return s;
  absl::StatusOr<std::optional<OfferRow>> offer_row = ReadOffer(tx, offer_id);
  if (!offer_row.ok()) return offer_row.status();
  if (!offer_row->has_value()) return absl::InternalError("offer gone");
  *offer = **offer_row;
  // Re-read after the lock: another hire may have moved the placement.
  found = ReadPlacement(tx, id);
  if (!found.ok()) return found.status();
  *row = **found;
  if (absl::Status s = api::CheckEtag(
          etag, api::ComputeEtag(PlacementName(row->id), row->version));
      !s.ok()) {
    return s;
  }
  return CheckTransition(row->placement, HireableStates(),
                         v1::PLACEMENT_STATE_HIRED);
}

// Writes the training toleration notices of an apprenticeship hire and
// names the first (and its office) in `event`.
absl::Status AddTolerationNotices(Transaction& tx, AuditedCall& call,
                                  const PlacementRow& row,
                                  const OfferRow& offer, const LocalAgency& me,
                                  const std::string& recording_office,
                                  const type::v1::Date& start_date,
                                  absl::Time now, v1::PlacementHired* event) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> notices =
      WriteTolerationNotices(tx, row, offer, me, recording_office, start_date,
                             now);
  if (!notices.ok()) return notices.status();
  for (const auto& [notice, office] : *notices) {
    if (event->training_toleration_notice().empty()) {
      event->set_training_toleration_notice(notice);
      event->set_immigration_office(office);
    }
    call.Touch(row.placement.person(), notice, {kEmployment, kResidence});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PlacementServiceImpl::DoMarkPlacementHired(
    const Rc& rc, const v1::MarkPlacementHiredRequest& request,
    v1::Placement* out) {
  AuditedCall call(call_env(), rc, "MarkPlacementHired", request.name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kPlacementPattern, "name", &v);
  if (request.etag().empty()) v.Add("etag", "is required");
  ValidateDate(request.start_date(), true, "start_date", &v);
  api::ValidateText(request.work_approval_reference(),
                    "work_approval_reference", {0, 64, false}, &v);
  std::string person;
  absl::Status status =
      call.Read([&](Transaction& tx, const LocalAgency& me) -> absl::Status {
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<std::string> p =
            CheckHireable(tx, me, id, request.etag());
        if (!p.ok()) return p.status();
        person = *std::move(p);
        return absl::OkStatus();
      });
  PermissionCheck permission;
  if (status.ok()) {
    call.set_person_target(person, PlacementName(id), {kEmployment});
    absl::StatusOr<PermissionCheck> checked = CheckHirePermission(
        *this, rc, person, now, request.work_approval_reference());
    if (checked.ok()) {
      permission = *checked;
    } else {
      status = checked.status();
    }
  }
  if (status.ok()) {
    status = call.Write([&](Transaction& tx,
                            const LocalAgency& me) -> absl::Status {
      PlacementRow row;
      OfferRow offer;
      if (absl::Status s = LockHire(tx, id, request.etag(), &row, &offer);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = TakeOpenPosition(tx, &offer, now); !s.ok()) {
        return s;
      }
      v1::Offer named = offer.offer;
      named.set_name(OfferName(offer.id));

      v1::Placement& p = row.placement;
      AddTransition(&p, v1::PLACEMENT_STATE_HIRED, me, rc.actor, now);
      *p.mutable_hire_start_date() = request.start_date();
      p.set_work_approval_reference(request.work_approval_reference());
      const bool apprenticeship =
          offer.offer.kind() == v1::OFFER_KIND_APPRENTICESHIP;
      p.set_training_toleration_relevant(apprenticeship);
      ++row.version;
      if (absl::Status s = UpdatePlacement(tx, row); !s.ok()) return s;
      PlacementOut(row, out);

      v1::PlacementHired event;
      *event.mutable_context() = ContextOf(*out, named);
      *event.mutable_start_date() = request.start_date();
      event.set_training_toleration_relevant(apprenticeship);
      if (apprenticeship) {
        if (absl::Status s = AddTolerationNotices(
                tx, call, row, offer, me, permission.recording_agency,
                request.start_date(), now, &event);
            !s.ok()) {
          return s;
        }
      }
      if (absl::Status s = Enqueue(tx, event, p.person()); !s.ok()) return s;
      call.Touch(p.person(), PlacementName(row.id), {kEmployment, kResidence});
      return absl::OkStatus();
    });
  }
  return call.Finish(status);
}

}  // namespace lotse::placement
