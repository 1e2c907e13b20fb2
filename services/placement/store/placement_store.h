// The placement service's tables (migrations.cc): offers, candidate
// profiles, the facts other services told placement about persons (work
// permission, certified language level), placements, training-toleration
// notices, person merges, and the change counter the match index follows.
//
// Every function runs inside the caller's transaction. Writers of offers,
// candidates and facts pass the change-counter value of their transaction
// (NextIndexSeq), so that every replica's match index can catch up with
// ChangedSince. Read-modify-write of an offer takes LockOffer first
// (PostgreSQL runs at READ COMMITTED).
#ifndef LOTSE_SERVICES_PLACEMENT_STORE_PLACEMENT_STORE_H_
#define LOTSE_SERVICES_PLACEMENT_STORE_PLACEMENT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"
#include "lotse/placement/v1/candidate.pb.h"
#include "lotse/placement/v1/offer.pb.h"
#include "lotse/placement/v1/placement.pb.h"

namespace lotse::placement {

struct OfferRow {
  std::string id;
  int64_t version = 0;
  // Name, etag and positions_open are derived on output; state and
  // positions_open are kept in the record by the handlers.
  v1::Offer offer;
};

struct CandidateRow {
  std::string person_id;  // the {person} of "persons/{person}"
  int64_t version = 0;
  // Set when a merge moved the profile to this person; the row stays as a
  // redirect (state INACTIVE) so old names resolve.
  std::string merged_into;
  // certified_language_level/time are not stored here: they come from
  // PersonFacts (they may arrive before the profile exists).
  v1::CandidateProfile profile;
};

// What placement knows about a person from other services' events.
struct PersonFacts {
  std::string person_id;
  type::v1::WorkPermission work_permission =
      type::v1::WORK_PERMISSION_UNSPECIFIED;
  std::optional<int64_t> work_permission_valid_until;  // day number
  std::string residence_recording_agency;              // "agencies/x"
  int64_t residence_event_us = 0;  // occurred_at of the applied event
  type::v1::CefrLevel certified_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  int64_t certified_us = 0;
  int64_t update_us = 0;
};

struct PlacementRow {
  std::string id;
  int64_t version = 0;
  v1::Placement placement;  // name and etag derived on output
};

struct NoticeRow {
  std::string id;
  int64_t version = 0;
  std::string hiring_agency;  // "agencies/x": may read it besides the office
  v1::TrainingTolerationNotice notice;
};

// Keyset paging: the sort key of the last item of a page, newest first by
// (create_us, id).
struct PageKey {
  int64_t create_us = 0;
  std::string id;
  bool empty() const { return id.empty(); }
  std::string Encode() const;
  static std::optional<PageKey> Decode(absl::string_view text);
};

// --- change counter ---
// Draws the next change-counter value (and holds the counter's row lock
// until commit).
absl::StatusOr<int64_t> NextIndexSeq(storage::Transaction& tx);
absl::StatusOr<int64_t> CurrentIndexSeq(storage::Transaction& tx);

// --- offers ---
absl::Status LockOffer(storage::Transaction& tx, absl::string_view id);
absl::Status InsertOffer(storage::Transaction& tx, const OfferRow& row,
                         int64_t index_seq);
absl::Status UpdateOffer(storage::Transaction& tx, const OfferRow& row,
                         int64_t index_seq);
absl::StatusOr<std::optional<OfferRow>> ReadOffer(storage::Transaction& tx,
                                                  absl::string_view id);
struct OfferFilter {
  std::vector<int> states;  // non-empty
  int kind = 0;             // 0 = any
  std::string occupation_code_prefix;
  std::string municipality_code;
  std::string publisher;  // "agencies/x"
};
absl::StatusOr<std::vector<OfferRow>> ListOffers(storage::Transaction& tx,
                                                 const OfferFilter& filter,
                                                 const PageKey& after,
                                                 int limit);

// --- candidates ---
absl::Status InsertCandidate(storage::Transaction& tx, const CandidateRow& row,
                             int64_t index_seq);
absl::Status UpdateCandidate(storage::Transaction& tx, const CandidateRow& row,
                             int64_t index_seq);
absl::StatusOr<std::optional<CandidateRow>> ReadCandidate(
    storage::Transaction& tx, absl::string_view person_id);
struct CandidateFilter {
  int state = 0;                // 0 = any
  std::string creating_agency;  // "agencies/x"
};
// Profiles that are not merge redirects.
absl::StatusOr<std::vector<CandidateRow>> ListCandidates(
    storage::Transaction& tx, const CandidateFilter& filter,
    const PageKey& after, int limit);

// --- person facts ---
absl::StatusOr<std::optional<PersonFacts>> ReadFacts(
    storage::Transaction& tx, absl::string_view person_id);
absl::Status UpsertFacts(storage::Transaction& tx, const PersonFacts& facts,
                         int64_t index_seq);

// --- merges ---
absl::Status RecordMerge(storage::Transaction& tx, absl::string_view merged,
                         absl::string_view survivor);
// The survivor a merged person id was merged into (following chains), or
// the id itself.
absl::StatusOr<std::string> SurvivorOf(storage::Transaction& tx,
                                       absl::string_view person_id);

// --- placements ---
absl::Status InsertPlacement(storage::Transaction& tx, const PlacementRow& row);
absl::Status UpdatePlacement(storage::Transaction& tx, const PlacementRow& row);
absl::StatusOr<std::optional<PlacementRow>> ReadPlacement(
    storage::Transaction& tx, absl::string_view id);
struct PlacementFilter {
  std::string offer_id;
  std::string person_id;
  std::vector<int> states;  // empty = any
};
absl::StatusOr<std::vector<PlacementRow>> ListPlacements(
    storage::Transaction& tx, const PlacementFilter& filter,
    const PageKey& after, int limit);
// Open (PROPOSED, APPLIED, INTERVIEW) placements of an offer, oldest first.
absl::StatusOr<std::vector<PlacementRow>> OpenPlacementsOfOffer(
    storage::Transaction& tx, absl::string_view offer_id);
// The open placement of a person for an offer, if any.
absl::StatusOr<std::optional<PlacementRow>> OpenPlacement(
    storage::Transaction& tx, absl::string_view offer_id,
    absl::string_view person_id);
// Every placement of a person, oldest first (the anonymised ones are no
// longer the person's).
absl::StatusOr<std::vector<PlacementRow>> PlacementsOfPerson(
    storage::Transaction& tx, absl::string_view person_id);

// --- notices ---
absl::Status InsertNotice(storage::Transaction& tx, const NoticeRow& row);
absl::Status UpdateNotice(storage::Transaction& tx, const NoticeRow& row);
absl::StatusOr<std::optional<NoticeRow>> ReadNotice(storage::Transaction& tx,
                                                    absl::string_view id);
// One placement as the outcome statistics see it: who proposed it and
// where it stands now.
struct PlacementOutcome {
  std::string proposing_agency;  // "agencies/x"
  v1::PlacementState state = v1::PLACEMENT_STATE_UNSPECIFIED;
};
// Placements to offers in `municipality` (the offer's place) proposed in
// [from_us, to_us).
absl::StatusOr<std::vector<PlacementOutcome>> PlacementOutcomes(
    storage::Transaction& tx, const std::string& municipality, int64_t from_us,
    int64_t to_us);

absl::StatusOr<std::vector<NoticeRow>> ListNotices(storage::Transaction& tx,
                                                   absl::string_view office,
                                                   bool unacknowledged_only,
                                                   const PageKey& after,
                                                   int limit);
// Every notice about a person (merges move them).
absl::StatusOr<std::vector<NoticeRow>> NoticesOfPerson(
    storage::Transaction& tx, absl::string_view person_id);

// --- the match index's feed ---
struct IndexChanges {
  int64_t seq = 0;  // the counter value the changes reach
  std::vector<OfferRow> offers;
  // Candidates whose profile or person facts changed, with their facts.
  std::vector<std::pair<CandidateRow, std::optional<PersonFacts>>> candidates;
};
// Everything written with index_seq > `since` (since = 0: everything).
absl::StatusOr<IndexChanges> ChangedSince(storage::Transaction& tx,
                                          int64_t since);

// --- lifecycle (erasure and retention purge) ---
//
// Anchor columns (migration placement.0003_lifecycle) the purge tasks date
// records by; the writers above keep them: placement_candidates.change_us
// (the profile's last update), placement_placements.end_us (when it was
// HIRED, REJECTED or WITHDRAWN), placement_offers.withdraw_us (when it was
// WITHDRAWN). NULL for records that ended or changed before the column
// existed (see migrations.cc): the purge never takes them.
//
// An erased candidate's row stays as a tombstone (merged_into set to
// kErasedCandidate, state INACTIVE, an empty profile, a new change-counter
// value) so that every replica's match index drops the candidate when it
// catches up; it reads as no profile everywhere, like a merge redirect
// that leads nowhere. Placements of an erased person stay anonymised
// (person column "erased:{id}", record without person, candidate and case
// step): the statistics count them; ReadPlacement and ListPlacements do
// not return them.
inline constexpr char kErasedCandidate[] = "-erased-";
absl::Status EraseCandidate(storage::Transaction& tx,
                            absl::string_view person_id, int64_t index_seq);
absl::Status DeleteFacts(storage::Transaction& tx, absl::string_view person_id);
// Updates `row`.
absl::Status AnonymisePlacement(storage::Transaction& tx, PlacementRow* row);
absl::Status DeleteNotice(storage::Transaction& tx, absl::string_view id);
absl::Status DeleteOffer(storage::Transaction& tx, absl::string_view id);
// Forgets the merges the person took part in.
absl::Status DeleteMergesOf(storage::Transaction& tx,
                            absl::string_view person_id);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_STORE_PLACEMENT_STORE_H_
