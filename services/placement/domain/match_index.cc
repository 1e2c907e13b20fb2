#include "services/placement/domain/match_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "services/placement/domain/kldb.h"
#include "services/placement/domain/matching.h"

namespace lotse::placement {
namespace {

uint8_t KindBit(int kind) {
  return kind > 0 && kind < 8 ? static_cast<uint8_t>(1u << kind) : 0;
}

// One integer whose ascending order is the ranking order up to the id:
// tier, score descending, ELIGIBLE before NEEDS_APPROVAL, earlier day.
uint64_t RankKey(v1::Eligibility eligibility, float score, int32_t tie_day) {
  const uint64_t tier = static_cast<uint64_t>(RankTier(eligibility));
  uint32_t score_bits;  // scores are >= 0, whose float bits order like them
  std::memcpy(&score_bits, &score, sizeof score_bits);
  const uint64_t descending_score = 0xFFFFFFFFull - score_bits;
  const uint64_t approval =
      eligibility == v1::ELIGIBILITY_NEEDS_APPROVAL ? 1 : 0;
  const uint64_t day =
      static_cast<uint64_t>(std::clamp<int32_t>(tie_day, 0, (1 << 29) - 1));
  return tier << 62 | descending_score << 30 | approval << 29 | day;
}

float ScoreOf(const v1::Eligibility eligibility, const FactorValues& values) {
  return eligibility == v1::ELIGIBILITY_EXCLUDED ? 0.0f : WeightedScore(values);
}

struct Ranked {
  uint64_t key;
  uint32_t slot;
  v1::Eligibility eligibility;
  float score;
  uint64_t id_prefix;  // IdPrefix of the id: most ties need no string
};

// The first eight bytes of an id as a big-endian number (zero-padded):
// ordered like the ids themselves, so most ties need no string compare.
uint64_t IdPrefix(const std::string& id) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix =
        prefix << 8 | (i < id.size() ? static_cast<unsigned char>(id[i]) : 0u);
  }
  return prefix;
}

// The best `limit` entries seen, as a max-heap whose top is the worst kept
// one, so most entries are rejected by one comparison with the top.
template <typename IdOf>
class TopK {
 public:
  TopK(size_t limit, IdOf id_of) : limit_(limit), id_of_(id_of) {
    heap_.reserve(std::min<size_t>(limit, 4096));
  }

  // Whether an entry with this key could be kept (ties on the key are
  // decided by the id in Add).
  bool Admits(uint64_t key) const {
    return heap_.size() < limit_ || key <= heap_.front().key;
  }

  void Add(const Ranked& entry) {
    if (heap_.size() < limit_) {
      heap_.push_back(entry);
      std::push_heap(heap_.begin(), heap_.end(), Less());
    } else if (Less()(entry, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Less());
      heap_.back() = entry;
      std::push_heap(heap_.begin(), heap_.end(), Less());
    }
  }

  std::vector<Ranked> Sorted() && {
    std::sort_heap(heap_.begin(), heap_.end(), Less());
    return std::move(heap_);
  }

 private:
  struct LessFn {
    const IdOf* id_of;
    bool operator()(const Ranked& a, const Ranked& b) const {
      if (a.key != b.key) return a.key < b.key;
      if (a.id_prefix != b.id_prefix) return a.id_prefix < b.id_prefix;
      return (*id_of)(a.slot) < (*id_of)(b.slot);
    }
  };
  LessFn Less() const { return LessFn{&id_of_}; }

  size_t limit_;
  IdOf id_of_;
  std::vector<Ranked> heap_;
};

template <typename IdOf>
TopK<IdOf> MakeTopK(size_t limit, IdOf id_of) {
  return TopK<IdOf>(limit, id_of);
}

constexpr float kNotComputed = std::numeric_limits<float>::quiet_NaN();

}  // namespace

int32_t MatchIndex::Intern(absl::flat_hash_map<std::string, int32_t>& table,
                           const std::string& value, bool insert) const {
  // An empty place code means "not this kind of place"; skills are
  // interned whatever they are (validation keeps them non-empty).
  if (value.empty() && &table != &skill_ids_) return kNoId;
  auto it = table.find(value);
  if (it != table.end()) return it->second;
  if (!insert) return kUnknownId;
  const int32_t id = static_cast<int32_t>(table.size());
  table.emplace(value, id);
  return id;
}

int16_t MatchIndex::CentreOf(const std::optional<geo::GeoPoint>& point,
                             bool insert) const {
  if (!point) return -1;
  std::pair<uint64_t, uint64_t> bits;
  std::memcpy(&bits.first, &point->lat, sizeof bits.first);
  std::memcpy(&bits.second, &point->lon, sizeof bits.second);
  auto it = centre_ids_.find(bits);
  if (it != centre_ids_.end()) return it->second;
  // The built-in geo table has fewer than a hundred rows; a replaced one
  // with more than 32767 distinct centres would leave the surplus without
  // distances (and this index would then disagree with Evaluate).
  if (!insert || centres_.size() >= 32767) return -1;
  const int16_t id = static_cast<int16_t>(centres_.size());
  centres_.push_back(*point);
  centre_ids_.emplace(bits, id);
  return id;
}

int32_t MatchIndex::OccupationIdOf(int32_t code) {
  auto [it, inserted] = occupation_ids_.try_emplace(
      code, static_cast<int32_t>(occupation_codes_.size()));
  if (inserted) occupation_codes_.push_back(code);
  return it->second;
}

int32_t MatchIndex::HoursIdOf(const HoursFacts& hours) {
  std::tuple<uint32_t, uint32_t, uint8_t> key;
  std::memcpy(&std::get<0>(key), &hours.min_per_week, sizeof(uint32_t));
  std::memcpy(&std::get<1>(key), &hours.max_per_week, sizeof(uint32_t));
  std::get<2>(key) = hours.day_periods;
  auto [it, inserted] =
      hours_ids_.try_emplace(key, static_cast<int32_t>(hours_patterns_.size()));
  if (inserted) hours_patterns_.push_back(hours);
  return it->second;
}

MatchIndex::CompactOffer MatchIndex::CompactOfferOf(const OfferFacts& offer) {
  CompactOffer c;
  c.id_prefix = IdPrefix(offer.offer_id);
  c.occupation = ParseOccupationCode(offer.occupation_code);
  c.occupation_id = OccupationIdOf(c.occupation);
  const OfferPlace place{
      Intern(municipality_ids_, offer.municipality_code, true),
      Intern(postal_ids_, offer.postal_code, true),
      CentreOf(offer.place_centre, true)};
  auto [it, inserted] = offer_place_ids_.try_emplace(
      std::make_tuple(place.municipality, place.postal, place.centre),
      static_cast<int32_t>(offer_places_.size()));
  if (inserted) offer_places_.push_back(place);
  c.place_id = it->second;
  c.hours_id = HoursIdOf(offer.hours);
  c.start_day = offer.start_day;
  c.kind = static_cast<uint8_t>(offer.kind);
  c.required_level = static_cast<uint8_t>(offer.required_language_level);
  c.recognition_required = offer.recognition_required;
  std::vector<uint32_t> skills;
  for (const std::string& skill : offer.required_skills) {
    skills.push_back(static_cast<uint32_t>(Intern(skill_ids_, skill, true)));
  }
  c.skills = offer_skills_.Add(skills);
  std::vector<int32_t> qualifications;
  for (const std::string& code : offer.required_qualification_codes) {
    qualifications.push_back(ParseOccupationCode(code));
  }
  c.qualifications = offer_qualifications_.Add(qualifications);
  return c;
}

MatchIndex::CompactCandidate MatchIndex::CompactCandidateOf(
    const CandidateFacts& candidate, bool insert, CandidateLists* lists) const {
  CompactCandidate c;
  c.id_prefix = IdPrefix(candidate.person_id);
  c.kinds_mask = 0;
  for (v1::OfferKind kind : candidate.wanted_kinds)
    c.kinds_mask |= KindBit(kind);
  c.residence_withheld = candidate.residence_withheld;
  c.language_withheld = candidate.language_withheld;
  c.permission = candidate.work_permission;
  c.permission_valid_until = candidate.work_permission_valid_until_day;
  c.level = candidate.EffectiveLanguageLevel().level;
  c.available_from = candidate.available_from_day;
  c.hours_id = -1;
  c.hours = candidate.preferred_hours;
  for (const ExperienceFacts& e : candidate.experience) {
    const int32_t code = ParseOccupationCode(e.occupation_code);
    if (code >= 0) {
      lists->occupations.push_back({code, -1, ExperienceWeight(e.months)});
    }
  }
  for (const QualificationFacts& q : candidate.qualifications) {
    const int32_t code = ParseOccupationCode(q.occupation_code);
    if (code < 0) continue;
    lists->occupations.push_back({code, -1, kQualificationAsExperience});
    lists->qualifications.push_back({code, code / 10, q.recognition});
  }
  for (const SkillFacts& s : candidate.skills) {
    const int32_t id = Intern(skill_ids_, s.label, insert);
    if (id < 0) continue;  // no offer asks for it
    const float credit = SkillCredit(s.level);
    auto it = std::find_if(lists->skills.begin(), lists->skills.end(),
                           [id](const SkillEntry& e) {
                             return e.id == static_cast<uint32_t>(id);
                           });
    if (it == lists->skills.end()) {
      lists->skills.push_back({static_cast<uint32_t>(id), credit});
    } else {
      it->credit = std::max(it->credit, credit);
    }
  }
  std::sort(
      lists->skills.begin(), lists->skills.end(),
      [](const SkillEntry& a, const SkillEntry& b) { return a.id < b.id; });
  c.skill_bits = 0;
  for (const SkillEntry& e : lists->skills) c.skill_bits |= 1ull << (e.id & 63);
  for (const PlaceFacts& p : candidate.preferred_places) {
    PlaceEntry place;
    // A municipality place never matches by postal code (as in Evaluate),
    // so an unknown municipality stays kUnknownId rather than kNoId.
    place.municipality =
        p.municipality_code.empty()
            ? kNoId
            : Intern(municipality_ids_, p.municipality_code, insert);
    place.postal = Intern(postal_ids_, p.postal_code, insert);
    place.centre = insert ? CentreOf(p.centre, true) : -1;
    place.max_km = p.max_distance_km;
    lists->places.push_back(place);
  }
  return c;
}

MatchIndex::CompactCandidate MatchIndex::StoredCandidateOf(
    const CandidateFacts& candidate) {
  CandidateLists lists;
  CompactCandidate c = CompactCandidateOf(candidate, /*insert=*/true, &lists);
  for (OccupationEntry& e : lists.occupations) {
    e.occupation_id = OccupationIdOf(e.code);
  }
  c.hours_id = HoursIdOf(c.hours);
  c.occupations = candidate_occupations_.Add(lists.occupations);
  c.skills = candidate_skills_.Add(lists.skills);
  c.qualifications = candidate_qualifications_.Add(lists.qualifications);
  c.places = candidate_places_.Add(lists.places);
  return c;
}

void MatchIndex::ReleaseOffer(const CompactOffer& offer) {
  offer_skills_.garbage += offer.skills.count;
  offer_qualifications_.garbage += offer.qualifications.count;
}

void MatchIndex::ReleaseCandidate(const CompactCandidate& candidate) {
  candidate_occupations_.garbage += candidate.occupations.count;
  candidate_skills_.garbage += candidate.skills.count;
  candidate_qualifications_.garbage += candidate.qualifications.count;
  candidate_places_.garbage += candidate.places.count;
}

namespace {

// Copies the run `range` of `from` to the end of `to` and points `range`
// at the copy.
template <typename T, typename R>
void MoveRun(const std::vector<T>& from, std::vector<T>* to, R* range) {
  const uint32_t offset = static_cast<uint32_t>(to->size());
  to->insert(to->end(), from.begin() + range->offset,
             from.begin() + range->offset + range->count);
  range->offset = offset;
}

}  // namespace

void MatchIndex::MaybeCompactOffers() {
  if (!offer_skills_.NeedsCompaction() &&
      !offer_qualifications_.NeedsCompaction()) {
    return;
  }
  std::vector<uint32_t> skills;
  std::vector<int32_t> qualifications;
  skills.reserve(offer_skills_.items.size() - offer_skills_.garbage);
  for (CompactOffer& o : compact_offers_) {
    MoveRun(offer_skills_.items, &skills, &o.skills);
    MoveRun(offer_qualifications_.items, &qualifications, &o.qualifications);
  }
  offer_skills_ = {std::move(skills), 0};
  offer_qualifications_ = {std::move(qualifications), 0};
}

void MatchIndex::MaybeCompactCandidates() {
  if (!candidate_occupations_.NeedsCompaction() &&
      !candidate_skills_.NeedsCompaction() &&
      !candidate_qualifications_.NeedsCompaction() &&
      !candidate_places_.NeedsCompaction()) {
    return;
  }
  std::vector<OccupationEntry> occupations;
  std::vector<SkillEntry> skills;
  std::vector<QualificationEntry> qualifications;
  std::vector<PlaceEntry> places;
  for (CompactCandidate& c : compact_candidates_) {
    MoveRun(candidate_occupations_.items, &occupations, &c.occupations);
    MoveRun(candidate_skills_.items, &skills, &c.skills);
    MoveRun(candidate_qualifications_.items, &qualifications,
            &c.qualifications);
    MoveRun(candidate_places_.items, &places, &c.places);
  }
  candidate_occupations_ = {std::move(occupations), 0};
  candidate_skills_ = {std::move(skills), 0};
  candidate_qualifications_ = {std::move(qualifications), 0};
  candidate_places_ = {std::move(places), 0};
}

void MatchIndex::UpsertOffer(OfferFacts offer) {
  absl::MutexLock lock(&mu_);
  CompactOffer compact = CompactOfferOf(offer);
  auto it = offer_slots_.find(offer.offer_id);
  if (it != offer_slots_.end()) {
    ReleaseOffer(compact_offers_[it->second]);
    compact_offers_[it->second] = std::move(compact);
    offer_facts_[it->second] = std::move(offer);
    MaybeCompactOffers();
    return;
  }
  offer_slots_.emplace(offer.offer_id, compact_offers_.size());
  compact_offers_.push_back(std::move(compact));
  offer_facts_.push_back(std::move(offer));
}

void MatchIndex::RemoveOffer(const std::string& offer_id) {
  absl::MutexLock lock(&mu_);
  auto it = offer_slots_.find(offer_id);
  if (it == offer_slots_.end()) return;
  const size_t slot = it->second;
  offer_slots_.erase(it);
  ReleaseOffer(compact_offers_[slot]);
  const size_t last = compact_offers_.size() - 1;
  if (slot != last) {
    compact_offers_[slot] = std::move(compact_offers_[last]);
    offer_facts_[slot] = std::move(offer_facts_[last]);
    offer_slots_[offer_facts_[slot].offer_id] = slot;
  }
  compact_offers_.pop_back();
  offer_facts_.pop_back();
  MaybeCompactOffers();
}

void MatchIndex::UpsertCandidate(CandidateFacts candidate) {
  if (!candidate.active) {
    RemoveCandidate(candidate.person_id);
    return;
  }
  absl::MutexLock lock(&mu_);
  CompactCandidate compact = StoredCandidateOf(candidate);
  auto it = candidate_slots_.find(candidate.person_id);
  if (it != candidate_slots_.end()) {
    ReleaseCandidate(compact_candidates_[it->second]);
    compact_candidates_[it->second] = std::move(compact);
    candidate_facts_[it->second] = std::move(candidate);
    MaybeCompactCandidates();
    return;
  }
  candidate_slots_.emplace(candidate.person_id, compact_candidates_.size());
  compact_candidates_.push_back(std::move(compact));
  candidate_facts_.push_back(std::move(candidate));
}

void MatchIndex::RemoveCandidate(const std::string& person_id) {
  absl::MutexLock lock(&mu_);
  auto it = candidate_slots_.find(person_id);
  if (it == candidate_slots_.end()) return;
  const size_t slot = it->second;
  candidate_slots_.erase(it);
  ReleaseCandidate(compact_candidates_[slot]);
  const size_t last = compact_candidates_.size() - 1;
  if (slot != last) {
    compact_candidates_[slot] = std::move(compact_candidates_[last]);
    candidate_facts_[slot] = std::move(candidate_facts_[last]);
    candidate_slots_[candidate_facts_[slot].person_id] = slot;
  }
  compact_candidates_.pop_back();
  candidate_facts_.pop_back();
  MaybeCompactCandidates();
}

// The candidate of one RankOffers scan, prepared once: everything about
// it that is compared per offer (eligibility by required level, credit by
// skill id), and the values by occupation, place and hours id that the
// scan computes on first use (NaN until then).
struct MatchIndex::CandidateQuery {
  const CandidateFacts* candidate = nullptr;  // as the caller may see it
  CandidateLists lists;
  CompactCandidate c;
  // The request's kinds, else the candidate's (UNSPECIFIED counts as none).
  uint8_t kinds_mask = 0;
  v1::Eligibility permission = v1::ELIGIBILITY_UNSPECIFIED;
  v1::Eligibility eligibility_by_level[8];
  std::vector<float> skill_credit;      // by skill id
  std::vector<float> occupation_value;  // by occupation id
  std::vector<float> place_value;       // by offer place id
  std::vector<float> hours_value;       // by hours id
};

void MatchIndex::PrepareCandidateQuery(const CandidateFacts& candidate,
                                       const RankOptions& options,
                                       CandidateQuery* q) const {
  q->candidate = &candidate;
  q->c = CompactCandidateOf(candidate, /*insert=*/false, &q->lists);
  for (v1::OfferKind kind : options.kinds) q->kinds_mask |= KindBit(kind);
  if (q->kinds_mask == 0) q->kinds_mask = q->c.kinds_mask;
  q->permission = EligibilityOf(
      WorkPermissionOutcome(q->c.permission, q->c.permission_valid_until,
                            q->c.residence_withheld, options.today));
  for (int level = 0; level < 8; ++level) {
    q->eligibility_by_level[level] =
        Worse(q->permission, EligibilityOf(LanguageOutcome(
                                 q->c.level, q->c.language_withheld,
                                 static_cast<type::v1::CefrLevel>(level))));
  }
  q->skill_credit.assign(skill_ids_.size(), 0.0f);
  for (const SkillEntry& s : q->lists.skills) q->skill_credit[s.id] = s.credit;
  q->occupation_value.assign(occupation_codes_.size(), kNotComputed);
  q->place_value.assign(offer_places_.size(), kNotComputed);
  q->hours_value.assign(hours_patterns_.size(), kNotComputed);
}

v1::Eligibility MatchIndex::OfferEligibility(const CandidateQuery& q,
                                             const CompactOffer& o) const {
  v1::Eligibility eligibility = q.eligibility_by_level[o.required_level & 7];
  if (!o.recognition_required) return eligibility;
  std::optional<v1::RecognitionState> best;
  for (const QualificationEntry& e : q.lists.qualifications) {
    bool in_occupation = o.occupation >= 0 && o.occupation / 10 == e.subgroup;
    for (const int32_t* r = offer_qualifications_.begin(o.qualifications);
         r != offer_qualifications_.end(o.qualifications); ++r) {
      const int32_t required = *r;
      in_occupation |= required >= 0 && required / 10 == e.subgroup;
    }
    if (in_occupation &&
        (!best || RecognitionRank(e.recognition) > RecognitionRank(*best))) {
      best = e.recognition;
    }
  }
  return Worse(eligibility, EligibilityOf(RecognitionOutcome(best)));
}

float MatchIndex::OfferOccupationValue(CandidateQuery& q,
                                       const CompactOffer& o) const {
  float& cached = q.occupation_value[o.occupation_id];
  if (!std::isnan(cached)) return cached;
  float value = 0;
  const int32_t code = occupation_codes_[o.occupation_id];
  for (const OccupationEntry& e : q.lists.occupations) {
    value = std::max(
        value,
        OccupationSimilarity(CommonOccupationDigits(code, e.code)) * e.weight);
  }
  cached = value;
  return value;
}

float MatchIndex::OfferPlaceValue(CandidateQuery& q,
                                  const CompactOffer& o) const {
  float& cached = q.place_value[o.place_id];
  if (!std::isnan(cached)) return cached;
  if (q.lists.places.empty()) {
    cached = kNeutralValue;
    return cached;
  }
  const OfferPlace& offer_place = offer_places_[o.place_id];
  float best = 0;
  for (size_t p = 0; p < q.lists.places.size(); ++p) {
    const PlaceEntry& place = q.lists.places[p];
    const std::optional<geo::GeoPoint>& point =
        q.candidate->preferred_places[p].centre;
    float value = 0;
    if (place.municipality != kNoId) {
      value = place.municipality == offer_place.municipality ? 1.0f : 0.0f;
    } else if (point && offer_place.centre >= 0) {
      value = PlaceValueAtDistance(static_cast<float>(geo::DistanceKm(
                                       *point, centres_[offer_place.centre])),
                                   place.max_km);
    } else if (place.postal >= 0 && place.postal == offer_place.postal) {
      value = PlaceValueAtDistance(0.0f, place.max_km);
    }
    best = std::max(best, value);
  }
  cached = best;
  return best;
}

float MatchIndex::OfferSkillsValue(const CandidateQuery& q,
                                   const CompactOffer& o) const {
  if (o.skills.count == 0) return 1.0f;
  float credit = 0;
  for (const uint32_t* id = offer_skills_.begin(o.skills);
       id != offer_skills_.end(o.skills); ++id) {
    credit += q.skill_credit[*id];
  }
  return credit / static_cast<float>(o.skills.count);
}

float MatchIndex::OfferQualificationsValue(const CandidateQuery& q,
                                           const CompactOffer& o) const {
  if (o.qualifications.count == 0) return 1.0f;
  float credit = 0;
  for (const int32_t* r = offer_qualifications_.begin(o.qualifications);
       r != offer_qualifications_.end(o.qualifications); ++r) {
    const int32_t required = *r;
    float best = 0;
    if (required >= 0) {
      for (const QualificationEntry& e : q.lists.qualifications) {
        if (e.subgroup != required / 10) continue;
        best = std::max(
            best,
            QualificationCredit(e.recognition, RequirementLevel(e.code) >=
                                                   RequirementLevel(required)));
      }
    }
    credit += best;
  }
  return credit / static_cast<float>(o.qualifications.count);
}

std::vector<RankedOffer> MatchIndex::RankOffers(
    const CandidateFacts& candidate_in, const RankOptions& options) const {
  if (options.limit == 0) return {};
  std::optional<CandidateFacts> withheld_copy;
  if (!options.see_residence || !options.see_language) {
    withheld_copy =
        candidate_in.WithheldFor(options.see_residence, options.see_language);
  }
  const CandidateFacts& candidate =
      withheld_copy ? *withheld_copy : candidate_in;

  absl::ReaderMutexLock lock(&mu_);
  CandidateQuery q;
  PrepareCandidateQuery(candidate, options, &q);
  if (q.permission == v1::ELIGIBILITY_EXCLUDED && !options.include_excluded) {
    return {};
  }
  auto top =
      MakeTopK(options.limit, [this](uint32_t slot) -> const std::string& {
        return offer_facts_[slot].offer_id;
      });
  const size_t n = compact_offers_.size();
  for (size_t slot = 0; slot < n; ++slot) {
    const CompactOffer& o = compact_offers_[slot];
    if (q.kinds_mask != 0 && (q.kinds_mask & KindBit(o.kind)) == 0) continue;
    const v1::Eligibility eligibility = OfferEligibility(q, o);
    if (eligibility == v1::ELIGIBILITY_EXCLUDED) {
      if (!options.include_excluded) continue;
      const uint64_t key = RankKey(eligibility, 0.0f, o.start_day);
      if (top.Admits(key)) {
        top.Add(
            {key, static_cast<uint32_t>(slot), eligibility, 0.0f, o.id_prefix});
      }
      continue;
    }

    // The factors looked up per distinct value first; then, unless even
    // full skills and qualifications could not make the result, the rest.
    FactorValues v;
    v.occupation = OfferOccupationValue(q, o);
    v.place = OfferPlaceValue(q, o);
    float& hours = q.hours_value[o.hours_id];
    if (std::isnan(hours)) {
      hours = HoursValue(hours_patterns_[o.hours_id], q.c.hours);
    }
    v.hours = hours;
    v.availability = AvailabilityValue(o.start_day, q.c.available_from);
    v.skills = 1.0f;
    v.qualifications = 1.0f;
    if (!top.Admits(RankKey(eligibility, WeightedScore(v), o.start_day))) {
      continue;
    }
    v.skills = OfferSkillsValue(q, o);
    v.qualifications = OfferQualificationsValue(q, o);
    const float score = ScoreOf(eligibility, v);
    const uint64_t key = RankKey(eligibility, score, o.start_day);
    if (top.Admits(key)) {
      top.Add(
          {key, static_cast<uint32_t>(slot), eligibility, score, o.id_prefix});
    }
  }

  std::vector<RankedOffer> out;
  for (const Ranked& r : std::move(top).Sorted()) {
    out.push_back({offer_facts_[r.slot].offer_id, r.eligibility, r.score});
  }
  return out;
}

// The offer of one RankCandidates scan, prepared once, and the values the
// scan computes on first use (NaN until then).
struct MatchIndex::OfferQuery {
  const OfferFacts* offer = nullptr;
  // Strings no stored candidate has get kUnknownId and match nothing.
  int32_t occupation = -1;
  int32_t municipality = kUnknownId;
  int32_t postal = kUnknownId;
  uint8_t kind_bit = 0;
  // How often each skill id is required; the credits are multiples of 0.5,
  // so summing them in candidate order gives Evaluate's float exactly.
  std::vector<uint8_t> required_count;
  uint64_t required_bits = 0;
  float required_skills = 0;
  std::vector<int32_t> qualifications;
  std::vector<int32_t> subgroups;  // for the recognition constraint
  // Language eligibility by candidate level, and when withheld.
  v1::Eligibility language_by_level[8];
  v1::Eligibility language_withheld;
  // Work permission eligibility by permission, and when withheld or
  // expired (the rules of WorkPermissionOutcome, looked up instead of
  // called).
  v1::Eligibility permission_by_value[4];
  v1::Eligibility permission_withheld;
  v1::Eligibility permission_expired;
  std::vector<float> similarity;    // by occupation id
  std::vector<float> hours_value;   // by hours id
  std::vector<float> km_by_centre;  // by centre
};

MatchIndex::OfferQuery MatchIndex::PrepareOfferQuery(
    const OfferFacts& offer, const RankOptions& options) const {
  OfferQuery q;
  q.offer = &offer;
  q.occupation = ParseOccupationCode(offer.occupation_code);
  q.municipality = Intern(municipality_ids_, offer.municipality_code, false);
  q.postal = Intern(postal_ids_, offer.postal_code, false);
  q.kind_bit = KindBit(offer.kind);
  q.required_count.assign(skill_ids_.size(), 0);
  for (const std::string& skill : offer.required_skills) {
    const int32_t id = Intern(skill_ids_, skill, false);
    if (id < 0) continue;
    ++q.required_count[id];
    q.required_bits |= 1ull << (id & 63);
  }
  q.required_skills = static_cast<float>(offer.required_skills.size());
  if (q.occupation >= 0) q.subgroups.push_back(q.occupation / 10);
  for (const std::string& code : offer.required_qualification_codes) {
    q.qualifications.push_back(ParseOccupationCode(code));
    if (q.qualifications.back() >= 0) {
      q.subgroups.push_back(q.qualifications.back() / 10);
    }
  }
  for (int level = 0; level < 8; ++level) {
    q.language_by_level[level] =
        EligibilityOf(LanguageOutcome(static_cast<type::v1::CefrLevel>(level),
                                      false, offer.required_language_level));
  }
  q.language_withheld = EligibilityOf(LanguageOutcome(
      type::v1::CEFR_LEVEL_UNSPECIFIED, true, offer.required_language_level));
  for (int p = 0; p < 4; ++p) {
    q.permission_by_value[p] = EligibilityOf(
        WorkPermissionOutcome(static_cast<type::v1::WorkPermission>(p),
                              std::nullopt, false, options.today));
  }
  q.permission_withheld = EligibilityOf(WorkPermissionOutcome(
      type::v1::WORK_PERMISSION_PERMITTED, std::nullopt, true, options.today));
  q.permission_expired = EligibilityOf(
      WorkPermissionOutcome(type::v1::WORK_PERMISSION_PERMITTED,
                            options.today - 1, false, options.today));
  q.similarity.assign(occupation_codes_.size(), kNotComputed);
  q.hours_value.assign(hours_patterns_.size(), kNotComputed);
  q.km_by_centre.assign(centres_.size(), kNotComputed);
  return q;
}

v1::Eligibility MatchIndex::CandidateEligibility(
    const OfferQuery& q, const CompactCandidate& c,
    const RankOptions& options) const {
  const bool residence_withheld =
      c.residence_withheld || !options.see_residence;
  const v1::Eligibility permission =
      residence_withheld ? q.permission_withheld
      : c.permission_valid_until && *c.permission_valid_until < options.today
          ? q.permission_expired
      : c.permission >= 0 && c.permission < 4
          ? q.permission_by_value[c.permission]
          : q.permission_by_value[0];
  v1::Eligibility eligibility =
      Worse(permission, c.language_withheld || !options.see_language
                            ? q.language_withheld
                            : q.language_by_level[c.level & 7]);
  if (q.offer->recognition_required) {
    std::optional<v1::RecognitionState> best;
    for (const QualificationEntry* e =
             candidate_qualifications_.begin(c.qualifications);
         e != candidate_qualifications_.end(c.qualifications); ++e) {
      if (std::find(q.subgroups.begin(), q.subgroups.end(), e->subgroup) !=
              q.subgroups.end() &&
          (!best || RecognitionRank(e->recognition) > RecognitionRank(*best))) {
        best = e->recognition;
      }
    }
    eligibility = Worse(eligibility, EligibilityOf(RecognitionOutcome(best)));
  }
  return eligibility;
}

float MatchIndex::CandidateOccupationValue(OfferQuery& q,
                                           const CompactCandidate& c) const {
  float value = 0;
  for (const OccupationEntry* e = candidate_occupations_.begin(c.occupations);
       e != candidate_occupations_.end(c.occupations); ++e) {
    float& sim = q.similarity[e->occupation_id];
    if (std::isnan(sim)) {
      sim = OccupationSimilarity(CommonOccupationDigits(q.occupation, e->code));
    }
    value = std::max(value, sim * e->weight);
  }
  return value;
}

float MatchIndex::CandidatePlaceValue(OfferQuery& q,
                                      const CompactCandidate& c) const {
  if (c.places.count == 0) return kNeutralValue;
  float best = 0;
  for (const PlaceEntry* p = candidate_places_.begin(c.places);
       p != candidate_places_.end(c.places); ++p) {
    const PlaceEntry& place = *p;
    float value = 0;
    if (place.municipality != kNoId) {
      value = place.municipality == q.municipality ? 1.0f : 0.0f;
    } else if (place.centre >= 0 && q.offer->place_centre) {
      float& km = q.km_by_centre[place.centre];
      if (std::isnan(km)) {
        km = static_cast<float>(
            geo::DistanceKm(centres_[place.centre], *q.offer->place_centre));
      }
      value = PlaceValueAtDistance(km, place.max_km);
    } else if (place.postal >= 0 && place.postal == q.postal) {
      value = PlaceValueAtDistance(0.0f, place.max_km);
    }
    best = std::max(best, value);
  }
  return best;
}

float MatchIndex::CandidateSkillsValue(const OfferQuery& q,
                                       const CompactCandidate& c) const {
  if (q.offer->required_skills.empty()) return 1.0f;
  if ((c.skill_bits & q.required_bits) == 0) return 0.0f;
  float credit = 0;
  for (const SkillEntry* s = candidate_skills_.begin(c.skills);
       s != candidate_skills_.end(c.skills); ++s) {
    credit += static_cast<float>(q.required_count[s->id]) * s->credit;
  }
  return credit / q.required_skills;
}

float MatchIndex::CandidateQualificationsValue(
    const OfferQuery& q, const CompactCandidate& c) const {
  if (q.qualifications.empty()) return 1.0f;
  float credit = 0;
  for (int32_t required : q.qualifications) {
    float best = 0;
    if (required >= 0) {
      for (const QualificationEntry* e =
               candidate_qualifications_.begin(c.qualifications);
           e != candidate_qualifications_.end(c.qualifications); ++e) {
        if (e->subgroup != required / 10) continue;
        best =
            std::max(best, QualificationCredit(e->recognition,
                                               RequirementLevel(e->code) >=
                                                   RequirementLevel(required)));
      }
    }
    credit += best;
  }
  return credit / static_cast<float>(q.qualifications.size());
}

std::vector<RankedCandidate> MatchIndex::RankCandidates(
    const OfferFacts& offer, const RankOptions& options,
    const std::function<bool(const CandidateFacts&)>& visible) const {
  if (options.limit == 0) return {};
  absl::ReaderMutexLock lock(&mu_);
  OfferQuery q = PrepareOfferQuery(offer, options);
  auto top =
      MakeTopK(options.limit, [this](uint32_t slot) -> const std::string& {
        return candidate_facts_[slot].person_id;
      });
  const size_t n = compact_candidates_.size();
  for (size_t slot = 0; slot < n; ++slot) {
    const CompactCandidate& c = compact_candidates_[slot];
    if (c.kinds_mask != 0 && (c.kinds_mask & q.kind_bit) == 0) continue;
    const v1::Eligibility eligibility = CandidateEligibility(q, c, options);
    const int32_t tie_day = c.available_from.value_or(0);
    if (eligibility == v1::ELIGIBILITY_EXCLUDED) {
      if (!options.include_excluded) continue;
      const uint64_t key = RankKey(eligibility, 0.0f, tie_day);
      if (top.Admits(key) && (!visible || visible(candidate_facts_[slot]))) {
        top.Add(
            {key, static_cast<uint32_t>(slot), eligibility, 0.0f, c.id_prefix});
      }
      continue;
    }

    // The occupation, hours and availability first; then, unless even a
    // full place, skills and qualifications could not make the result,
    // the rest.
    FactorValues v;
    v.occupation = CandidateOccupationValue(q, c);
    float& hours = q.hours_value[c.hours_id];
    if (std::isnan(hours)) hours = HoursValue(offer.hours, c.hours);
    v.hours = hours;
    v.availability = AvailabilityValue(offer.start_day, c.available_from);
    v.place = 1.0f;
    v.skills = 1.0f;
    v.qualifications = 1.0f;
    if (!top.Admits(RankKey(eligibility, WeightedScore(v), tie_day))) {
      continue;
    }
    v.place = CandidatePlaceValue(q, c);
    v.skills = CandidateSkillsValue(q, c);
    v.qualifications = CandidateQualificationsValue(q, c);
    const float score = ScoreOf(eligibility, v);
    const uint64_t key = RankKey(eligibility, score, tie_day);
    if (top.Admits(key) && (!visible || visible(candidate_facts_[slot]))) {
      top.Add(
          {key, static_cast<uint32_t>(slot), eligibility, score, c.id_prefix});
    }
  }

  std::vector<RankedCandidate> out;
  for (const Ranked& r : std::move(top).Sorted()) {
    out.push_back({candidate_facts_[r.slot].person_id, r.eligibility, r.score});
  }
  return out;
}

std::optional<OfferFacts> MatchIndex::GetOffer(
    const std::string& offer_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = offer_slots_.find(offer_id);
  if (it == offer_slots_.end()) return std::nullopt;
  return offer_facts_[it->second];
}

std::optional<CandidateFacts> MatchIndex::GetCandidate(
    const std::string& person_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = candidate_slots_.find(person_id);
  if (it == candidate_slots_.end()) return std::nullopt;
  return candidate_facts_[it->second];
}

size_t MatchIndex::offer_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return compact_offers_.size();
}

size_t MatchIndex::candidate_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return compact_candidates_.size();
}

}  // namespace lotse::placement
