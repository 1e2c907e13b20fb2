// MatchOffersForCandidate, MatchCandidatesForOffer and the match index's
// catch-up (see placement_service.h, "Matching").
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/paging.h"
#include "common/server/log.h"
#include "services/placement/domain/facts.h"
#include "services/placement/domain/match_index.h"
#include "services/placement/domain/matching.h"
#include "services/placement/service/internal.h"
#include "services/placement/service/match_state.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;
using ::lotse::type::v1::DATA_CATEGORY_EMPLOYMENT;
using ::lotse::type::v1::DATA_CATEGORY_LANGUAGE;
using ::lotse::type::v1::DATA_CATEGORY_RESIDENCE_STATUS;

class MatchState {
 public:
  explicit MatchState(const PlacementOptions& options)
      : cache(static_cast<size_t>(std::max(1, options.max_cached_rankings))) {}

  MatchIndex index;
  absl::Mutex catch_up_mu;
  int64_t seq ABSL_GUARDED_BY(catch_up_mu) = 0;
  RankingCache cache;
};

std::shared_ptr<MatchState> MakeMatchState(const PlacementOptions& options) {
  return std::make_shared<MatchState>(options);
}

PlacementServiceImpl::~PlacementServiceImpl() = default;

// --- RankingCache ---

void RankingCache::Put(const std::string& id,
                       std::shared_ptr<const Ranking> ranking) {
  absl::MutexLock lock(&mu_);
  by_id_[id] = std::move(ranking);
  order_.push_back(id);
  while (order_.size() > capacity_) {
    by_id_.erase(order_.front());
    order_.pop_front();
  }
}

std::shared_ptr<const Ranking> RankingCache::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

void RankingCache::DropOlderThan(absl::Time cutoff) {
  absl::MutexLock lock(&mu_);
  while (!order_.empty()) {
    auto it = by_id_.find(order_.front());
    if (it != by_id_.end() && it->second->created >= cutoff) break;
    if (it != by_id_.end()) by_id_.erase(it);
    order_.pop_front();
  }
}

namespace {

// The facts matching uses for a stored profile.
CandidateFacts FactsOf(const CandidateRow& row,
                       const std::optional<PersonFacts>& facts) {
  v1::CandidateProfile profile;
  CandidateOut(row, facts, &profile);
  type::v1::WorkPermission permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
  std::optional<int32_t> until;
  if (facts) {
    permission = facts->work_permission;
    if (facts->work_permission_valid_until) {
      until = static_cast<int32_t>(*facts->work_permission_valid_until);
    }
  }
  return CandidateFactsFromProfile(profile, permission, until);
}

// What a caller's legal domain may read by the default rules (DESIGN.md
// section 4). Rankings over many candidates use these (uniformly, without
// per-candidate consents); every returned candidate is then checked with
// identity and shown with only what the decision allows.
bool DefaultSeesResidence(const LocalAgency& me) {
  return DomainIs(
      me, {"AUSLAENDERBEHOERDE", "BAMF", "JOBCENTER", "ARBEITSAGENTUR"});
}
bool DefaultSeesLanguage(const LocalAgency& me) {
  return DomainIs(me, {"BAMF", "AUSLAENDERBEHOERDE", "JOBCENTER"});
}

int MatchPageSize(int32_t size, FieldViolations* v) {
  if (size < 0) {
    v->Add("page_size", "must not be negative");
    return 0;
  }
  if (size == 0) return 20;
  return std::min(size, 100);
}

absl::Status Expired() {
  return ErrorWithReason(absl::StatusCode::kInvalidArgument,
                         "PAGE_TOKEN_EXPIRED",
                         "the ranking of this page token has expired; start "
                         "again without a page token");
}

// Page tokens carry "<ranking id>:<offset>" (integrity-checked, bound to
// the request's filter fields).
struct TokenPosition {
  std::string ranking_id;
  size_t offset = 0;
};

std::optional<TokenPosition> DecodePosition(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  TokenPosition p;
  if (parts.size() != 2 || parts[0].empty() ||
      !absl::SimpleAtoi(parts[1], &p.offset)) {
    return std::nullopt;
  }
  p.ranking_id = std::string(parts[0]);
  return p;
}

// The ranking a token continues, or PAGE_TOKEN_EXPIRED.
absl::StatusOr<std::shared_ptr<const Ranking>> Continue(
    PlacementServiceImpl& service, const LocalAgency& me,
    const std::string& fingerprint, const TokenPosition& position) {
  service.match().cache.DropOlderThan(service.Now() -
                                      service.options().match_ttl);
  std::shared_ptr<const Ranking> ranking =
      service.match().cache.Get(position.ranking_id);
  if (ranking == nullptr || ranking->owner != me.id ||
      ranking->fingerprint != fingerprint ||
      ranking->created < service.Now() - service.options().match_ttl) {
    return Expired();
  }
  return ranking;
}

absl::StatusOr<std::string> Store(PlacementServiceImpl& service,
                                  Ranking ranking) {
  absl::StatusOr<std::string> id = api::NewId();
  if (!id.ok()) return id.status();
  service.match().cache.Put(
      *id, std::make_shared<const Ranking>(std::move(ranking)));
  return *id;
}

void AddWithheldFacts(bool see_residence, bool see_language,
                      const AccessView& access,
                      v1::MatchOffersForCandidateResponse* out) {
  if (!see_residence) {
    const auto reason = access.Reason(DATA_CATEGORY_RESIDENCE_STATUS);
    for (const char* f :
         {"facts.work_permission", "facts.work_permission_valid_until"}) {
      *out->add_withheld() =
          MakeWithheld(f, DATA_CATEGORY_RESIDENCE_STATUS, reason);
    }
  }
  if (!see_language) {
    const auto reason = access.Reason(DATA_CATEGORY_LANGUAGE);
    for (const char* f :
         {"facts.language_level", "facts.language_level_source"}) {
      *out->add_withheld() = MakeWithheld(f, DATA_CATEGORY_LANGUAGE, reason);
    }
  }
}

}  // namespace

absl::Status PlacementServiceImpl::CatchUpIndex() {
  MatchState& m = *match_;
  absl::MutexLock lock(&m.catch_up_mu);
  IndexChanges changes;
  absl::Status status = storage::RunInTransaction(
      db(),
      [&](Transaction& tx) -> absl::Status {
        absl::StatusOr<IndexChanges> c = ChangedSince(tx, m.seq);
        if (!c.ok()) return c.status();
        changes = *std::move(c);
        return absl::OkStatus();
      },
      storage::TxMode::kReadOnly);
  if (!status.ok()) return status;
  for (const OfferRow& row : changes.offers) {
    if (row.offer.state() != v1::OFFER_STATE_OPEN) {
      m.index.RemoveOffer(row.id);
      continue;
    }
    v1::Offer named;
    OfferOut(row, &named);
    m.index.UpsertOffer(OfferFactsFromProto(named));
  }
  for (const auto& [row, facts] : changes.candidates) {
    if (!row.merged_into.empty() ||
        row.profile.state() != v1::CANDIDATE_STATE_ACTIVE) {
      m.index.RemoveCandidate(row.person_id);
      continue;
    }
    m.index.UpsertCandidate(FactsOf(row, facts));
  }
  m.seq = std::max(m.seq, changes.seq);
  return absl::OkStatus();
}

namespace {

// Keeps `fresh` for the pages that follow and points `position` at its
// start.
absl::StatusOr<std::shared_ptr<const Ranking>> KeepRanking(
    PlacementServiceImpl& service, Ranking fresh,
    std::optional<TokenPosition>* position) {
  auto ranking = std::make_shared<const Ranking>(fresh);
  absl::StatusOr<std::string> stored = Store(service, std::move(fresh));
  if (!stored.ok()) return stored.status();
  *position = TokenPosition{*stored, 0};
  return ranking;
}

// The offers at ranking positions [offset, end); an offer withdrawn since
// the ranking is left out of its page.
absl::Status ReadRankedOffers(Transaction& tx, const Ranking& ranking,
                              size_t offset, size_t end,
                              std::vector<OfferRow>* offers) {
  offers->clear();
  for (size_t i = offset; i < end; ++i) {
    absl::StatusOr<std::optional<OfferRow>> row =
        ReadOffer(tx, ranking.entries[i].id);
    if (!row.ok()) return row.status();
    if (row->has_value()) offers->push_back(**row);
  }
  return absl::OkStatus();
}

// The facts the offers were matched on, as far as the caller may see
// them, and when they were last changed.
void FillMatchedFacts(const CandidateFacts& facts,
                      const ResolvedCandidate& found, bool see_residence,
                      bool see_language, v1::CandidateFacts* f) {
  if (see_residence) {
    f->set_work_permission(facts.work_permission);
    if (facts.work_permission_valid_until_day) {
      *f->mutable_work_permission_valid_until() =
          DateFromDay(*facts.work_permission_valid_until_day);
    }
  }
  if (see_language) {
    const LanguageLevel level = facts.EffectiveLanguageLevel();
    f->set_language_level(level.level);
    f->set_language_level_source(level.source);
  }
  int64_t facts_us =
      ToMicros(api::FromTimestamp(found.row->profile.update_time()));
  if (found.facts) facts_us = std::max(facts_us, found.facts->update_us);
  *f->mutable_facts_time() = api::ToTimestamp(absl::FromUnixMicros(facts_us));
}

// The request without its paging fields: a page token is bound to it, and a
// ranking is kept for it.
template <typename Request>
std::string Fingerprint(const Request& request) {
  Request fp = request;
  fp.clear_page_size();
  fp.clear_page_token();
  return fp.SerializeAsString();
}

// Where the request's page token continues a ranking; none without a page
// token (or with a bad one, which is added to `v`).
template <typename Request>
std::optional<TokenPosition> PositionOf(const Request& request,
                                        const std::string& fingerprint,
                                        FieldViolations* v) {
  std::optional<TokenPosition> position;
  if (!request.page_token().empty()) {
    const std::string text = api::DecodePageToken(request.page_token(),
                                                  fingerprint, "page_token", v);
    if (!text.empty()) {
      position = DecodePosition(text);
      if (!position) v->Add("page_token", "is not a valid page token");
    }
  }
  return position;
}

// The ranking a page reads and where in it the page starts: the one the
// page token continues, or (without a token) a fresh one from `rank`, kept
// for the pages that follow with `position` pointing at its start.
absl::Status RankingForPage(PlacementServiceImpl& service,
                            const LocalAgency& me,
                            const std::string& fingerprint, absl::Time now,
                            absl::FunctionRef<std::vector<RankedEntry>()> rank,
                            std::optional<TokenPosition>* position,
                            std::shared_ptr<const Ranking>* ranking,
                            size_t* offset) {
  if (*position) {
    absl::StatusOr<std::shared_ptr<const Ranking>> r =
        Continue(service, me, fingerprint, **position);
    if (!r.ok()) return r.status();
    *ranking = *r;
    *offset = (*position)->offset;
    return absl::OkStatus();
  }
  Ranking fresh;
  fresh.owner = me.id;
  fresh.fingerprint = fingerprint;
  fresh.created = now;
  fresh.entries = rank();
  absl::StatusOr<std::shared_ptr<const Ranking>> kept =
      KeepRanking(service, std::move(fresh), position);
  if (!kept.ok()) return kept.status();
  *ranking = *std::move(kept);
  return absl::OkStatus();
}

// The open offers ranked for a candidate with `facts` (as far as the
// caller may see them), best first.
std::vector<RankedEntry> RankOffersFor(
    const MatchIndex& index, const v1::MatchOffersForCandidateRequest& request,
    const CandidateFacts& facts, int32_t today, bool see_residence,
    bool see_language) {
  RankOptions options;
  if (request.kind() != v1::OFFER_KIND_UNSPECIFIED) {
    options.kinds = {request.kind()};
  }
  options.include_excluded = request.include_excluded();
  options.today = today;
  options.see_residence = see_residence;
  options.see_language = see_language;
  std::vector<RankedEntry> entries;
  for (const RankedOffer& r : index.RankOffers(facts, options)) {
    entries.push_back({r.offer_id, r.eligibility, r.score});
  }
  return entries;
}

// Adds the offers at ranking positions [offset, offset + size) to the page,
// each explained against `facts`, and the token of the next page if the
// ranking goes on.
absl::Status AddOfferPage(AuditedCall& call, const Ranking& ranking,
                          const std::string& ranking_id, size_t offset,
                          int size, const CandidateFacts& facts, int32_t today,
                          const std::string& fingerprint,
                          v1::MatchOffersForCandidateResponse* out) {
  const size_t end =
      std::min(ranking.entries.size(), offset + static_cast<size_t>(size));
  std::vector<OfferRow> offers;
  absl::Status status =
      call.Read([&](Transaction& tx, const LocalAgency&) -> absl::Status {
        return ReadRankedOffers(tx, ranking, offset, end, &offers);
      });
  for (const OfferRow& row : offers) {
    v1::OfferMatch* match = out->add_matches();
    OfferOut(row, match->mutable_offer());
    FillOfferMatch(Explain(facts, OfferFactsFromProto(match->offer()), today),
                   match);
  }
  if (status.ok() && end < ranking.entries.size()) {
    out->set_next_page_token(
        api::EncodePageToken(fingerprint, absl::StrCat(ranking_id, ":", end)));
  }
  return status;
}

// The categories of the candidate's person a page of offers shows.
std::vector<std::string> CategoriesShown(bool see_residence,
                                         bool see_language) {
  std::vector<std::string> categories = {kEmployment};
  if (see_language) categories.push_back(kLanguage);
  if (see_residence) categories.push_back(kResidence);
  return categories;
}

}  // namespace

absl::Status PlacementServiceImpl::DoMatchOffersForCandidate(
    const Rc& rc, const v1::MatchOffersForCandidateRequest& request,
    v1::MatchOffersForCandidateResponse* out) {
  AuditedCall call(call_env(), rc, "MatchOffersForCandidate",
                   request.candidate());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.candidate(), kCandidatePattern, "candidate", &v);
  const int size = MatchPageSize(request.page_size(), &v);
  if (!v1::OfferKind_IsValid(request.kind())) {
    v.Add("kind", "must be an offer kind");
  }
  const std::string fingerprint = Fingerprint(request);
  std::optional<TokenPosition> position = PositionOf(request, fingerprint, &v);
  LocalAgency me;
  ResolvedCandidate found;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<ResolvedCandidate> r = ResolveCandidate(tx, id);
        if (!r.ok()) return r.status();
        if (!r->row) {
          return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
        }
        found = *std::move(r);
        return absl::OkStatus();
      });
  absl::StatusOr<AccessView> access;
  if (status.ok()) {
    const std::string person = PersonName(found.person_id);
    call.set_person_target(person, "candidate", {kEmployment});
    access =
        AskAccess(*this, call, person,
                  {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE,
                   DATA_CATEGORY_RESIDENCE_STATUS},
                  /*serves=*/found.row->profile.creating_agency() == me.name());
    status = access.ok() ? RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT)
                         : access.status();
  }
  if (status.ok() && found.row->profile.state() != v1::CANDIDATE_STATE_ACTIVE) {
    status = Precondition("CANDIDATE_INACTIVE",
                          "only active candidates are matched");
  }
  if (status.ok()) status = CatchUpIndex();
  const bool see_residence =
      access.ok() && access->Allowed(DATA_CATEGORY_RESIDENCE_STATUS);
  const bool see_language =
      access.ok() && access->Allowed(DATA_CATEGORY_LANGUAGE);
  const int32_t today = static_cast<int32_t>(DayIndex(now));
  CandidateFacts facts;
  std::shared_ptr<const Ranking> ranking;
  size_t offset = 0;
  if (status.ok()) {
    facts = FactsOf(*found.row, found.facts)
                .WithheldFor(see_residence, see_language);
    status = RankingForPage(
        *this, me, fingerprint, now,
        [&] {
          return RankOffersFor(match().index, request, facts, today,
                               see_residence, see_language);
        },
        &position, &ranking, &offset);
  }
  if (status.ok()) {
    status = AddOfferPage(call, *ranking, position->ranking_id, offset, size,
                          facts, today, fingerprint, out);
  }
  if (status.ok()) {
    FillMatchedFacts(facts, found, see_residence, see_language,
                     out->mutable_facts());
    AddWithheldFacts(see_residence, see_language, *access, out);
    call.Touch(PersonName(found.person_id), "candidate",
               CategoriesShown(see_residence, see_language));
  } else {
    out->Clear();
  }
  return call.Finish(status);
}

namespace {

// The candidates at ranking positions [next, next + want) that are still
// active and still who the ranking named, with their positions.
absl::Status ReadRankedCandidates(Transaction& tx, const Ranking& ranking,
                                  size_t next, size_t want,
                                  std::vector<ResolvedCandidate>* batch,
                                  std::vector<size_t>* positions) {
  batch->clear();
  positions->clear();
  for (size_t i = next; i < next + want; ++i) {
    const std::string& person_id = ranking.entries[i].id;
    absl::StatusOr<ResolvedCandidate> r = ResolveCandidate(tx, person_id);
    if (!r.ok()) return r.status();
    if (!r->row || r->person_id != person_id ||
        r->row->profile.state() != v1::CANDIDATE_STATE_ACTIVE) {
      continue;  // changed since the ranking
    }
    batch->push_back(*std::move(r));
    positions->push_back(i);
  }
  return absl::OkStatus();
}

// Adds `c` to the page when the caller may read its EMPLOYMENT data (and,
// unless `include_excluded`, it is not EXCLUDED), explained with what
// `access` and the ranking's defaults let the caller see; the rest is
// withheld and marked. Returns the categories of the person the page
// shows, empty when `c` was left out.
std::vector<std::string> AddCandidateMatch(
    const ResolvedCandidate& c, const AccessView& access, bool rank_residence,
    bool rank_language, const OfferFacts& offer_facts, int32_t today,
    bool include_excluded, v1::MatchCandidatesForOfferResponse* out) {
  if (!access.Allowed(DATA_CATEGORY_EMPLOYMENT)) return {};
  const bool see_residence =
      rank_residence && access.Allowed(DATA_CATEGORY_RESIDENCE_STATUS);
  const bool see_language =
      rank_language && access.Allowed(DATA_CATEGORY_LANGUAGE);
  const CandidateFacts facts =
      FactsOf(*c.row, c.facts).WithheldFor(see_residence, see_language);
  const MatchExplanation explanation = Explain(facts, offer_facts, today);
  if (!include_excluded &&
      explanation.eligibility == v1::ELIGIBILITY_EXCLUDED) {
    return {};
  }
  v1::CandidateMatch* match = out->add_matches();
  CandidateOut(*c.row, c.facts, match->mutable_candidate());
  FillCandidateMatch(explanation, match);
  std::vector<std::string> categories = {kEmployment};
  if (see_language) {
    categories.push_back(kLanguage);
  } else {
    WithholdLanguage("candidate",
                     access.Allowed(DATA_CATEGORY_LANGUAGE)
                         ? type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS
                         : access.Reason(DATA_CATEGORY_LANGUAGE),
                     match->mutable_candidate(), match->mutable_withheld());
  }
  if (see_residence) {
    categories.push_back(kResidence);
  } else {
    *match->add_withheld() = MakeWithheld(
        "constraints.work_permission", DATA_CATEGORY_RESIDENCE_STATUS,
        access.Allowed(DATA_CATEGORY_RESIDENCE_STATUS)
            ? type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS
            : access.Reason(DATA_CATEGORY_RESIDENCE_STATUS));
  }
  return categories;
}

// The offer to match candidates for; only an open offer is matched.
absl::Status ReadOpenOffer(Transaction& tx, const std::string& id,
                           OfferRow* offer) {
  absl::StatusOr<std::optional<OfferRow>> row = ReadOffer(tx, id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) {
    return NotFound("OFFER_NOT_FOUND", "no such offer");
  }
  *offer = **row;
  if (offer->offer.state() != v1::OFFER_STATE_OPEN) {
    return Precondition("OFFER_NOT_OPEN", "the offer is not open");
  }
  return absl::OkStatus();
}

// The active candidates ranked for an offer with `offer_facts`, best first,
// on what the caller's domain may see by default.
std::vector<RankedEntry> RankCandidatesFor(
    const MatchIndex& index, const v1::MatchCandidatesForOfferRequest& request,
    const OfferFacts& offer_facts, int32_t today, bool rank_residence,
    bool rank_language) {
  RankOptions options;
  options.include_excluded = request.include_excluded();
  options.today = today;
  options.see_residence = rank_residence;
  options.see_language = rank_language;
  std::vector<RankedEntry> entries;
  for (const RankedCandidate& r :
       index.RankCandidates(offer_facts, options, nullptr)) {
    entries.push_back({r.person_id, r.eligibility, r.score});
  }
  return entries;
}

// Walks the ranking from `*next`: each candidate is checked with identity;
// `add` puts on the page those the caller may see (returning the categories
// shown, empty when left out). Candidates are taken a batch at a time: one
// read transaction and one round of identity checks (all in flight
// together) per batch, sized to what the page still needs. Leaves `*next`
// at the first candidate the page did not consume.
absl::Status WalkCandidates(
    PlacementServiceImpl& service, AuditedCall& call,
    const server::RequestContext& rc, const LocalAgency& me,
    const Ranking& ranking, int size,
    absl::FunctionRef<std::vector<std::string>(const ResolvedCandidate&,
                                               const AccessView&)>
        add,
    size_t* next, v1::MatchCandidatesForOfferResponse* out) {
  const int max_checks = service.options().max_access_checks;
  int checks = 0;
  absl::Status status;
  while (status.ok() && *next < ranking.entries.size() &&
         out->matches_size() < size && checks < max_checks) {
    const size_t want =
        std::min<size_t>({static_cast<size_t>(size - out->matches_size()) + 2,
                          static_cast<size_t>(max_checks - checks),
                          ranking.entries.size() - *next});
    std::vector<ResolvedCandidate> batch;
    std::vector<size_t> positions;
    status = call.Read([&](Transaction& tx,
                           const LocalAgency&) -> absl::Status {
      return ReadRankedCandidates(tx, ranking, *next, want, &batch, &positions);
    });
    if (!status.ok()) break;
    std::vector<std::string> persons;
    std::vector<bool> serves;
    for (const ResolvedCandidate& c : batch) {
      persons.push_back(PersonName(c.person_id));
      serves.push_back(c.row->profile.creating_agency() == me.name());
    }
    checks += static_cast<int>(batch.size());
    std::vector<absl::StatusOr<AccessView>> answers =
        AskAccessBatch(service, call, persons, serves,
                       {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE,
                        DATA_CATEGORY_RESIDENCE_STATUS});
    size_t consumed = *next + want;
    for (size_t k = 0; k < batch.size(); ++k) {
      if (out->matches_size() >= size) {
        // The page is full: the rest of the batch starts the next page.
        consumed = positions[k];
        break;
      }
      absl::StatusOr<AccessView>& access = answers[k];
      if (!access.ok()) {
        if (access.status().code() == absl::StatusCode::kNotFound) continue;
        status = access.status();
        break;
      }
      const std::vector<std::string> categories = add(batch[k], *access);
      if (!categories.empty()) call.Touch(persons[k], "candidate", categories);
    }
    *next = consumed;
  }
  return status;
}

}  // namespace

absl::Status PlacementServiceImpl::DoMatchCandidatesForOffer(
    const Rc& rc, const v1::MatchCandidatesForOfferRequest& request,
    v1::MatchCandidatesForOfferResponse* out) {
  AuditedCall call(call_env(), rc, "MatchCandidatesForOffer", request.offer());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.offer(), kOfferPattern, "offer", &v);
  const int size = MatchPageSize(request.page_size(), &v);
  const std::string fingerprint = Fingerprint(request);
  std::optional<TokenPosition> position = PositionOf(request, fingerprint, &v);
  LocalAgency me;
  OfferRow offer;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (!v.empty()) return v.ToStatus();
        return ReadOpenOffer(tx, id, &offer);
      });
  if (status.ok()) status = CatchUpIndex();
  const int32_t today = static_cast<int32_t>(DayIndex(now));
  const bool rank_residence = DefaultSeesResidence(me);
  const bool rank_language = DefaultSeesLanguage(me);
  v1::Offer named;
  OfferOut(offer, &named);
  const OfferFacts offer_facts = OfferFactsFromProto(named);
  std::shared_ptr<const Ranking> ranking;
  size_t offset = 0;
  if (status.ok()) {
    status = RankingForPage(
        *this, me, fingerprint, now,
        [&] {
          return RankCandidatesFor(match().index, request, offer_facts, today,
                                   rank_residence, rank_language);
        },
        &position, &ranking, &offset);
  }
  size_t next = offset;
  if (status.ok()) {
    status = WalkCandidates(
        *this, call, rc, me, *ranking, size,
        [&](const ResolvedCandidate& c, const AccessView& access) {
          return AddCandidateMatch(c, access, rank_residence, rank_language,
                                   offer_facts, today,
                                   request.include_excluded(), out);
        },
        &next, out);
  }
  if (status.ok() && next < ranking->entries.size()) {
    out->set_next_page_token(api::EncodePageToken(
        fingerprint, absl::StrCat(position->ranking_id, ":", next)));
  }
  if (!status.ok()) out->Clear();
  return call.Finish(status);
}

}  // namespace lotse::placement
