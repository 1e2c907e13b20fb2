// The service object, shared helpers of the handler files and the RPC
// table.
#include "services/placement/service/placement_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "common/api/etag.h"
#include "common/events/outbox.h"
#include "common/server/log.h"
#include "services/placement/service/internal.h"
#include "services/placement/service/match_state.h"

namespace lotse::placement {

using ::lotse::storage::Transaction;

// --- names ---

std::string OfferName(absl::string_view id) {
  return absl::StrCat("offers/", id);
}
std::string CandidateName(absl::string_view person_id) {
  return absl::StrCat("candidates/", person_id);
}
std::string PersonName(absl::string_view person_id) {
  return absl::StrCat("persons/", person_id);
}
std::string PlacementName(absl::string_view id) {
  return absl::StrCat("placements/", id);
}
std::string NoticeName(absl::string_view id) {
  return absl::StrCat("trainingTolerationNotices/", id);
}

// --- time and dates ---

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

bool ValidateDate(const type::v1::Date& date, bool required,
                  const std::string& field, FieldViolations* violations) {
  const bool unset = date.year() == 0 && date.month() == 0 && date.day() == 0;
  if (unset) {
    if (required) violations->Add(field, "is required");
    return !required;
  }
  if (!DayNumber(date)) {
    violations->Add(field, "must be a valid calendar date");
    return false;
  }
  return true;
}

// --- errors ---

absl::Status NotFound(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kNotFound, reason, message);
}

absl::Status Precondition(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, reason,
                         message);
}

absl::Status Denied(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, reason, message);
}

bool DomainIs(const agencies::LocalAgency& caller,
              std::initializer_list<absl::string_view> domains) {
  return std::find(domains.begin(), domains.end(), caller.legal_domain) !=
         domains.end();
}

absl::Status RequireDomain(const agencies::LocalAgency& caller,
                           std::initializer_list<absl::string_view> domains,
                           absl::string_view what) {
  if (DomainIs(caller, domains)) return absl::OkStatus();
  return Denied("WRONG_LEGAL_DOMAIN",
                absl::StrCat("agencies of this legal domain may not ", what));
}

// --- access ---

const identity::v1::AccessDecision* AccessView::Find(
    type::v1::DataCategory c) const {
  for (const auto& d : decisions) {
    if (d.category() == c) return &d;
  }
  return nullptr;
}

bool AccessView::Allowed(type::v1::DataCategory c) const {
  const identity::v1::AccessDecision* d = Find(c);
  return d != nullptr && d->allowed();
}

type::v1::AccessDenialReason AccessView::Reason(
    type::v1::DataCategory c) const {
  const identity::v1::AccessDecision* d = Find(c);
  if (d == nullptr || d->denial_reason() == 0) {
    return type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS;
  }
  return d->denial_reason();
}

std::string DenialReasonName(type::v1::AccessDenialReason reason) {
  if (reason == type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED) {
    return "NO_LEGAL_BASIS";
  }
  absl::string_view name = type::v1::AccessDenialReason_Name(reason);
  absl::ConsumePrefix(&name, "ACCESS_DENIAL_REASON_");
  return std::string(name);
}

namespace {

clients::AccessQuery AccessQueryOf(
    const server::RequestContext& rc, const agencies::LocalAgency& caller,
    const std::string& person, std::vector<type::v1::DataCategory> categories,
    bool serves) {
  clients::AccessQuery query;
  query.agency = caller.name();
  query.person = person;
  query.categories = std::move(categories);
  query.purpose = rc.purpose;
  if (serves) query.relations = {identity::v1::RELATION_SERVES_PERSON};
  return query;
}

absl::StatusOr<AccessView> AccessViewOf(
    absl::StatusOr<std::vector<identity::v1::AccessDecision>> decisions) {
  if (!decisions.ok()) {
    if (decisions.status().code() == absl::StatusCode::kNotFound) {
      return NotFound("PERSON_NOT_FOUND", "identity knows no such person");
    }
    // Fail closed: without a decision nothing is shown; the client may
    // retry.
    return ErrorWithReason(
        absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
        "no access decision could be obtained from identity; try again");
  }
  AccessView view;
  view.decisions = *std::move(decisions);
  return view;
}

// The ground of every allowed category, for the call's records about
// `person`; a category the call does not touch is never written.
void NoteGrounds(agencies::AuditedCall& call, const std::string& person,
                 const AccessView& view) {
  for (const identity::v1::AccessDecision& d : view.decisions) {
    if (d.allowed()) call.AddLegalBasisFor(person, clients::LegalBasisOf(d));
  }
}

}  // namespace

absl::StatusOr<AccessView> AskAccess(
    PlacementServiceImpl& service, agencies::AuditedCall& call,
    const std::string& person, std::vector<type::v1::DataCategory> categories,
    bool serves) {
  absl::StatusOr<AccessView> view =
      AccessViewOf(service.options().identity->CheckAccess(
          AccessQueryOf(call.rc(), call.caller(), person, std::move(categories),
                        serves),
          call.rc().deadline));
  if (view.ok()) NoteGrounds(call, person, *view);
  return view;
}

absl::Status RequireStanding(PlacementServiceImpl& service,
                             const server::RequestContext& rc,
                             const agencies::LocalAgency& caller,
                             const std::string& person) {
  // UNAVAILABLE (CHECK_UNAVAILABLE) when identity did not answer.
  return service.options().identity->RequireStanding(person, caller.name(),
                                                     rc.purpose, rc.deadline);
}

std::vector<absl::StatusOr<AccessView>> AskAccessBatch(
    PlacementServiceImpl& service, agencies::AuditedCall& call,
    const std::vector<std::string>& persons, const std::vector<bool>& serves,
    const std::vector<type::v1::DataCategory>& categories) {
  std::vector<clients::AccessQuery> queries;
  queries.reserve(persons.size());
  for (size_t i = 0; i < persons.size(); ++i) {
    queries.push_back(AccessQueryOf(call.rc(), call.caller(), persons[i],
                                    categories, serves[i]));
  }
  std::vector<absl::StatusOr<AccessView>> out;
  out.reserve(persons.size());
  for (auto& decisions : service.options().identity->CheckAccessBatch(
           queries, call.rc().deadline)) {
    out.push_back(AccessViewOf(std::move(decisions)));
    if (out.back().ok())
      NoteGrounds(call, persons[out.size() - 1], *out.back());
  }
  return out;
}

absl::Status RequireAllowed(const AccessView& view,
                            type::v1::DataCategory category) {
  if (view.Allowed(category)) return absl::OkStatus();
  const std::string reason = DenialReasonName(view.Reason(category));
  return Denied(
      reason,
      absl::StrCat("the caller may not read the person's ",
                   category == type::v1::DATA_CATEGORY_EMPLOYMENT ? "EMPLOYMENT"
                                                                  : "data",
                   " data (", reason, ")"));
}

type::v1::Withheld MakeWithheld(const std::string& field,
                                type::v1::DataCategory category,
                                type::v1::AccessDenialReason reason) {
  type::v1::Withheld w;
  w.set_field(field);
  w.set_category(category);
  w.set_reason(reason);
  return w;
}

// --- output ---

void OfferOut(const OfferRow& row, v1::Offer* out) {
  *out = row.offer;
  out->set_name(OfferName(row.id));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

void CandidateOut(const CandidateRow& row,
                  const std::optional<PersonFacts>& facts,
                  v1::CandidateProfile* out) {
  *out = row.profile;
  out->set_name(CandidateName(row.person_id));
  out->set_person(PersonName(row.person_id));
  out->clear_certified_language_level();
  out->clear_certified_language_time();
  if (facts && facts->certified_level != type::v1::CEFR_LEVEL_UNSPECIFIED) {
    out->set_certified_language_level(facts->certified_level);
    *out->mutable_certified_language_time() =
        api::ToTimestamp(absl::FromUnixMicros(facts->certified_us));
  }
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

void WithholdLanguage(
    const std::string& prefix, type::v1::AccessDenialReason reason,
    v1::CandidateProfile* profile,
    google::protobuf::RepeatedPtrField<type::v1::Withheld>* withheld) {
  profile->clear_stated_language_level();
  profile->clear_certified_language_level();
  profile->clear_certified_language_time();
  for (const char* field : {"stated_language_level", "certified_language_level",
                            "certified_language_time"}) {
    *withheld->Add() = MakeWithheld(absl::StrCat(prefix, ".", field),
                                    type::v1::DATA_CATEGORY_LANGUAGE, reason);
  }
}

void PlacementOut(const PlacementRow& row, v1::Placement* out) {
  *out = row.placement;
  out->set_name(PlacementName(row.id));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

void NoticeOut(const NoticeRow& row, v1::TrainingTolerationNotice* out) {
  *out = row.notice;
  out->set_name(NoticeName(row.id));
  out->set_etag(api::ComputeEtag(out->name(), row.version));
}

// --- events ---

absl::Status Enqueue(Transaction& tx, const google::protobuf::Message& payload,
                     const std::string& person) {
  // An anonymised placement (its person erased) has no person, and
  // nothing about it leaves the service.
  if (person.empty()) return absl::OkStatus();
  lotse::events::v1::Event event;
  // Per person, so consumers apply one person's changes in order.
  event.set_ordering_key(person);
  event.set_source("placement");
  event.mutable_payload()->PackFrom(payload);
  return events::EnqueueEvent(tx, std::move(event));
}

v1::PlacementContext ContextOf(const v1::Placement& p, const v1::Offer& offer) {
  v1::PlacementContext c;
  c.set_placement(p.name());
  c.set_offer(p.offer());
  c.set_person(p.person());
  c.set_proposing_agency(p.proposing_agency());
  c.set_case_step(p.case_step());
  c.set_offer_kind(offer.kind());
  c.set_occupation_code(offer.occupation_code());
  // Every event follows the transition that caused it.
  if (p.transitions_size() > 0) {
    c.set_acting_agency(p.transitions(p.transitions_size() - 1).agency());
  }
  return c;
}

bool IsOpenState(v1::PlacementState state) {
  return state == v1::PLACEMENT_STATE_PROPOSED ||
         state == v1::PLACEMENT_STATE_APPLIED ||
         state == v1::PLACEMENT_STATE_INTERVIEW;
}

absl::Status EndPlacement(Transaction& tx, PlacementRow* row,
                          const v1::Offer& offer, v1::PlacementState to_state,
                          v1::PlacementEndReason reason,
                          const std::string& comment, const std::string& agency,
                          const std::string& actor, absl::Time now) {
  v1::Placement& p = row->placement;
  const v1::PlacementState from = p.state();
  p.set_state(to_state);
  p.set_end_reason(reason);
  if (!comment.empty()) p.set_comment(comment);
  v1::PlacementTransition* t = p.add_transitions();
  t->set_from_state(from);
  t->set_to_state(to_state);
  *t->mutable_transition_time() = api::ToTimestamp(now);
  t->set_agency(agency);
  t->set_actor(actor);
  *p.mutable_update_time() = api::ToTimestamp(now);
  ++row->version;
  if (absl::Status s = UpdatePlacement(tx, *row); !s.ok()) return s;
  v1::PlacementStateChanged event;
  v1::Placement named = p;
  named.set_name(PlacementName(row->id));
  *event.mutable_context() = ContextOf(named, offer);
  event.set_from_state(from);
  event.set_to_state(to_state);
  event.set_end_reason(reason);
  return Enqueue(tx, event, p.person());
}

// --- persons ---

absl::StatusOr<ResolvedCandidate> ResolveCandidate(
    Transaction& tx, absl::string_view person_id) {
  ResolvedCandidate out;
  absl::StatusOr<std::string> survivor = SurvivorOf(tx, person_id);
  if (!survivor.ok()) return survivor.status();
  out.person_id = *survivor;
  // The merged person's own profile, when both had one, stays under the
  // old name (INACTIVE); a redirect row leads to the survivor.
  absl::StatusOr<std::optional<CandidateRow>> own =
      ReadCandidate(tx, person_id);
  if (!own.ok()) return own.status();
  if (own->has_value() && (*own)->merged_into.empty()) {
    out.person_id = std::string(person_id);
    out.row = **own;
  } else {
    absl::StatusOr<std::optional<CandidateRow>> row =
        ReadCandidate(tx, out.person_id);
    if (!row.ok()) return row.status();
    if (row->has_value() && (*row)->merged_into.empty()) out.row = **row;
  }
  absl::StatusOr<std::optional<PersonFacts>> facts =
      ReadFacts(tx, out.person_id);
  if (!facts.ok()) return facts.status();
  out.facts = *facts;
  return out;
}

// --- the service ---

PlacementServiceImpl::PlacementServiceImpl(server::ServiceRuntime& runtime,
                                           PlacementOptions options)
    : UnaryService(runtime.env, v1::PlacementService::service_full_name()),
      runtime_(runtime),
      options_(std::move(options)),
      match_(MakeMatchState(options_)) {
  // A caller whose registration has not reached this service yet is looked
  // up in identity rather than refused (common/agencies/registry.h).
  call_env_ = agencies::CallEnvironment::ForRuntime(
      std::string(v1::PlacementService::service_full_name()), runtime_,
      clients::AgencyLookupOf(options_.identity));
  RegisterRpcs();
  // The match index starts from the database; a failure here is retried by
  // the first match call.
  if (absl::Status s = CatchUpIndex(); !s.ok()) {
    server::Log(server::LogLevel::kError, "match index not loaded",
                {{"error", std::string(s.message())}});
  }
}

void PlacementServiceImpl::RegisterRpcs() {
  Handle("CreateOffer", this, &PlacementServiceImpl::DoCreateOffer);
  Handle("GetOffer", this, &PlacementServiceImpl::DoGetOffer);
  Handle("ListOffers", this, &PlacementServiceImpl::DoListOffers);
  Handle("UpdateOffer", this, &PlacementServiceImpl::DoUpdateOffer);
  Handle("WithdrawOffer", this, &PlacementServiceImpl::DoWithdrawOffer);
  Handle("CreateCandidateProfile", this,
         &PlacementServiceImpl::DoCreateCandidateProfile);
  Handle("GetCandidateProfile", this,
         &PlacementServiceImpl::DoGetCandidateProfile);
  Handle("ListCandidateProfiles", this,
         &PlacementServiceImpl::DoListCandidateProfiles);
  Handle("UpdateCandidateProfile", this,
         &PlacementServiceImpl::DoUpdateCandidateProfile);
  Handle("SetQualificationRecognition", this,
         &PlacementServiceImpl::DoSetQualificationRecognition);
  Handle("MatchOffersForCandidate", this,
         &PlacementServiceImpl::DoMatchOffersForCandidate);
  Handle("MatchCandidatesForOffer", this,
         &PlacementServiceImpl::DoMatchCandidatesForOffer);
  Handle("ProposePlacement", this, &PlacementServiceImpl::DoProposePlacement);
  Handle("GetPlacement", this, &PlacementServiceImpl::DoGetPlacement);
  Handle("ListPlacements", this, &PlacementServiceImpl::DoListPlacements);
  Handle("MarkPlacementApplied", this,
         &PlacementServiceImpl::DoMarkPlacementApplied);
  Handle("MarkPlacementInterview", this,
         &PlacementServiceImpl::DoMarkPlacementInterview);
  Handle("MarkPlacementHired", this,
         &PlacementServiceImpl::DoMarkPlacementHired);
  Handle("RejectPlacement", this, &PlacementServiceImpl::DoRejectPlacement);
  Handle("WithdrawPlacement", this, &PlacementServiceImpl::DoWithdrawPlacement);
  Handle("ListTrainingTolerationNotices", this,
         &PlacementServiceImpl::DoListTrainingTolerationNotices);
  Handle("AcknowledgeTrainingTolerationNotice", this,
         &PlacementServiceImpl::DoAcknowledgeTrainingTolerationNotice);
  Handle("GetPlacementStatistics", this,
         &PlacementServiceImpl::DoGetPlacementStatistics);
}

}  // namespace lotse::placement
