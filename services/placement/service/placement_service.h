// The gRPC face of the placement service: lotse.placement.v1.PlacementService
// (proto/lotse/placement/v1/), every RPC implemented.
//
// Every RPC (see common/agencies/audited_call.h):
//   1. resolves the caller in the local agency registry (a copy fed by
//      identity's Agency* events): unknown, mismatched or suspended agencies
//      are PERMISSION_DENIED; a caller not in it yet is looked up in
//      identity first (UNAVAILABLE, reason AGENCY_REGISTRY_UNAVAILABLE, when
//      identity does not answer in time);
//   2. checks the caller's legal domain (WRONG_LEGAL_DOMAIN) and validates
//      the request, reporting every bad field at once (nothing stored);
//   3. asks identity what only identity knows — may the caller read the
//      person's EMPLOYMENT / LANGUAGE / RESIDENCE_STATUS data (one
//      CheckAccess call with all categories needed), does the person exist,
//      what is the current work permission — never while a transaction is
//      open, always under the call's deadline. No answer fails closed:
//      PERMISSION_DENIED (reason CHECK_UNAVAILABLE) for reads,
//      FAILED_PRECONDITION (CHECK_UNAVAILABLE) for proposals and hires;
//   4. does the work, its outbox events and its audit records in one write
//      phase (group commit), or reads in a read-only transaction followed by
//      the audit write. Audit records name "persons/{p}/<record>" with the
//      categories touched; denied and failed calls are audited too.
//
// Access rules (DESIGN.md section 4; the decisions are identity's):
//   - Profiles and placements are EMPLOYMENT. Reading one needs EMPLOYMENT
//     access (PERMISSION_DENIED with identity's denial reason otherwise).
//     Language levels are LANGUAGE: without that access they are empty and
//     listed as withheld. A placement's proposing agency and the offer's
//     publisher are asserted to identity as RELATION_SERVES_PERSON.
//   - Offers carry no personal data: any active agency reads them, and
//     reads of offers are not audited.
//   - Lists (ListCandidateProfiles, ListPlacements) return only the items
//     whose EMPLOYMENT data the caller may read; each item costs one
//     CheckAccess, so a page is filled by walking the rows and checking them
//     in turn, at most PlacementOptions::max_access_checks per call (the
//     page then ends early with a next_page_token).
//   - SetQualificationRecognition by a KAMMER changes one qualification
//     without reading the profile and returns only it.
//   - Training-toleration notices are readable by the addressed immigration
//     office (List/Acknowledge) and are created only by hires.
//
// Offers and hires: every change of an offer's positions or state (hire,
// UpdateOffer, WithdrawOffer) takes the offer's named lock (LockOffer) and
// then re-reads the offer, so concurrent hires on SQLite and PostgreSQL
// (READ COMMITTED) never exceed positions_total; a CHECK constraint on
// positions_open backs this up. Hiring takes the work-permission answer
// from identity first (outside the transaction), then locks.
//
// Work permission: ProposePlacement and MarkPlacementHired ask identity's
// GetCurrentResidenceStatus (the service's own certificate; identity
// admits services) under the call's deadline, capped by the client.
// NOT_FOUND (no residence status) is WORK_PERMISSION_UNKNOWN; a title
// whose valid_until has passed counts as unknown too. The answer is
// recorded in the placement (work_permission).
//
// The data lifecycle (EventHandler): LegalHoldPlaced / LegalHoldReleased
// go to the local hold table (lifecycle::ApplyHold); PersonErased is
// applied with lifecycle::ApplyPersonErased and ErasePlacementPerson;
// PersonRectified changes nothing: the person facts placement keeps (work
// permission, certified language level) come from ResidenceStatusChanged
// and CourseResultRecorded, none from the core record, and profiles hold
// no core identity data. Events about a person already erased here (their
// key shredded) are dropped without effect, so nothing new about them is
// written. After an erasure the person's profile, facts, placements and
// notices answer as unknown (NOT_FOUND; lists leave them out); offers are
// not personal data and stay.
//
// Facts from events (EventHandler): ResidenceStatusChanged (work
// permission, valid_until, recording office; newer events win by
// occurred_at), CourseResultRecorded (a passed exam with a level raises
// the certified level, never lowers it; kept per person even without a
// profile and shown once one is created), PersonMerged (see below) and
// Agency* (registry).
//
// Person merges: the merged person's profile moves to the survivor when the
// survivor has none; when both have one, the survivor's is kept and the
// merged one is marked INACTIVE and left under its old name (nothing of
// the merged profile is copied over: the caseworker reconciles it). Either
// way the merged person's row redirects: "candidates/{merged}" resolves to
// the survivor's profile. Placements and notices move to the survivor;
// facts are combined (higher certified level; the survivor's residence
// facts, or the merged one's when the survivor has none).
//
// Matching: an in-memory MatchIndex (services/placement/domain) of the
// OPEN offers and ACTIVE candidates with their facts. It is loaded from
// the database at start-up and caught up before every match call from a
// change counter (placement_index_version, see store/migrations.cc): every
// write of an offer, profile or person facts draws the next counter value
// and stamps the row, so each replica — also several replicas on one
// PostgreSQL database — reads exactly the rows changed since its last
// catch-up. Pages of a match are cut from one ranking computed for the
// first page and kept in memory for 10 minutes, keyed by the token's
// random id (limitation: a token is only valid on the replica that made
// it; elsewhere it is PAGE_TOKEN_EXPIRED, and the client starts over).
// MatchCandidatesForOffer returns only candidates whose EMPLOYMENT data the
// caller may read: it walks the ranking, asks identity per candidate
// (EMPLOYMENT, LANGUAGE, RESIDENCE_STATUS) until the page is full or
// max_access_checks checks were made, and audits one read per returned
// candidate. Facts the caller may not see are withheld from the ranking
// (the constraint becomes UNVERIFIED) and marked.
#ifndef LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_
#define LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/api/time.h"
#include "common/clients/identity_client.h"
#include "common/events/inbox.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

namespace lotse::placement {

class MatchState;

// The placement service's share of erasing a person (the EraseFn of
// lifecycle::ApplyPersonErased; `person` is the id without "persons/").
// Kinds the retention rules mark erasure=keep stay and are counted as kept.
// Otherwise: the candidate profile becomes a tombstone (placement_store.h)
// and the person facts are deleted, so the match index drops the
// candidate; placements are anonymised (GetPlacementStatistics counts them
// as before); training-toleration notices and merge records are deleted.
// Offers are not the person's data and stay.
absl::StatusOr<lifecycle::ErasureResult> ErasePlacementPerson(
    storage::Transaction& tx, const std::string& person,
    const lifecycle::RetentionRules& rules, absl::Time now);

// The purge tasks of the placement service (lifecycle/purge.h), skipping
// the records of held persons:
//   candidate-profile  LAST_CHANGE (change_us): tombstoned, facts deleted;
//   placement          END (end_us: hired, rejected, withdrawn):
//                      anonymised, so the statistics keep counting it;
//   offer              WITHDRAW (withdraw_us): deleted, unless placements
//                      were made to it (the statistics place them by it).
std::vector<lifecycle::PurgeTask> PlacementPurgeTasks();

struct PlacementOptions {
  // Persons, access decisions and residence status. Required.
  std::shared_ptr<clients::IdentityClient> identity;
  // The service's clock ("today", timestamps, page-token expiry). The
  // default is api::StoreNow(), so a --dev_clock call is stored at its
  // x-lotse-dev-time.
  std::function<absl::Time()> clock = [] { return api::StoreNow(); };
  // How long a match ranking's page tokens stay valid (contract: 10 min).
  absl::Duration match_ttl = absl::Minutes(10);
  // At most this many rankings are kept; the oldest goes first.
  int max_cached_rankings = 1000;
  // Most CheckAccess calls one list or match call makes to fill a page.
  int max_access_checks = 200;
};

class PlacementServiceImpl final : public server::UnaryService {
 public:
  PlacementServiceImpl(server::ServiceRuntime& runtime,
                       PlacementOptions options);
  ~PlacementServiceImpl() override;

  // Applies an event consumed from identity or courses (for
  // events::ApplyEventOnce); see the file comment. Other events are
  // ignored.
  events::ApplyFn EventHandler();

  // Brings the match index up to the database's change counter (loads
  // everything the first time). Called before every match call; exposed
  // for start-up and tests.
  absl::Status CatchUpIndex();

  using Rc = server::RequestContext;
  absl::Status DoCreateOffer(const Rc& rc, const v1::CreateOfferRequest& r,
                             v1::Offer* out);
  absl::Status DoGetOffer(const Rc& rc, const v1::GetOfferRequest& r,
                          v1::Offer* out);
  absl::Status DoListOffers(const Rc& rc, const v1::ListOffersRequest& r,
                            v1::ListOffersResponse* out);
  absl::Status DoUpdateOffer(const Rc& rc, const v1::UpdateOfferRequest& r,
                             v1::Offer* out);
  absl::Status DoWithdrawOffer(const Rc& rc, const v1::WithdrawOfferRequest& r,
                               v1::Offer* out);
  absl::Status DoCreateCandidateProfile(
      const Rc& rc, const v1::CreateCandidateProfileRequest& r,
      v1::CandidateProfile* out);
  absl::Status DoGetCandidateProfile(const Rc& rc,
                                     const v1::GetCandidateProfileRequest& r,
                                     v1::GetCandidateProfileResponse* out);
  absl::Status DoListCandidateProfiles(
      const Rc& rc, const v1::ListCandidateProfilesRequest& r,
      v1::ListCandidateProfilesResponse* out);
  absl::Status DoUpdateCandidateProfile(
      const Rc& rc, const v1::UpdateCandidateProfileRequest& r,
      v1::CandidateProfile* out);
  absl::Status DoSetQualificationRecognition(
      const Rc& rc, const v1::SetQualificationRecognitionRequest& r,
      v1::Qualification* out);
  absl::Status DoMatchOffersForCandidate(
      const Rc& rc, const v1::MatchOffersForCandidateRequest& r,
      v1::MatchOffersForCandidateResponse* out);
  absl::Status DoMatchCandidatesForOffer(
      const Rc& rc, const v1::MatchCandidatesForOfferRequest& r,
      v1::MatchCandidatesForOfferResponse* out);
  absl::Status DoProposePlacement(const Rc& rc,
                                  const v1::ProposePlacementRequest& r,
                                  v1::Placement* out);
  absl::Status DoGetPlacement(const Rc& rc, const v1::GetPlacementRequest& r,
                              v1::Placement* out);
  absl::Status DoListPlacements(const Rc& rc,
                                const v1::ListPlacementsRequest& r,
                                v1::ListPlacementsResponse* out);
  absl::Status DoMarkPlacementApplied(const Rc& rc,
                                      const v1::MarkPlacementAppliedRequest& r,
                                      v1::Placement* out);
  absl::Status DoMarkPlacementInterview(
      const Rc& rc, const v1::MarkPlacementInterviewRequest& r,
      v1::Placement* out);
  absl::Status DoMarkPlacementHired(const Rc& rc,
                                    const v1::MarkPlacementHiredRequest& r,
                                    v1::Placement* out);
  absl::Status DoRejectPlacement(const Rc& rc,
                                 const v1::RejectPlacementRequest& r,
                                 v1::Placement* out);
  absl::Status DoWithdrawPlacement(const Rc& rc,
                                   const v1::WithdrawPlacementRequest& r,
                                   v1::Placement* out);
  absl::Status DoListTrainingTolerationNotices(
      const Rc& rc, const v1::ListTrainingTolerationNoticesRequest& r,
      v1::ListTrainingTolerationNoticesResponse* out);
  absl::Status DoAcknowledgeTrainingTolerationNotice(
      const Rc& rc, const v1::AcknowledgeTrainingTolerationNoticeRequest& r,
      v1::TrainingTolerationNotice* out);
  absl::Status DoGetPlacementStatistics(
      const Rc& rc, const v1::GetPlacementStatisticsRequest& r,
      v1::PlacementStatistics* out);

  // Shared by the handler files.
  storage::Database& db() { return *runtime_.database; }
  const PlacementOptions& options() const { return options_; }
  const agencies::CallEnvironment& call_env() const { return call_env_; }
  absl::Time Now() const { return options_.clock(); }
  MatchState& match() { return *match_; }

 private:
  void RegisterRpcs();

  server::ServiceRuntime& runtime_;
  const PlacementOptions options_;
  agencies::CallEnvironment call_env_;
  std::shared_ptr<MatchState> match_;
};

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_
