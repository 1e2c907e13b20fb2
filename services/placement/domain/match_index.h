// MatchIndex: the OPEN offers and ACTIVE candidates of the placement
// service in memory, ranked against one candidate or one offer by the
// rules of matching.h.
//
// Why in memory: a ranking compares one side with every entry of the other
// (100 000 offers is the design size) and must take a few milliseconds;
// reading rows and protos for that is orders of magnitude too slow. The
// service loads the index at start-up and keeps it current on every write
// (see placement_service.h); the index itself knows no database.
//
// Entries are stored twice: the facts as given (for GetOffer/GetCandidate
// and for ids), and a compact form the scan reads. In the compact form
// codes are parsed to integers; skill labels and place codes are interned
// to small ids; an offer's occupation, place and hours are ids into tables
// of their distinct values, so a ranking computes those factors once per
// distinct value and looks them up per entry; the variable-length lists
// (skills, qualifications, ...) live in one array per kind, read in
// sequence. A ranking keeps only the best `limit` entries (a bounded heap,
// never a sort of the whole index), and skips the remaining factors of an
// entry whose best possible score could not make it.
//
// Results agree with Evaluate() in matching.h exactly (same floats, same
// order of operations); the tests check that on random pairs.
//
// Thread-safe: rankings and lookups share a reader lock and run
// concurrently; upserts and removals take the writer lock.
#ifndef LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCH_INDEX_H_
#define LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCH_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/geo/geo.h"
#include "lotse/placement/v1/matching.pb.h"
#include "lotse/placement/v1/offer.pb.h"
#include "services/placement/domain/facts.h"

namespace lotse::placement {

struct RankOptions {
  // RankOffers: only offers of these kinds; empty (or only UNSPECIFIED) =
  // the candidate's wanted kinds (none wanted = any). RankCandidates ignores
  // it: a candidate is considered only if they want the offer's kind.
  std::vector<v1::OfferKind> kinds;
  // Also rank EXCLUDED entries (score 0), after all others.
  bool include_excluded = false;
  // Most results kept (the best ones, in ranking order).
  size_t limit = 1000;
  // Today's day number (DayOf(now)): a work permission whose residence
  // title ended before it is unknown. Required.
  int32_t today = 0;
  // What the caller may see, applied to every candidate of the ranking (as
  // CandidateFacts::WithheldFor): a category not seen is neither used nor
  // decides anything (its constraint is WITHHELD, the match UNVERIFIED).
  bool see_residence = true;
  bool see_language = true;
};

struct RankedOffer {
  std::string offer_id;
  v1::Eligibility eligibility = v1::ELIGIBILITY_UNSPECIFIED;
  float score = 0;
};

struct RankedCandidate {
  std::string person_id;
  v1::Eligibility eligibility = v1::ELIGIBILITY_UNSPECIFIED;
  float score = 0;
};

class MatchIndex {
 public:
  MatchIndex() = default;
  MatchIndex(const MatchIndex&) = delete;
  MatchIndex& operator=(const MatchIndex&) = delete;

  // Adds or replaces the offer with this offer_id. The caller adds only
  // OPEN offers and removes them when they are filled or withdrawn.
  void UpsertOffer(OfferFacts offer) ABSL_LOCKS_EXCLUDED(mu_);
  // No-op for an unknown id.
  void RemoveOffer(const std::string& offer_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Adds or replaces the candidate with this person_id, with all facts (not
  // a WithheldFor copy). An inactive candidate is removed instead.
  void UpsertCandidate(CandidateFacts candidate) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveCandidate(const std::string& person_id) ABSL_LOCKS_EXCLUDED(mu_);

  // The offers for `candidate` (need not be in the index), best first: at
  // most options.limit, EXCLUDED ones only with include_excluded.
  std::vector<RankedOffer> RankOffers(const CandidateFacts& candidate,
                                      const RankOptions& options) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The candidates for `offer` (need not be in the index), best first.
  // `visible`, if set, is asked only about candidates that would make the
  // result; false leaves the candidate out (e.g. no EMPLOYMENT access). It
  // runs under the index's reader lock: it must not call back into the
  // index.
  std::vector<RankedCandidate> RankCandidates(
      const OfferFacts& offer, const RankOptions& options,
      const std::function<bool(const CandidateFacts&)>& visible) const
      ABSL_LOCKS_EXCLUDED(mu_);

  std::optional<OfferFacts> GetOffer(const std::string& offer_id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<CandidateFacts> GetCandidate(const std::string& person_id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  size_t offer_count() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t candidate_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Ids of interned strings; kUnknownId for a string a query has that no
  // entry has (it can match nothing).
  static constexpr int32_t kUnknownId = -2;
  static constexpr int32_t kNoId = -1;

  // Where an offer is; offers share these (a few thousand distinct), so a
  // query computes a place value once per place, not once per offer.
  struct OfferPlace {
    int32_t municipality;  // interned
    int32_t postal;        // interned
    int16_t centre;        // into centres_, -1 none
  };

  // A run of items in one of the pools below.
  struct Range {
    uint32_t offset = 0;
    uint32_t count = 0;
  };

  // The variable-length lists of all entries of one kind in one array, in
  // slot order after each compaction, so that a scan reads them in
  // sequence instead of chasing one allocation per entry (which cost half
  // the scan time). Replaced and removed runs are garbage until the next
  // compaction, which runs when garbage is half of the items.
  template <typename T>
  struct Pool {
    std::vector<T> items;
    size_t garbage = 0;

    Range Add(const std::vector<T>& values) {
      Range range{static_cast<uint32_t>(items.size()),
                  static_cast<uint32_t>(values.size())};
      items.insert(items.end(), values.begin(), values.end());
      return range;
    }
    const T* begin(Range r) const { return items.data() + r.offset; }
    const T* end(Range r) const { return items.data() + r.offset + r.count; }
    bool NeedsCompaction() const {
      return garbage > 4096 && 2 * garbage > items.size();
    }
  };

  // The hot part of an offer, read by every RankOffers scan. Occupation,
  // place and hours are ids into tables of distinct values, for the same
  // reason as OfferPlace.
  struct CompactOffer {
    uint64_t id_prefix;     // first 8 bytes of the id, for ties
    int32_t occupation;     // ParseOccupationCode, for recognition
    int32_t occupation_id;  // into occupation_codes_
    int32_t place_id;       // into offer_places_
    int32_t hours_id;       // into hours_patterns_
    int32_t start_day;
    uint8_t kind;
    uint8_t required_level;
    bool recognition_required;
    Range skills;          // in offer_skills_: interned ids, in order
    Range qualifications;  // in offer_qualifications_: parsed codes
  };

  struct OccupationEntry {
    int32_t code;
    int32_t occupation_id;  // into occupation_codes_ (stored only)
    float weight;           // ExperienceWeight or kQualificationAsExperience
  };
  struct SkillEntry {
    uint32_t id;
    float credit;  // best SkillCredit for this id
  };
  struct QualificationEntry {
    int32_t code;
    int32_t subgroup;  // code / 10
    v1::RecognitionState recognition;
  };
  struct PlaceEntry {
    int32_t municipality;  // interned; kNoId for a postal-code place
    int32_t postal;        // interned
    int16_t centre;        // into centres_ (stored candidates only) or -1
    int32_t max_km;
  };
  // The fixed-size part of a candidate.
  struct CompactCandidate {
    uint64_t id_prefix;  // first 8 bytes of the person id, for ties
    uint8_t kinds_mask;  // bit per OfferKind, 0 = any
    bool residence_withheld;
    bool language_withheld;
    type::v1::WorkPermission permission;
    std::optional<int32_t> permission_valid_until;
    type::v1::CefrLevel level;  // EffectiveLanguageLevel
    std::optional<int32_t> available_from;
    int32_t hours_id;  // into hours_patterns_ (stored only)
    HoursFacts hours;
    // Bit (id % 64) of each skill id: no common bit with an offer's
    // required skills means no common skill, without reading the pool.
    uint64_t skill_bits;
    // Stored candidates: runs in the candidate pools.
    Range occupations, skills, qualifications, places;
  };
  // The lists of one candidate before they go into the pools (or, for a
  // query candidate, instead).
  struct CandidateLists {
    std::vector<OccupationEntry> occupations;
    std::vector<SkillEntry> skills;  // sorted by id
    std::vector<QualificationEntry> qualifications;
    std::vector<PlaceEntry> places;
  };

  // Interns for stored entries (insert=true, writer lock) or looks up for
  // queries (insert=false, reader lock).
  int32_t Intern(absl::flat_hash_map<std::string, int32_t>& table,
                 const std::string& value, bool insert) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int16_t CentreOf(const std::optional<geo::GeoPoint>& point, bool insert) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int32_t OccupationIdOf(int32_t code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t HoursIdOf(const HoursFacts& hours) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  CompactOffer CompactOfferOf(const OfferFacts& offer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // For a stored candidate: interns everything, fills the table ids and
  // appends the lists to the pools.
  CompactCandidate StoredCandidateOf(const CandidateFacts& candidate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // insert=false for a query candidate: nothing is interned (strings no
  // entry has get kUnknownId), centres and table ids are left -1.
  CompactCandidate CompactCandidateOf(const CandidateFacts& candidate,
                                      bool insert, CandidateLists* lists) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ReleaseOffer(const CompactOffer& offer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseCandidate(const CompactCandidate& candidate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RankOffers, step by step (match_index.cc): the candidate prepared once
  // per scan, then per offer its eligibility and each factor's value.
  struct CandidateQuery;
  void PrepareCandidateQuery(const CandidateFacts& candidate,
                             const RankOptions& options,
                             CandidateQuery* q) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  v1::Eligibility OfferEligibility(const CandidateQuery& q,
                                   const CompactOffer& o) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float OfferOccupationValue(CandidateQuery& q, const CompactOffer& o) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float OfferPlaceValue(CandidateQuery& q, const CompactOffer& o) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float OfferSkillsValue(const CandidateQuery& q, const CompactOffer& o) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float OfferQualificationsValue(const CandidateQuery& q,
                                 const CompactOffer& o) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // RankCandidates, step by step (match_index.cc): the offer prepared once
  // per scan, then per candidate its eligibility and each factor's value.
  struct OfferQuery;
  OfferQuery PrepareOfferQuery(const OfferFacts& offer,
                               const RankOptions& options) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  v1::Eligibility CandidateEligibility(const OfferQuery& q,
                                       const CompactCandidate& c,
                                       const RankOptions& options) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float CandidateOccupationValue(OfferQuery& q, const CompactCandidate& c) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float CandidatePlaceValue(OfferQuery& q, const CompactCandidate& c) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float CandidateSkillsValue(const OfferQuery& q,
                             const CompactCandidate& c) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  float CandidateQualificationsValue(const OfferQuery& q,
                                     const CompactCandidate& c) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Rewrite the pools in slot order without garbage, when due.
  void MaybeCompactOffers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeCompactCandidates() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Offers: slot i of compact_offers_ and offer_facts_ is the same offer;
  // removal moves the last slot into the hole.
  std::vector<CompactOffer> compact_offers_ ABSL_GUARDED_BY(mu_);
  std::vector<OfferFacts> offer_facts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> offer_slots_ ABSL_GUARDED_BY(mu_);
  // Candidates, the same way.
  std::vector<CompactCandidate> compact_candidates_ ABSL_GUARDED_BY(mu_);
  Pool<uint32_t> offer_skills_ ABSL_GUARDED_BY(mu_);
  Pool<int32_t> offer_qualifications_ ABSL_GUARDED_BY(mu_);
  Pool<OccupationEntry> candidate_occupations_ ABSL_GUARDED_BY(mu_);
  Pool<SkillEntry> candidate_skills_ ABSL_GUARDED_BY(mu_);
  Pool<QualificationEntry> candidate_qualifications_ ABSL_GUARDED_BY(mu_);
  Pool<PlaceEntry> candidate_places_ ABSL_GUARDED_BY(mu_);
  std::vector<CandidateFacts> candidate_facts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> candidate_slots_
      ABSL_GUARDED_BY(mu_);

  // Tables of distinct values. They only grow: bounded by the distinct
  // skills, place codes, occupation codes and hours ever seen (thousands,
  // not millions). The string tables and centres are mutable because the
  // helpers that intern also serve queries; those pass insert=false.
  mutable absl::flat_hash_map<std::string, int32_t> skill_ids_
      ABSL_GUARDED_BY(mu_);
  mutable absl::flat_hash_map<std::string, int32_t> municipality_ids_
      ABSL_GUARDED_BY(mu_);
  mutable absl::flat_hash_map<std::string, int32_t> postal_ids_
      ABSL_GUARDED_BY(mu_);
  // Distinct postal-area centres (at most the rows of the geo table), and
  // their indexes by the bits of (lat, lon).
  mutable std::vector<geo::GeoPoint> centres_ ABSL_GUARDED_BY(mu_);
  mutable absl::flat_hash_map<std::pair<uint64_t, uint64_t>, int16_t>
      centre_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<int32_t> occupation_codes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int32_t, int32_t> occupation_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<OfferPlace> offer_places_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::tuple<int32_t, int32_t, int16_t>, int32_t>
      offer_place_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<HoursFacts> hours_patterns_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::tuple<uint32_t, uint32_t, uint8_t>, int32_t>
      hours_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCH_INDEX_H_
