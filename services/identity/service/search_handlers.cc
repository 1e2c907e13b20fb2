// The person search RPCs of IdentityServiceImpl: SearchPersons and
// FindDuplicates. Both disclose candidates by the same rule: a candidate
// the caller may read comes with its record (without contact) and the
// evidence of the match; any other only as a bare match (match_only), found
// by names alone, so that an agency without standing learns at most that a
// match exists (docs/trust-model.md). Each disclosed person gets its own
// audit record, a bare match with reason MATCH_ONLY.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/errors/status.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

// Search and duplicate listing bounds from the contract.
constexpr int kSearchDefaultPageSize = 20;
constexpr int kSearchMaxPageSize = 50;
constexpr int kDuplicatesDefaultPageSize = 10;
constexpr int kDuplicatesMaxPageSize = 50;
// A free-text query carries names only, so its scores lack the birth-date
// evidence a full record adds; the default sits below the duplicate
// threshold to still show name-only matches.
constexpr double kSearchDefaultMinScore = 0.35;

// Page sizes of search and duplicate listing (their own defaults and caps).
int SmallPageSize(int32_t page_size, int default_size, int max_size,
                  FieldViolations* violations) {
  if (page_size < 0) {
    violations->Add("page_size", "must not be negative");
    return 0;
  }
  if (page_size == 0) return default_size;
  return std::min<int>(page_size, max_size);
}

double MinScore(double requested, double default_score,
                FieldViolations* violations) {
  if (std::isnan(requested) || requested < 0 || requested > 1) {
    violations->Add("min_score", "must be between 0.0 and 1.0");
    return default_score;
  }
  return requested == 0 ? default_score : requested;
}

// A person as shown in search and duplicate results: no contact data.
v1::Person WithoutContact(v1::Person person) {
  person.clear_contact();
  return person;
}

struct ScoredCandidate {
  v1::Person person;
  MatchResult match;
};

// The contract's level of a score.
v1::DuplicateLevel LevelOf(double score) {
  switch (StrengthOfScore(score)) {
    case DuplicateStrength::kStrong:
      return v1::DUPLICATE_LEVEL_STRONG;
    case DuplicateStrength::kLikely:
      return v1::DUPLICATE_LEVEL_LIKELY;
    case DuplicateStrength::kPossible:
      return v1::DUPLICATE_LEVEL_POSSIBLE;
    case DuplicateStrength::kNone:
      break;
  }
  return v1::DUPLICATE_LEVEL_UNSPECIFIED;
}

// The lowest score of `level`; 0 for no level.
double LowestScoreOf(v1::DuplicateLevel level) {
  switch (level) {
    case v1::DUPLICATE_LEVEL_STRONG:
      return kStrongDuplicateScore;
    case v1::DUPLICATE_LEVEL_LIKELY:
      return kLikelyDuplicateScore;
    case v1::DUPLICATE_LEVEL_POSSIBLE:
      return kPossibleDuplicateScore;
    default:
      return 0;
  }
}

// The deployment's thresholds, as every response that lists candidates
// carries them.
void SetThresholds(v1::DuplicateThresholds* out) {
  out->set_possible(kPossibleDuplicateScore);
  out->set_likely(kLikelyDuplicateScore);
  out->set_strong(kStrongDuplicateScore);
}

void ToProto(const ScoredCandidate& scored, v1::DuplicateCandidate* out) {
  *out->mutable_person() = WithoutContact(scored.person);
  out->set_score(scored.match.score);
  const v1::DuplicateLevel level = LevelOf(scored.match.score);
  out->set_level(level);
  out->set_strong(level == v1::DUPLICATE_LEVEL_STRONG);
  for (const MatchReason& reason : scored.match.reasons) {
    v1::MatchReason* r = out->add_reasons();
    // The domain enums are numbered like duplicates.proto.
    r->set_factor(static_cast<v1::MatchFactor>(reason.factor));
    r->set_method(static_cast<v1::MatchMethod>(reason.method));
    r->set_query_value(reason.query_value);
    r->set_candidate_value(reason.candidate_value);
    r->set_contribution(reason.contribution);
  }
}

// A candidate of a search or duplicate listing, as the caller may see it.
struct DisclosedCandidate {
  std::string id;
  // Whether the caller may read the candidate's core identity: then it gets
  // the record (without contact), the score and the reasons; else only the
  // match (match_only).
  bool readable = false;
  MatchResult match;  // the full comparison; shown only when readable
  double rank = 0;    // the score the listing is ordered and cut by
};

// The listing order: by rank, best first, then by id.
bool RanksBefore(const DisclosedCandidate& a, const DisclosedCandidate& b) {
  if (a.rank != b.rank) return a.rank > b.rank;
  return a.id < b.id;
}

// The names of `record` alone: what a match an agency may not read is
// decided on, so that a birth date in the query changes nothing about it.
MatchRecord NamesOnly(const MatchRecord& record) {
  MatchRecord names;
  names.names = record.names;
  return names;
}

// A search or duplicate query as the caller's disclosure needs it.
struct DisclosureQuery {
  PreparedRecord full;   // the whole query record
  PreparedRecord names;  // its names alone (the same when it has no more)
  bool names_only = false;
  // A rule lets the caller's domain read every person's core identity, so
  // no candidate needs its standing checked.
  bool reads_all = false;
};

// The candidates of a query: found by the full record's keys (the birth
// year narrows them), and, unless the caller reads everyone, also by the
// names' keys of every birth year. Only the latter may bring up a person
// the caller may not read, so that whether such a person comes up never
// depends on a birth date in the query.
struct CandidateSet {
  std::vector<std::string> ids;  // no repeats
  absl::flat_hash_set<std::string> by_names;
};

absl::StatusOr<DisclosureQuery> PrepareDisclosure(
    const DuplicateMatcher& matcher, const AccessPolicy& policy,
    const RequestContext& rc, const LocalAgency& caller,
    const MatchRecord& record, std::optional<PreparedRecord> prepared) {
  DisclosureQuery q;
  q.reads_all = DecideFromStanding(policy, SubjectOf(caller), "", Standing{},
                                   DataCategory::kCoreIdentity, rc.purpose)
                    .allowed;
  if (prepared.has_value()) {
    q.full = *std::move(prepared);
  } else {
    absl::StatusOr<PreparedRecord> full = matcher.Prepare(record);
    if (!full.ok()) return full.status();
    q.full = *std::move(full);
  }
  const BirthDate& date = record.birth_date;
  q.names_only = date.year == 0 && date.month == 0 && date.day == 0 &&
                 record.birth_place.empty() &&
                 record.nationality_codes.empty() &&
                 record.sex == RecordedSex::kUnspecified;
  if (q.names_only) {
    q.names = q.full;
  } else if (!q.reads_all) {
    absl::StatusOr<PreparedRecord> names = matcher.Prepare(NamesOnly(record));
    if (!names.ok()) return names.status();
    q.names = *std::move(names);
  }
  return q;
}

// How many persons the names' lookup brings up at most: a person the
// caller may not read is shown only as a bare match, and a handful of
// those says all there is to say ("someone of this name is registered").
constexpr CandidateLimits kNamesLookupLimits{/*per_key=*/50, /*total=*/20};

absl::StatusOr<CandidateSet> FindForDisclosure(
    const DisclosureQuery& query,
    const std::function<absl::StatusOr<Candidates>(
        const PreparedRecord&, const CandidateLimits&)>& lookup) {
  CandidateSet set;
  absl::StatusOr<Candidates> full = lookup(query.full, CandidateLimits{});
  if (!full.ok()) return full.status();
  set.ids = std::move(full->person_ids);
  if (query.reads_all) return set;
  if (query.names_only) {
    // The full record is the names: its lookup depends on nothing else.
    set.by_names.insert(set.ids.begin(), set.ids.end());
    return set;
  }
  absl::StatusOr<Candidates> names = lookup(query.names, kNamesLookupLimits);
  if (!names.ok()) return names.status();
  absl::flat_hash_set<std::string> seen(set.ids.begin(), set.ids.end());
  for (std::string& id : names->person_ids) {
    set.by_names.insert(id);
    if (seen.insert(id).second) set.ids.push_back(std::move(id));
  }
  return set;
}

// Scores the candidates for `caller`: one it may read by its full score,
// any other by its score on the names alone, and only if the names' lookup
// found it. Keeps those whose score reaches `min_score`, best first (ties
// by id, so that the order is the same on every call). The forms come through
// `cache` unless it is null (see ScoreCandidates).
//
// Whether the caller may read a candidate depends on its relations to the
// person, which are rows in the database; most candidates of a lookup
// score below `min_score` whichever way they are scored, so both scores
// are computed first, in memory, and the standings are read (in one batch)
// only for the candidates that could still be kept.
absl::StatusOr<std::vector<DisclosedCandidate>> ScoreForCaller(
    PersonStore& store, MatchFormCache* cache, const DuplicateMatcher& matcher,
    const AccessPolicy& policy, const RequestContext& rc,
    const LocalAgency& caller, const DisclosureQuery& query,
    const CandidateSet& candidates, double min_score) {
  absl::StatusOr<std::vector<MatchCandidate>> forms =
      cache != nullptr ? cache->Load(store, candidates.ids)
                       : store.LoadMatchForms(candidates.ids);
  if (!forms.ok()) return forms.status();
  struct Scored {
    DisclosedCandidate candidate;
    double names_rank = 0;  // only when found by the names' lookup
    bool by_names = false;
  };
  std::vector<Scored> open;
  std::vector<std::string> undecided;
  for (MatchCandidate& form : *forms) {
    Scored s;
    s.candidate.id = std::move(form.id);
    // Scores first; the reasons only for candidates that may be kept (a
    // tenth or so of those scored).
    const double score = matcher.Score(query.full, form.prepared);
    s.by_names =
        !query.reads_all && candidates.by_names.contains(s.candidate.id);
    if (s.by_names) {
      s.names_rank =
          query.names_only ? score : matcher.Score(query.names, form.prepared);
    }
    const bool could_keep =
        score >= min_score || (s.by_names && s.names_rank >= min_score);
    if (!could_keep) continue;
    s.candidate.match = matcher.Compare(query.full, form.prepared);
    if (!query.reads_all) undecided.push_back(s.candidate.id);
    open.push_back(std::move(s));
  }
  absl::flat_hash_map<std::string, Standing> standings;
  if (!undecided.empty()) {
    absl::StatusOr<absl::flat_hash_map<std::string, Standing>> loaded =
        LoadStandings(store.transaction(), undecided, caller.id);
    if (!loaded.ok()) return loaded.status();
    standings = *std::move(loaded);
  }
  const AccessSubject subject = SubjectOf(caller);
  const absl::Time now = absl::Now();
  std::vector<DisclosedCandidate> kept;
  for (Scored& s : open) {
    DisclosedCandidate& c = s.candidate;
    c.readable = query.reads_all;
    if (!c.readable) {
      auto it = standings.find(c.id);
      c.readable = it != standings.end() &&
                   DecideFromStanding(policy, subject, c.id, it->second,
                                      DataCategory::kCoreIdentity, rc.purpose,
                                      {}, false, now)
                       .allowed;
    }
    if (c.readable) {
      c.rank = c.match.score;
    } else if (s.by_names) {
      c.match = {};  // the evidence of a record the caller may not read
      c.rank = s.names_rank;
    } else {
      continue;  // found only by the birth year: not for this caller
    }
    if (c.rank >= min_score) kept.push_back(std::move(c));
  }
  std::sort(kept.begin(), kept.end(), RanksBefore);
  return kept;
}

// Adds kept[begin, end) to a response: the record and the evidence for a
// readable candidate, only its name for any other. Audits each disclosed
// person on `call`, a bare match with reason MATCH_ONLY.
absl::Status Disclose(PersonStore& store,
                      const std::vector<DisclosedCandidate>& kept, size_t begin,
                      size_t end, AuditedCall& call,
                      const std::function<v1::DuplicateCandidate*()>& add) {
  for (size_t i = begin; i < end && i < kept.size(); ++i) {
    const DisclosedCandidate& c = kept[i];
    v1::DuplicateCandidate* out = add();
    if (!c.readable) {
      out->mutable_person()->set_name(PersonResourceName(c.id));
      out->set_match_only(true);
      AuditPerson(call, PersonResourceName(c.id), "MATCH_ONLY");
      continue;
    }
    absl::StatusOr<PersonLookup> found = store.Get(c.id);
    if (!found.ok()) return found.status();
    ToProto({std::move(found->person), c.match}, out);
    AuditPerson(call, PersonResourceName(c.id));
  }
  return absl::OkStatus();
}

// A token continues only the same query: the request without its paging.
std::string SearchFingerprint(const v1::SearchPersonsRequest& request) {
  v1::SearchPersonsRequest filter = request;
  filter.clear_page_size();
  filter.clear_page_token();
  return api::RequestFingerprint(filter);
}

std::string DuplicatesFingerprint(const v1::FindDuplicatesRequest& request) {
  v1::FindDuplicatesRequest filter = request;
  filter.clear_page_size();
  filter.clear_page_token();
  return api::RequestFingerprint(filter);
}

// Where a page of duplicates continues: strictly after the last candidate
// of the previous page in the listing order (rank, then id), so that a
// person registered or changed between the pages cannot shift the others.
// The rank travels in the token only when the caller saw it as the score:
// a bare match is ranked by its names-only score, which the caller may
// not learn, so its cursor carries the id alone.
struct DuplicatesCursor {
  std::optional<double> rank;
  std::string id;
};

constexpr absl::string_view kHiddenRank = "-";

std::string EncodeCursor(const DisclosedCandidate& last) {
  if (!last.readable) return absl::StrCat(kHiddenRank, "/", last.id);
  // 17 significant digits read back as the same double.
  return absl::StrCat(absl::StrFormat("%.17g", last.rank), "/", last.id);
}

// The cursor in a decoded token (`key` empty: the first page, nullopt).
// Adds a violation for page_token when the key is not one EncodeCursor
// makes.
std::optional<DuplicatesCursor> DecodeCursor(absl::string_view key,
                                             FieldViolations* violations) {
  if (key.empty()) return std::nullopt;
  const size_t slash = key.find('/');
  DuplicatesCursor cursor;
  double rank = 0;
  const bool hidden =
      slash != absl::string_view::npos && key.substr(0, slash) == kHiddenRank;
  if (slash == absl::string_view::npos || slash + 1 == key.size() ||
      (!hidden && (!absl::SimpleAtod(key.substr(0, slash), &rank) ||
                   !std::isfinite(rank)))) {
    violations->Add("page_token", "is not valid");
    return std::nullopt;
  }
  if (!hidden) cursor.rank = rank;
  cursor.id = std::string(key.substr(slash + 1));
  return cursor;
}

bool IsAfter(const DisclosedCandidate& c, double rank, absl::string_view id) {
  if (c.rank != rank) return c.rank < rank;
  return c.id > id;
}

// Where the next page starts in `scored` (in listing order). A cursor
// without its rank continues after the candidate it names; if that one is
// no longer a candidate (merged, erased or changed between the pages) the
// listing starts again, since a repeat is better than a skipped person.
size_t PageStart(const std::vector<DisclosedCandidate>& scored,
                 const DuplicatesCursor& cursor) {
  double rank = 0;
  if (cursor.rank.has_value()) {
    rank = *cursor.rank;
  } else {
    auto it = std::find_if(
        scored.begin(), scored.end(),
        [&](const DisclosedCandidate& c) { return c.id == cursor.id; });
    if (it == scored.end()) return 0;
    rank = it->rank;
  }
  return std::partition_point(scored.begin(), scored.end(),
                              [&](const DisclosedCandidate& c) {
                                return !IsAfter(c, rank, cursor.id);
                              }) -
         scored.begin();
}

}  // namespace

absl::Status IdentityServiceImpl::DoSearchPersons(
    const RequestContext& rc, const v1::SearchPersonsRequest& request,
    v1::SearchPersonsResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "SearchPersons", "persons");
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency& caller)
                                      -> absl::Status {
    if (absl::Status s = RequireNotAdministration(caller); !s.ok()) return s;
    FieldViolations violations;
    api::ValidateText(request.name_query(), "name_query",
                      api::TextRules{2, 200, false}, &violations);
    if (request.has_birth_date()) {
      ValidateBirthDate(request.birth_date(), "birth_date", TodayInGermany(),
                        &violations);
    }
    const int page_size =
        SmallPageSize(request.page_size(), kSearchDefaultPageSize,
                      kSearchMaxPageSize, &violations);
    const double min_score =
        MinScore(request.min_score(), kSearchDefaultMinScore, &violations);
    const std::string fingerprint = SearchFingerprint(request);
    const std::string after = api::DecodePageToken(
        request.page_token(), fingerprint, "page_token", &violations);
    int offset = 0;
    if (!after.empty() && (!absl::SimpleAtoi(after, &offset) || offset < 0)) {
      violations.Add("page_token", "is not valid");
    }
    if (!violations.empty()) return violations.ToStatus();

    PersonStore store(tx, *matcher_);
    store.set_key_index(key_index_.get());
    absl::StatusOr<DisclosureQuery> query = PrepareDisclosure(
        *matcher_, *access_policy_, rc, caller,
        SearchRecord(request.name_query(), request.birth_date()), std::nullopt);
    if (!query.ok()) return query.status();
    absl::StatusOr<CandidateSet> candidates = FindForDisclosure(
        *query, [&](const PreparedRecord& r, const CandidateLimits& limits) {
          return store.Search(r, limits);
        });
    if (!candidates.ok()) return candidates.status();
    absl::StatusOr<std::vector<DisclosedCandidate>> scored =
        ScoreForCaller(store, match_forms_.get(), *matcher_, *access_policy_,
                       rc, caller, *query, *candidates, min_score);
    if (!scored.ok()) return scored.status();
    response->Clear();
    SetThresholds(response->mutable_thresholds());
    const int end =
        std::min<int>(static_cast<int>(scored->size()), offset + page_size);
    AuditPerson(call, "persons");
    if (absl::Status s = Disclose(store, *scored, offset, end, call,
                                  [&] { return response->add_results(); });
        !s.ok()) {
      return s;
    }
    if (end < static_cast<int>(scored->size())) {
      response->set_next_page_token(
          api::EncodePageToken(fingerprint, absl::StrCat(end)));
    }
    return absl::OkStatus();
  });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoFindDuplicates(
    const RequestContext& rc, const v1::FindDuplicatesRequest& request,
    v1::FindDuplicatesResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(
      call_env_, rc, "FindDuplicates",
      request.has_draft() ? "persons" : PersonTarget(request.person()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency& caller)
                                      -> absl::Status {
    if (absl::Status s = RequireNotAdministration(caller); !s.ok()) return s;
    FieldViolations violations;
    std::string subject_id;
    switch (request.subject_case()) {
      case v1::FindDuplicatesRequest::kPerson:
        subject_id = ParsePersonName(request.person(), "person", &violations);
        break;
      case v1::FindDuplicatesRequest::kDraft:
        ValidatePerson(request.draft(), "draft", TodayInGermany(), &violations);
        break;
      default:
        violations.Add("subject", "person or draft is required");
    }
    const int page_size =
        SmallPageSize(request.page_size(), kDuplicatesDefaultPageSize,
                      kDuplicatesMaxPageSize, &violations);
    double min_score =
        MinScore(request.min_score(), kPossibleDuplicateScore, &violations);
    if (!v1::DuplicateLevel_IsValid(request.min_level())) {
      violations.Add("min_level", "is not a known DuplicateLevel");
    } else {
      min_score = std::max(min_score, LowestScoreOf(request.min_level()));
    }
    const std::string fingerprint = DuplicatesFingerprint(request);
    const std::optional<DuplicatesCursor> cursor =
        DecodeCursor(api::DecodePageToken(request.page_token(), fingerprint,
                                          "page_token", &violations),
                     &violations);
    if (!violations.empty()) return violations.ToStatus();

    PersonStore store(tx, *matcher_);
    store.set_key_index(key_index_.get());
    MatchRecord record;
    std::optional<PreparedRecord> prepared;
    std::string main = "persons";
    if (!subject_id.empty()) {
      absl::StatusOr<PersonLookup> subject = store.Get(subject_id);
      if (!subject.ok()) return subject.status();
      main = subject->person.name();
      call.set_target(main);
      // The candidates would say who the subject resembles, i.e. reveal
      // its identity: only a caller that may read it may ask.
      absl::StatusOr<PersonAccess> access =
          RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *subject);
      if (!access.ok()) return access.status();
      subject_id = subject->id;
      record = ToMatchRecord(subject->person);
      // The subject's stored prepared form.
      absl::StatusOr<std::vector<MatchCandidate>> form =
          match_forms_->Load(store, {subject_id});
      if (!form.ok()) return form.status();
      if (form->empty()) return absl::InternalError("subject vanished");
      prepared = std::move(form->front().prepared);
    } else {
      // Compared as it would be stored: with romanised names when it has
      // no Latin one.
      v1::Person draft = request.draft();
      if (absl::Status s = AddRomanizedNames(&draft); !s.ok()) return s;
      record = ToMatchRecord(draft);
    }
    absl::StatusOr<DisclosureQuery> query = PrepareDisclosure(
        *matcher_, *access_policy_, rc, caller, record, std::move(prepared));
    if (!query.ok()) return query.status();
    absl::StatusOr<CandidateSet> candidates = FindForDisclosure(
        *query, [&](const PreparedRecord& r, const CandidateLimits& limits) {
          return store.FindCandidates(r, limits, subject_id);
        });
    if (!candidates.ok()) return candidates.status();
    absl::StatusOr<std::vector<DisclosedCandidate>> scored =
        ScoreForCaller(store, match_forms_.get(), *matcher_, *access_policy_,
                       rc, caller, *query, *candidates, min_score);
    if (!scored.ok()) return scored.status();
    response->Clear();
    response->set_duplicate_threshold(kStrongDuplicateScore);
    SetThresholds(response->mutable_thresholds());
    AuditPerson(call, main);
    const size_t begin = cursor.has_value() ? PageStart(*scored, *cursor) : 0;
    const size_t end = std::min(scored->size(), begin + page_size);
    if (absl::Status s = Disclose(store, *scored, begin, end, call,
                                  [&] { return response->add_candidates(); });
        !s.ok()) {
      return s;
    }
    if (end < scored->size()) {
      response->set_next_page_token(
          api::EncodePageToken(fingerprint, EncodeCursor((*scored)[end - 1])));
    }
    return absl::OkStatus();
  });
  return FinishPersonCall(call, status);
}

}  // namespace lotse::identity
