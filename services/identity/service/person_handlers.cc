// The person and agency-id RPCs of IdentityServiceImpl (issue 3, items 2,
// 3, 5 and 6). The pattern is that of the agency RPCs in
// identity_service.cc: ServeUnary -> Do* -> RunPersonAudited. Reads run in
// a read-only transaction and commit only their audit records afterwards;
// CreatePerson checks for duplicates in the read phase and re-checks what
// changed since in its write phase; the other changes run in one write
// transaction. Events are enqueued before the audit record.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/identity/domain/person.h"
#include "services/identity/domain/remit_proof.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/service/person_access.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/person_store.h"
#include "services/identity/store/proof_store.h"
#include "services/identity/store/relation_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {

// A person RPC's audit trail: the main record's resource and reason, and
// the further records the call owes (persons disclosed or involved).
struct IdentityServiceImpl::PersonTrail {
  struct Extra {
    std::string resource;
    std::string reason;
  };
  std::string resource;
  // Stays empty for an ordinary allowed call; notes what the record must
  // tell besides "allowed" (an overridden duplicate check, changed paths).
  std::string reason;
  std::vector<Extra> extra;
};

namespace {

using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

constexpr char kService[] = "lotse.identity.v1.IdentityService/";
constexpr char kCoreIdentity[] = "CORE_IDENTITY";

// Search and duplicate listing bounds from the contract.
constexpr int kSearchDefaultPageSize = 20;
constexpr int kSearchMaxPageSize = 50;
constexpr int kDuplicatesDefaultPageSize = 10;
constexpr int kDuplicatesMaxPageSize = 50;
// A free-text query carries names only, so its scores lack the birth-date
// evidence a full record adds; the default sits below the duplicate
// threshold to still show name-only matches.
constexpr double kSearchDefaultMinScore = 0.35;

std::string Method(absl::string_view rpc) {
  return absl::StrCat(kService, rpc);
}

// Birth dates are judged against the calendar day in Germany, where the
// registrations happen; UTC would refuse a newborn for an hour or two.
absl::CivilDay TodayInGermany() {
  static const absl::TimeZone* const zone = [] {
    auto* tz = new absl::TimeZone(absl::UTCTimeZone());
    if (!absl::LoadTimeZone("Europe/Berlin", tz)) *tz = absl::UTCTimeZone();
    return tz;
  }();
  return absl::ToCivilDay(absl::Now(), *zone);
}

google::protobuf::Timestamp NowTimestamp() {
  const int64_t micros = absl::ToUnixMicros(absl::Now());
  google::protobuf::Timestamp ts;
  ts.set_seconds(micros / 1000000);
  ts.set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  return ts;
}

// The resource a request names, for the audit trail of a call refused
// before its body ran: the person when the name is well-formed, else the
// collection (never unvalidated bytes).
std::string PersonTarget(absl::string_view name) {
  FieldViolations ignored;
  const std::string id = ParsePersonName(name, "name", &ignored);
  return id.empty() ? "persons" : PersonResourceName(id);
}

absl::Status NotConfigured() {
  server::Log(server::LogLevel::kError,
              "person RPC called before EnablePersons", {});
  return absl::InternalError("person RPCs are not configured");
}

absl::Status RequireNotAdministration(const AgencyRecord& caller) {
  if (caller.legal_domain != kAdministrationDomain) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "administering agencies do not work with persons");
}

absl::Status MergedError(const PersonLookup& lookup) {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "PERSON_MERGED",
                         "the person was merged into another; use the "
                         "survivor",
                         {{"survivor", lookup.person.name()}});
}

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

// What `caller` may read of `person` (the survivor when the id was
// merged): CORE_IDENTITY decides whether it sees the person at all, CONTACT
// whether it sees the contact data too.
struct PersonAccess {
  AccessDecision core;
  AccessDecision contact;
};

absl::StatusOr<PersonAccess> DecidePersonAccess(Transaction& tx,
                                                const AccessPolicy& policy,
                                                const RequestContext& rc,
                                                const AgencyRecord& caller,
                                                const PersonLookup& person) {
  absl::StatusOr<Standing> standing =
      LoadStanding(tx, person.id, person.person.creating_agency(), caller.id,
                   /*with_residence=*/false);
  if (!standing.ok()) return standing.status();
  const AccessSubject subject = SubjectOf(caller);
  const absl::Time now = absl::Now();
  PersonAccess access;
  access.core = DecideFromStanding(policy, subject, person.id, *standing,
                                   DataCategory::kCoreIdentity, rc.purpose, {},
                                   false, now);
  access.contact =
      DecideFromStanding(policy, subject, person.id, *standing,
                         DataCategory::kContact, rc.purpose, {}, false, now);
  return access;
}

// The access decisions for a person the caller must be able to read:
// PERMISSION_DENIED with the core identity's denial reason otherwise.
absl::StatusOr<PersonAccess> RequireCoreIdentityRead(
    Transaction& tx, const AccessPolicy& policy, const RequestContext& rc,
    const AgencyRecord& caller, const PersonLookup& person) {
  absl::StatusOr<PersonAccess> access =
      DecidePersonAccess(tx, policy, rc, caller, person);
  if (!access.ok()) return access.status();
  if (!access->core.allowed) return DeniedError(access->core);
  return access;
}

// The record as `access` lets the caller see it: the contact is left out,
// and withheld_categories says so, unless CONTACT may be read. Listed
// whenever it is withheld, also for a record without contact data, so the
// list does not tell whether there is any.
void ShowTo(const PersonAccess& access, v1::Person* person) {
  if (access.contact.allowed) return;
  person->clear_contact();
  person->add_withheld_categories(type::v1::DATA_CATEGORY_CONTACT);
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

struct ScoredId {
  std::string id;
  MatchResult match;
};

// Scores persons `ids` against `query` with their stored prepared forms
// (one batched read, no ICU for current forms) and keeps those at or above
// `min_score`, best first (ties in the order of `ids`). The forms come
// through `cache` unless it is null; pass null in a transaction that
// claimed a key stamp (the cache would follow a stamp that may roll back).
absl::StatusOr<std::vector<ScoredId>> ScoreCandidates(
    PersonStore& store, MatchFormCache* cache, const DuplicateMatcher& matcher,
    const PreparedRecord& query, const std::vector<std::string>& ids,
    double min_score) {
  absl::StatusOr<std::vector<MatchCandidate>> forms =
      cache != nullptr ? cache->Load(store, ids) : store.LoadMatchForms(ids);
  if (!forms.ok()) return forms.status();
  std::vector<ScoredId> out;
  for (MatchCandidate& candidate : *forms) {
    MatchResult match = matcher.Compare(query, candidate.prepared);
    if (match.score < min_score) continue;
    out.push_back({std::move(candidate.id), std::move(match)});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ScoredId& a, const ScoredId& b) {
                     return a.match.score > b.match.score;
                   });
  return out;
}

// CreatePerson's refusal when strong duplicates exist.
absl::Status PossibleDuplicate(const std::vector<std::string>& names,
                               double top_score) {
  return ErrorWithReason(
      absl::StatusCode::kAlreadyExists, "POSSIBLE_DUPLICATE",
      "a person that is probably the same is registered; check the "
      "candidates, or confirm a new person",
      {{"candidates", absl::StrJoin(names, ",")},
       {"top_score", absl::StrCat(top_score)}});
}

void ToProto(const ScoredCandidate& scored, v1::DuplicateCandidate* out) {
  *out->mutable_person() = WithoutContact(scored.person);
  out->set_score(scored.match.score);
  out->set_strong(scored.match.score >= kStrongDuplicateScore);
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
    const RequestContext& rc, const AgencyRecord& caller,
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
// in the order of the lookups). The forms come through `cache` unless it
// is null (see ScoreCandidates). The standing of every candidate is read
// first, in one batch, so that each is compared once.
absl::StatusOr<std::vector<DisclosedCandidate>> ScoreForCaller(
    PersonStore& store, MatchFormCache* cache, const DuplicateMatcher& matcher,
    const AccessPolicy& policy, const RequestContext& rc,
    const AgencyRecord& caller, const DisclosureQuery& query,
    const CandidateSet& candidates, double min_score) {
  absl::StatusOr<std::vector<MatchCandidate>> forms =
      cache != nullptr ? cache->Load(store, candidates.ids)
                       : store.LoadMatchForms(candidates.ids);
  if (!forms.ok()) return forms.status();
  absl::flat_hash_map<std::string, Standing> standings;
  if (!query.reads_all) {
    absl::StatusOr<absl::flat_hash_map<std::string, Standing>> loaded =
        LoadStandings(store.transaction(), candidates.ids, caller.id);
    if (!loaded.ok()) return loaded.status();
    standings = *std::move(loaded);
  }
  const AccessSubject subject = SubjectOf(caller);
  const absl::Time now = absl::Now();
  std::vector<DisclosedCandidate> kept;
  for (MatchCandidate& candidate : *forms) {
    DisclosedCandidate c;
    c.id = std::move(candidate.id);
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
      c.match = matcher.Compare(query.full, candidate.prepared);
      c.rank = c.match.score;
    } else if (candidates.by_names.contains(c.id)) {
      c.rank = matcher
                   .Compare(query.names_only ? query.full : query.names,
                            candidate.prepared)
                   .score;
    } else {
      continue;  // found only by the birth year: not for this caller
    }
    if (c.rank >= min_score) kept.push_back(std::move(c));
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [](const DisclosedCandidate& a,
                      const DisclosedCandidate& b) { return a.rank > b.rank; });
  return kept;
}

// Adds kept[begin, end) to a response: the record and the evidence for a
// readable candidate, only its name for any other. Adds each disclosed
// person to `audited` (resource, reason) for the audit trail, a bare match
// with reason MATCH_ONLY.
absl::Status Disclose(PersonStore& store,
                      const std::vector<DisclosedCandidate>& kept, size_t begin,
                      size_t end,
                      std::vector<std::pair<std::string, std::string>>* audited,
                      const std::function<v1::DuplicateCandidate*()>& add) {
  for (size_t i = begin; i < end && i < kept.size(); ++i) {
    const DisclosedCandidate& c = kept[i];
    v1::DuplicateCandidate* out = add();
    if (!c.readable) {
      out->mutable_person()->set_name(PersonResourceName(c.id));
      out->set_match_only(true);
      audited->push_back({PersonResourceName(c.id), "MATCH_ONLY"});
      continue;
    }
    absl::StatusOr<PersonLookup> found = store.Get(c.id);
    if (!found.ok()) return found.status();
    ToProto({std::move(found->person), c.match}, out);
    audited->push_back({PersonResourceName(c.id), ""});
  }
  return absl::OkStatus();
}

// Adds violations for a RemitProof that is not well-formed: exactly one
// kind of evidence; attributes with a family name, a full birth date not
// after `today` and a birth place of at most 200 characters; an issued id
// of a national kind.
void ValidateRemitProof(const v1::RemitProof& proof, const std::string& prefix,
                        absl::CivilDay today, FieldViolations* violations) {
  switch (proof.evidence_case()) {
    case v1::RemitProof::kAttributes: {
      const std::string field = prefix + ".attributes";
      const v1::IdentifyingAttributes& a = proof.attributes();
      api::ValidateText(a.name().family_names(), field + ".name.family_names",
                        api::TextRules{1, 200, false}, violations);
      api::ValidateText(a.name().given_names(), field + ".name.given_names",
                        api::TextRules{0, 200, false}, violations);
      if (a.birth_date().year() == 0 || a.birth_date().month() == 0 ||
          a.birth_date().day() == 0) {
        violations->Add(field + ".birth_date",
                        "must be a full date (year, month and day)");
      } else {
        ValidateBirthDate(a.birth_date(), field + ".birth_date", today,
                          violations);
      }
      api::ValidateText(a.birth_place(), field + ".birth_place",
                        api::TextRules{0, 200, false}, violations);
      break;
    }
    case v1::RemitProof::kIssuedId: {
      const std::string field = prefix + ".issued_id";
      const v1::AgencyId& id = proof.issued_id();
      ValidateAgencyIdInput(id.kind(), id.value(), field + ".kind",
                            field + ".value", violations);
      if (v1::AgencyIdKind_IsValid(id.kind()) &&
          id.kind() != v1::AGENCY_ID_KIND_UNSPECIFIED &&
          !IsNationalAgencyIdKind(id.kind())) {
        violations->Add(field + ".kind",
                        "must be a national kind (AZR number, BA customer "
                        "number, BAMF file number)");
      }
      break;
    }
    default:
      violations->Add(prefix, "attributes or issued_id is required");
  }
}

// Whether a well-formed `proof` shows that `person` is in `caller`'s remit:
// the attributes match the record (remit_proof.h), or the issued id is
// linked to this very person by another agency.
absl::StatusOr<bool> RemitProofHolds(PersonStore& store,
                                     const DuplicateMatcher& matcher,
                                     const v1::RemitProof& proof,
                                     const AgencyRecord& caller,
                                     const PersonLookup& person) {
  if (proof.has_issued_id()) {
    absl::StatusOr<std::optional<PersonStore::LinkedId>> link =
        store.FindNationalLink(proof.issued_id().kind(),
                               proof.issued_id().value());
    if (!link.ok()) return link.status();
    return link->has_value() && (*link)->person_id == person.id &&
           (*link)->issuing_agency != AgencyResourceName(caller.id);
  }
  const v1::IdentifyingAttributes& a = proof.attributes();
  PresentedAttributes presented;
  presented.name = {a.name().given_names(), a.name().family_names()};
  presented.birth_date = {a.birth_date().year(), a.birth_date().month(),
                          a.birth_date().day()};
  presented.birth_place = a.birth_place();
  absl::StatusOr<AttributesOutcome> outcome = CheckIdentifyingAttributes(
      matcher, presented, ToMatchRecord(person.person));
  if (!outcome.ok()) return outcome.status();
  return *outcome == AttributesOutcome::kHold;
}

// LinkAgencyId's AGENCY_ID_TAKEN names the person holding the id; that
// person is named only to a caller that may read it. Any other status is
// returned as it is.
absl::Status HideUnreadableHolder(Transaction& tx, PersonStore& store,
                                  const AccessPolicy& policy,
                                  const RequestContext& rc,
                                  const AgencyRecord& caller,
                                  const absl::Status& status) {
  if (ReasonOf(status) != "AGENCY_ID_TAKEN") return status;
  const absl::Status anonymous =
      ErrorWithReason(absl::StatusCode::kAlreadyExists, "AGENCY_ID_TAKEN",
                      "this agency id is linked to another person");
  const std::optional<std::string> holder = MetadataOf(status, "person");
  if (!holder.has_value()) return anonymous;
  FieldViolations ignored;
  absl::StatusOr<PersonLookup> found =
      store.Get(ParsePersonName(*holder, "", &ignored));
  if (!found.ok()) return anonymous;
  absl::StatusOr<PersonAccess> access =
      DecidePersonAccess(tx, policy, rc, caller, *found);
  if (!access.ok()) return access.status();
  return access->core.allowed ? status : anonymous;
}

// Legal domains that may link an agency id kind (AgencyIdKind comments).
bool MayLinkKind(v1::AgencyIdKind kind, absl::string_view domain) {
  auto any_of = [&](std::initializer_list<absl::string_view> domains) {
    return std::find(domains.begin(), domains.end(), domain) != domains.end();
  };
  switch (kind) {
    case v1::AGENCY_ID_KIND_AZR_NUMBER:
      return any_of({"AUSLAENDERBEHOERDE", "BAMF"});
    case v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER:
      return any_of({"ARBEITSAGENTUR", "JOBCENTER"});
    case v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER:
      return any_of({"JOBCENTER"});
    case v1::AGENCY_ID_KIND_COURSE_PARTICIPANT_NUMBER:
      return any_of({"KURSTRAEGER"});
    case v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER:
      return any_of({"BAMF"});
    case v1::AGENCY_ID_KIND_IMMIGRATION_FILE_NUMBER:
      return any_of({"AUSLAENDERBEHOERDE"});
    case v1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER:
      return any_of({"KOMMUNE", "JUGENDAMT", "SOZIALAMT"});
    case v1::AGENCY_ID_KIND_OTHER:
      return domain != kAdministrationDomain;
    default:
      return false;
  }
}

// "persons/{person}/agencyIds/{link}" split into its ids; adds a violation
// for `field` and leaves them empty otherwise.
bool ParseAgencyIdName(absl::string_view name, const std::string& field,
                       std::string* person_id, std::string* link_id,
                       FieldViolations* violations) {
  std::vector<std::string> ids = api::ParseName(
      name, "persons/{person}/agencyIds/{agency_id}", field, violations);
  if (ids.empty()) return false;
  *person_id = std::move(ids[0]);
  *link_id = std::move(ids[1]);
  return true;
}

// The link `name` of person `person_id`, with unlinked ones, if any.
absl::StatusOr<std::optional<v1::AgencyId>> FindLink(
    PersonStore& store, const std::string& person_id, const std::string& name) {
  std::string cursor;
  do {
    absl::StatusOr<AgencyIdPage> page = store.ListAgencyIds(
        person_id, /*include_unlinked=*/true, cursor, api::kMaxPageSize);
    if (!page.ok()) return page.status();
    for (v1::AgencyId& link : page->agency_ids) {
      if (link.name() == name) return std::move(link);
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return std::nullopt;
}

// ResidenceStatusChanged announcing `record` as the person's current one.
v1::ResidenceStatusChanged ResidenceChanged(const ResidenceRecord& record) {
  v1::ResidenceStatusChanged changed;
  changed.set_person(PersonResourceName(record.person_id));
  changed.set_residence_status(
      ResidenceResourceName(record.person_id, record.id));
  changed.set_title_kind(record.fields.title_kind());
  *changed.mutable_valid_from() = record.fields.valid_from();
  if (record.fields.has_valid_until()) {
    *changed.mutable_valid_until() = record.fields.valid_until();
  }
  changed.set_work_permission(record.fields.work_permission());
  changed.set_integration_course_obligation(
      record.fields.integration_course_obligation());
  changed.set_recording_agency(record.recording_agency);
  return changed;
}

// The MergePersons part that is not the person record itself: residence
// status records and consents of `merged_id` move to `survivor_id` (the
// store moved the agency ids). When the survivor's current residence
// record is another one afterwards (the merged person's was recorded
// later, or the survivor had none), consumers such as placement must learn
// the status now in force, so ResidenceStatusChanged is enqueued for the
// survivor. Call after PersonStore::Merge succeeded, in its transaction.
absl::Status MoveHistory(Transaction& tx, const std::string& survivor_id,
                         const std::string& merged_id) {
  // The writers of residence records and consents lock per person; taking
  // both persons' locks (in id order, like the person locks of the merge)
  // keeps a concurrent write from landing between read and move.
  const bool survivor_first = survivor_id < merged_id;
  const std::string& first = survivor_first ? survivor_id : merged_id;
  const std::string& second = survivor_first ? merged_id : survivor_id;
  for (const std::string* id : {&first, &second}) {
    if (absl::Status s = LockResidence(tx, *id); !s.ok()) return s;
  }
  for (const std::string* id : {&first, &second}) {
    if (absl::Status s = LockConsents(tx, *id); !s.ok()) return s;
  }

  auto before = ReadCurrentResidence(tx, survivor_id);
  if (!before.ok()) return before.status();
  if (absl::Status s = MoveResidence(tx, merged_id, survivor_id); !s.ok()) {
    return s;
  }
  auto after = ReadCurrentResidence(tx, survivor_id);
  if (!after.ok()) return after.status();
  if (after->has_value() &&
      (!before->has_value() || (*before)->id != (*after)->id)) {
    lotse::events::v1::Event event;
    event.set_ordering_key(PersonResourceName(survivor_id));
    event.set_source("identity");
    event.mutable_payload()->PackFrom(ResidenceChanged(**after));
    if (absl::Status s = events::EnqueueEvent(tx, std::move(event)); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = MoveConsents(tx, merged_id, survivor_id); !s.ok()) {
    return s;
  }
  return MoveRelations(tx, merged_id, survivor_id);
}

audit::AuditRecord PersonAuditRecord(const RequestContext& rc,
                                     const std::string& agency_id,
                                     absl::string_view method,
                                     const std::string& resource) {
  audit::AuditRecord record;
  record.agency_id = agency_id;
  record.legal_domain = rc.caller.legal_domain;
  record.actor = rc.actor;
  record.purpose = rc.purpose;
  record.operation = std::string(method);
  record.resource = resource;
  record.data_categories = {kCoreIdentity};
  return record;
}

}  // namespace

absl::Status IdentityServiceImpl::EnablePersons(
    std::shared_ptr<const AccessPolicy> policy, size_t match_form_cache_bytes) {
  if (policy == nullptr) {
    return absl::InvalidArgumentError("an access policy is required");
  }
  absl::StatusOr<std::unique_ptr<DuplicateMatcher>> matcher =
      DuplicateMatcher::Create();
  if (!matcher.ok()) return matcher.status();
  matcher_ = std::shared_ptr<const DuplicateMatcher>(*std::move(matcher));
  match_forms_ =
      std::make_unique<MatchFormCache>(*matcher_, match_form_cache_bytes);
  if (runtime_.metrics != nullptr)
    match_forms_->ExportMetrics(*runtime_.metrics);
  access_policy_ = std::move(policy);
  return absl::OkStatus();
}

absl::Status IdentityServiceImpl::RunPersonAudited(const RequestContext& rc,
                                                   absl::string_view method,
                                                   const std::string& target,
                                                   const PersonBody& read,
                                                   const PersonBody& write,
                                                   bool admit_services) {
  if (access_policy_ == nullptr || matcher_ == nullptr) return NotConfigured();
  // Until the caller is resolved, the audit trail names the certificate.
  std::string agency_id = rc.caller.agency_id;
  PersonTrail trail;
  trail.resource = target;
  AgencyRecord caller;
  bool caller_known = false;
  auto check_caller = [&](Transaction& tx) -> absl::Status {
    if (admit_services && rc.caller.is_service()) {
      // Authenticated by its certificate alone (see the header).
      caller = AgencyRecord{};
      caller.id = rc.caller.agency_id;
      caller.legal_domain = server::kServiceDomain;
      agency_id = caller.id;
      return absl::OkStatus();
    }
    absl::StatusOr<AgencyRecord> checked = CheckCaller(tx, rc);
    if (!checked.ok()) return checked.status();
    caller = *std::move(checked);
    agency_id = caller.id;
    caller_known = true;
    return absl::OkStatus();
  };
  absl::Status status;
  if (read != nullptr) {
    status = storage::RunInTransaction(
        *runtime_.database,
        [&](Transaction& tx) -> absl::Status {
          if (absl::Status s = check_caller(tx); !s.ok()) return s;
          trail = PersonTrail{};  // a retried transaction starts afresh
          trail.resource = target;
          return read(tx, caller, &trail);
        },
        storage::TxMode::kReadOnly);
  }
  if (status.ok()) {
    // The write phase commits the audit records before the response is
    // returned, also for a pure read.
    const PersonTrail after_read = trail;
    status = CommitWrite([&](Transaction& tx) -> absl::Status {
      trail = after_read;
      if (read == nullptr) {
        if (absl::Status s = check_caller(tx); !s.ok()) return s;
      }
      if (write != nullptr) {
        if (absl::Status s = write(tx, caller, &trail); !s.ok()) return s;
      }
      audit::AuditRecord main =
          PersonAuditRecord(rc, agency_id, method, trail.resource);
      main.reason = trail.reason;
      if (absl::Status s = audit::AppendAudit(tx, main); !s.ok()) return s;
      for (const PersonTrail::Extra& extra : trail.extra) {
        audit::AuditRecord record =
            PersonAuditRecord(rc, agency_id, method, extra.resource);
        record.reason = extra.reason;
        if (absl::Status s = audit::AppendAudit(tx, record); !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    });
  }
  if (status.ok()) return status;
  audit::AuditRecord record =
      PersonAuditRecord(rc, agency_id, method, trail.resource);
  absl::Status audited = audit::AppendFailedCallAudit(
      *runtime_.database, std::move(record), status);
  if (!audited.ok()) {
    server::Log(server::LogLevel::kError, "audit of failed call not written",
                {{"operation", std::string(method)},
                 {"agency", agency_id},
                 {"error", std::string(audited.message())}});
  }
  // The trail keeps what happened; the agency learns no more than it would
  // about a person it may not read.
  if (caller_known && ReasonOf(status) == "PERSON_NOT_FOUND") {
    return RefusalWithoutStanding(*access_policy_, SubjectOf(caller),
                                  DataCategory::kCoreIdentity, rc.purpose,
                                  status);
  }
  return status;
}

absl::Status IdentityServiceImpl::DoCreatePerson(
    const RequestContext& rc, const v1::CreatePersonRequest& request,
    v1::Person* response) {
  const std::string method = Method("CreatePerson");
  v1::CreatePersonRequest content = request;
  content.clear_request_id();
  const std::string fingerprint = api::RequestFingerprint(content);

  // A retry whose first call created `recorded` ("persons/{id}"):
  // answer with it (its survivor if it was merged since), creating nothing.
  auto answer_retry = [&](PersonStore& store, const AgencyRecord& caller,
                          const std::string& recorded,
                          PersonTrail* trail) -> absl::Status {
    trail->resource = recorded;
    FieldViolations ignored;
    absl::StatusOr<PersonLookup> first =
        store.Get(ParsePersonName(recorded, "", &ignored));
    if (!first.ok()) return first.status();
    // Merged since into a person the caller may not read: no data.
    absl::StatusOr<PersonAccess> access = RequireCoreIdentityRead(
        store.transaction(), *access_policy_, rc, caller, *first);
    if (!access.ok()) return access.status();
    *response = first->person;
    ShowTo(*access, response);
    return absl::OkStatus();
  };

  // What the read phase found, for the write phase.
  int64_t read_stamp = 0;
  PreparedRecord prepared;
  std::vector<std::string> lookup_keys;
  absl::flat_hash_set<std::string> scored_ids;
  std::vector<std::string> strong_names;
  double top_score = 0;

  // Read phase: validation and the duplicate check against the snapshot,
  // with all the ICU and scoring work, outside the write lock. Whether the
  // request_id was seen is decided in the write phase (its lookup takes a
  // lock, which needs a read-write transaction), so the refusal of a
  // duplicate waits for it: a retry of a create that succeeded must answer
  // with its person, not call it a duplicate of itself.
  auto read = [&](Transaction& tx, const AgencyRecord& caller,
                  PersonTrail* trail) -> absl::Status {
    if (absl::Status s = RequireNotAdministration(caller); !s.ok()) {
      return s;
    }
    FieldViolations violations;
    api::ValidateRequestId(request.request_id(), "request_id", &violations);
    if (!request.has_person()) {
      violations.Add("person", "is required");
    } else {
      ValidatePerson(request.person(), "person", TodayInGermany(), &violations);
    }
    if (!violations.empty()) return violations.ToStatus();

    PersonStore store(tx, *matcher_);
    absl::StatusOr<int64_t> stamp = store.ReadKeyStamp();
    if (!stamp.ok()) return stamp.status();
    read_stamp = *stamp;
    absl::StatusOr<PreparedRecord> query =
        matcher_->Prepare(ToMatchRecord(request.person()));
    if (!query.ok()) return query.status();
    prepared = *std::move(query);
    lookup_keys = matcher_->LookupKeys(prepared);
    absl::StatusOr<Candidates> candidates = store.FindCandidates(prepared, {});
    if (!candidates.ok()) return candidates.status();
    scored_ids = absl::flat_hash_set<std::string>(
        candidates->person_ids.begin(), candidates->person_ids.end());
    absl::StatusOr<std::vector<ScoredId>> strong =
        ScoreCandidates(store, match_forms_.get(), *matcher_, prepared,
                        candidates->person_ids, kStrongDuplicateScore);
    if (!strong.ok()) return strong.status();
    strong_names.clear();
    for (const ScoredId& c : *strong) {
      strong_names.push_back(PersonResourceName(c.id));
    }
    top_score = strong->empty() ? 0 : strong->front().match.score;
    return absl::OkStatus();
  };

  // Write phase: only what must see the latest committed state — the
  // request_id (a retry, or a concurrent call with the same one), persons
  // whose keys were written since the read snapshot (a concurrent create of
  // the same person), then the insert.
  auto write = [&](Transaction& tx, const AgencyRecord& caller,
                   PersonTrail* trail) -> absl::Status {
    PersonStore store(tx, *matcher_);
    const api::RequestKey key{caller.id, method, request.request_id()};
    absl::StatusOr<std::optional<std::string>> seen =
        api::LookupRequestId(tx, key, fingerprint);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) return answer_retry(store, caller, **seen, trail);
    if (!strong_names.empty() && !request.confirm_new_person()) {
      return PossibleDuplicate(strong_names, top_score);
    }

    // Claimed before the re-check: on PostgreSQL this waits for any other
    // key writer to commit, so the re-check below sees its person.
    absl::StatusOr<int64_t> stamp = store.ClaimKeyStamp();
    if (!stamp.ok()) return stamp.status();
    absl::StatusOr<std::vector<std::string>> since =
        store.KeyedSince(read_stamp, lookup_keys);
    if (!since.ok()) return since.status();
    std::vector<std::string> fresh;
    for (std::string& id : *since) {
      if (!scored_ids.contains(id)) fresh.push_back(std::move(id));
    }
    std::vector<std::string> names = strong_names;
    double top = top_score;
    if (!fresh.empty()) {
      absl::StatusOr<std::vector<ScoredId>> late =
          ScoreCandidates(store, /*cache=*/nullptr, *matcher_, prepared, fresh,
                          kStrongDuplicateScore);
      if (!late.ok()) return late.status();
      for (const ScoredId& c : *late) {
        names.push_back(PersonResourceName(c.id));
        top = std::max(top, c.match.score);
      }
      if (!late->empty() && !request.confirm_new_person()) {
        return PossibleDuplicate(names, top);
      }
    }

    absl::StatusOr<v1::Person> created =
        store.Create(request.person(), AgencyResourceName(caller.id), prepared);
    if (!created.ok()) return created.status();
    trail->resource = created->name();
    if (absl::Status s =
            api::RecordRequestId(tx, key, fingerprint, created->name());
        !s.ok()) {
      return s;
    }
    if (!names.empty()) {
      // The caseworker overrode the duplicate check: the record says so,
      // and each overridden candidate's trail shows it was involved.
      trail->reason = "DUPLICATE_CHECK_OVERRIDDEN";
      for (const std::string& name : names) {
        trail->extra.push_back({name, "DUPLICATE_CANDIDATE_OVERRIDDEN"});
      }
    }
    *response = *std::move(created);
    return absl::OkStatus();
  };
  return RunPersonAudited(rc, method, "persons", read, write);
}

absl::Status IdentityServiceImpl::DoGetPerson(
    const RequestContext& rc, const v1::GetPersonRequest& request,
    v1::Person* response) {
  return RunPersonAudited(
      rc, Method("GetPerson"), PersonTarget(request.name()),
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParsePersonName(request.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.Get(id);
        if (!found.ok()) return found.status();
        // The data shown is the survivor's: its trail
        // records the read.
        trail->resource = found->person.name();
        if (rc.caller.is_service()) {
          // A service shows the record to an agency only after asking
          // CheckAccess for that agency (the cases view does); it needs
          // no contact data and gets none.
          *response = std::move(found->person);
          ShowTo(PersonAccess{}, response);
          return absl::OkStatus();
        }
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        *response = std::move(found->person);
        ShowTo(*access, response);
        return absl::OkStatus();
      },
      nullptr, /*admit_services=*/true);
}

absl::Status IdentityServiceImpl::DoUpdatePerson(
    const RequestContext& rc, const v1::UpdatePersonRequest& request,
    v1::Person* response) {
  return RunPersonAudited(
      rc, Method("UpdatePerson"), PersonTarget(request.person().name()),
      nullptr,
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        if (!request.has_person()) violations.Add("person", "is required");
        const std::string id = ParsePersonName(request.person().name(),
                                               "person.name", &violations);
        if (request.person().etag().empty()) {
          violations.Add("person.etag", "is required");
        }
        const std::vector<std::string> paths(
            request.update_mask().paths().begin(),
            request.update_mask().paths().end());
        // Path names are checked before anything is read; values only
        // against the stored record below, since whether nationality codes
        // and status agree depends on the part the mask leaves alone.
        if (paths.empty()) violations.Add("update_mask", "is required");
        for (size_t i = 0; i < paths.size(); ++i) {
          if (!IsUpdatablePersonPath(paths[i])) {
            violations.Add(absl::StrCat("update_mask.paths[", i, "]"),
                           "is not a field UpdatePerson can change");
          }
        }
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.Get(id);
        if (!found.ok()) return found.status();
        if (found->merged) {
          trail->resource = PersonResourceName(id);
          return MergedError(*found);
        }
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        // Changing the contact means knowing how to reach the person.
        if (!access->contact.allowed) {
          for (const std::string& path : paths) {
            if (absl::StartsWith(path, "contact")) {
              return DeniedError(access->contact);
            }
          }
        }
        v1::Person updated = found->person;
        ApplyPersonUpdate(request.person(), paths, "person", TodayInGermany(),
                          &updated, &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<v1::Person> stored =
            store.Update(id, updated, request.person().etag());
        if (!stored.ok()) return stored.status();
        // Which fields changed, never their values.
        trail->reason = absl::StrCat("UPDATED:", absl::StrJoin(paths, ","));
        *response = *std::move(stored);
        ShowTo(*access, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoListPersons(
    const RequestContext& rc, const v1::ListPersonsRequest& request,
    v1::ListPersonsResponse* response) {
  return RunPersonAudited(
      rc, Method("ListPersons"), "persons",
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        // The request has no filter fields; the list depends on the caller
        // alone, so a token continues only the listing of its agency.
        const std::string fingerprint = AgencyResourceName(caller.id);
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonPage> page =
            store.ListVisible(AgencyResourceName(caller.id), after, page_size);
        if (!page.ok()) return page.status();
        response->Clear();
        for (v1::Person& person : page->persons) {
          // Listed because the caller created the person, holds an id for
          // them or another service told identity of a relation; the
          // deployment's rules still decide whether that relation lets its
          // domain read them, as for GetPerson.
          PersonLookup lookup;
          lookup.id = person.name().substr(sizeof("persons/") - 1);
          lookup.person = person;
          absl::StatusOr<PersonAccess> access =
              DecidePersonAccess(tx, *access_policy_, rc, caller, lookup);
          if (!access.ok()) return access.status();
          if (!access->core.allowed) continue;
          ShowTo(*access, &person);
          trail->extra.push_back({person.name(), ""});
          *response->add_persons() = std::move(person);
        }
        if (!page->next_cursor.empty()) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, page->next_cursor));
        }
        return absl::OkStatus();
      },
      nullptr);
}

absl::Status IdentityServiceImpl::DoSearchPersons(
    const RequestContext& rc, const v1::SearchPersonsRequest& request,
    v1::SearchPersonsResponse* response) {
  return RunPersonAudited(
      rc, Method("SearchPersons"), "persons",
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        if (absl::Status s = RequireNotAdministration(caller); !s.ok()) {
          return s;
        }
        FieldViolations violations;
        api::ValidateText(request.name_query(), "name_query",
                          api::TextRules{2, 200, false}, &violations);
        if (request.has_birth_date()) {
          ValidateBirthDate(request.birth_date(), "birth_date",
                            TodayInGermany(), &violations);
        }
        const int page_size =
            SmallPageSize(request.page_size(), kSearchDefaultPageSize,
                          kSearchMaxPageSize, &violations);
        const double min_score =
            MinScore(request.min_score(), kSearchDefaultMinScore, &violations);
        // A token continues only the same query.
        v1::SearchPersonsRequest filter = request;
        filter.clear_page_size();
        filter.clear_page_token();
        const std::string fingerprint = api::RequestFingerprint(filter);
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        int offset = 0;
        if (!after.empty() &&
            (!absl::SimpleAtoi(after, &offset) || offset < 0)) {
          violations.Add("page_token", "is not valid");
        }
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<DisclosureQuery> query = PrepareDisclosure(
            *matcher_, *access_policy_, rc, caller,
            SearchRecord(request.name_query(), request.birth_date()),
            std::nullopt);
        if (!query.ok()) return query.status();
        absl::StatusOr<CandidateSet> candidates = FindForDisclosure(
            *query,
            [&](const PreparedRecord& r, const CandidateLimits& limits) {
              return store.Search(r, limits);
            });
        if (!candidates.ok()) return candidates.status();
        absl::StatusOr<std::vector<DisclosedCandidate>> scored = ScoreForCaller(
            store, match_forms_.get(), *matcher_, *access_policy_, rc, caller,
            *query, *candidates, min_score);
        if (!scored.ok()) return scored.status();
        response->Clear();
        const int end =
            std::min<int>(static_cast<int>(scored->size()), offset + page_size);
        std::vector<std::pair<std::string, std::string>> disclosed;
        if (absl::Status s = Disclose(store, *scored, offset, end, &disclosed,
                                      [&] { return response->add_results(); });
            !s.ok()) {
          return s;
        }
        for (auto& [resource, why] : disclosed) {
          trail->extra.push_back({resource, why});
        }
        if (end < static_cast<int>(scored->size())) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, absl::StrCat(end)));
        }
        return absl::OkStatus();
      },
      nullptr);
}

absl::Status IdentityServiceImpl::DoFindDuplicates(
    const RequestContext& rc, const v1::FindDuplicatesRequest& request,
    v1::FindDuplicatesResponse* response) {
  return RunPersonAudited(
      rc, Method("FindDuplicates"),
      request.has_draft() ? "persons" : PersonTarget(request.person()),
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        if (absl::Status s = RequireNotAdministration(caller); !s.ok()) {
          return s;
        }
        FieldViolations violations;
        std::string subject_id;
        switch (request.subject_case()) {
          case v1::FindDuplicatesRequest::kPerson:
            subject_id =
                ParsePersonName(request.person(), "person", &violations);
            break;
          case v1::FindDuplicatesRequest::kDraft:
            ValidatePerson(request.draft(), "draft", TodayInGermany(),
                           &violations);
            break;
          default:
            violations.Add("subject", "person or draft is required");
        }
        const int page_size =
            SmallPageSize(request.page_size(), kDuplicatesDefaultPageSize,
                          kDuplicatesMaxPageSize, &violations);
        const double min_score =
            MinScore(request.min_score(), kPossibleDuplicateScore, &violations);
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        MatchRecord record;
        std::optional<PreparedRecord> prepared;
        if (!subject_id.empty()) {
          absl::StatusOr<PersonLookup> subject = store.Get(subject_id);
          if (!subject.ok()) return subject.status();
          trail->resource = subject->person.name();
          // The candidates would say who the subject resembles, i.e. reveal
          // its identity: only a caller that may read it may ask.
          absl::StatusOr<PersonAccess> access = RequireCoreIdentityRead(
              tx, *access_policy_, rc, caller, *subject);
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
          record = ToMatchRecord(request.draft());
        }
        absl::StatusOr<DisclosureQuery> query =
            PrepareDisclosure(*matcher_, *access_policy_, rc, caller, record,
                              std::move(prepared));
        if (!query.ok()) return query.status();
        absl::StatusOr<CandidateSet> candidates = FindForDisclosure(
            *query,
            [&](const PreparedRecord& r, const CandidateLimits& limits) {
              return store.FindCandidates(r, limits, subject_id);
            });
        if (!candidates.ok()) return candidates.status();
        absl::StatusOr<std::vector<DisclosedCandidate>> scored = ScoreForCaller(
            store, match_forms_.get(), *matcher_, *access_policy_, rc, caller,
            *query, *candidates, min_score);
        if (!scored.ok()) return scored.status();
        response->Clear();
        response->set_duplicate_threshold(kStrongDuplicateScore);
        std::vector<std::pair<std::string, std::string>> disclosed;
        if (absl::Status s =
                Disclose(store, *scored, 0, page_size, &disclosed,
                         [&] { return response->add_candidates(); });
            !s.ok()) {
          return s;
        }
        for (auto& [resource, why] : disclosed) {
          trail->extra.push_back({resource, why});
        }
        return absl::OkStatus();
      },
      nullptr);
}

absl::Status IdentityServiceImpl::DoMergePersons(
    const RequestContext& rc, const v1::MergePersonsRequest& request,
    v1::Person* response) {
  const std::string method = Method("MergePersons");
  return RunPersonAudited(
      rc, method, PersonTarget(request.survivor()), nullptr,
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        if (caller.legal_domain != "KOMMUNE" &&
            caller.legal_domain != "AUSLAENDERBEHOERDE" &&
            caller.legal_domain != "BAMF") {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "WRONG_LEGAL_DOMAIN",
                                 "only KOMMUNE, AUSLAENDERBEHOERDE and BAMF "
                                 "agencies may merge persons");
        }
        FieldViolations violations;
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        const std::string survivor_id =
            ParsePersonName(request.survivor(), "survivor", &violations);
        const std::string merged_id =
            ParsePersonName(request.merged(), "merged", &violations);
        if (request.survivor_etag().empty()) {
          violations.Add("survivor_etag", "is required");
        }
        if (request.merged_etag().empty()) {
          violations.Add("merged_etag", "is required");
        }
        api::ValidateText(request.justification(), "justification",
                          api::TextRules{1, 500, false}, &violations);
        if (!survivor_id.empty() && survivor_id == merged_id) {
          violations.Add("merged", "must differ from survivor");
        }
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        v1::MergePersonsRequest content = request;
        content.clear_request_id();
        const std::string fingerprint = api::RequestFingerprint(content);
        const api::RequestKey key{caller.id, method, request.request_id()};
        absl::StatusOr<std::optional<std::string>> seen =
            api::LookupRequestId(tx, key, fingerprint);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          absl::StatusOr<PersonLookup> survivor = store.Get(survivor_id);
          if (!survivor.ok()) return survivor.status();
          trail->resource = survivor->person.name();
          // Relations may have changed since the first call.
          absl::StatusOr<PersonAccess> access = RequireCoreIdentityRead(
              tx, *access_policy_, rc, caller, *survivor);
          if (!access.ok()) return access.status();
          *response = std::move(survivor->person);
          ShowTo(*access, response);
          return absl::OkStatus();
        }

        absl::StatusOr<PersonLookup> survivor = store.Get(survivor_id);
        if (!survivor.ok()) return survivor.status();
        absl::StatusOr<PersonLookup> merged = store.Get(merged_id);
        if (!merged.ok()) return merged.status();
        if (survivor->merged) return MergedError(*survivor);
        if (merged->merged) {
          trail->resource = PersonResourceName(merged_id);
          return MergedError(*merged);
        }
        std::optional<PersonAccess> survivor_access;
        for (const PersonLookup* person : {&*survivor, &*merged}) {
          trail->resource = person->person.name();
          absl::StatusOr<PersonAccess> access =
              RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *person);
          if (!access.ok()) return access.status();
          if (!survivor_access.has_value()) survivor_access = *access;
        }
        trail->resource = survivor->person.name();
        absl::StatusOr<v1::Person> result =
            store.Merge(survivor_id, request.survivor_etag(), merged_id,
                        request.merged_etag());
        if (!result.ok()) return result.status();
        if (absl::Status s =
                api::RecordRequestId(tx, key, fingerprint, result->name());
            !s.ok()) {
          return s;
        }

        v1::PersonMerged payload;
        payload.set_survivor(result->name());
        payload.set_merged(PersonResourceName(merged_id));
        payload.set_merging_agency(AgencyResourceName(caller.id));
        *payload.mutable_merge_time() = NowTimestamp();
        lotse::events::v1::Event event;
        event.set_ordering_key(result->name());
        event.set_source("identity");
        event.mutable_payload()->PackFrom(payload);
        if (absl::Status s = events::EnqueueEvent(tx, std::move(event));
            !s.ok()) {
          return s;
        }
        if (absl::Status s = MoveHistory(tx, survivor_id, merged_id); !s.ok()) {
          return s;
        }
        // The merged person's own trail must show where its data went.
        trail->extra.push_back(
            {PersonResourceName(merged_id), "MERGED_INTO_SURVIVOR"});
        *response = *std::move(result);
        ShowTo(*survivor_access, response);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoLinkAgencyId(
    const RequestContext& rc, const v1::LinkAgencyIdRequest& request,
    v1::AgencyId* response) {
  const std::string method = Method("LinkAgencyId");
  // A proof checked and found not to hold, recorded once the call has
  // failed (its own transaction rolls back).
  std::string failed_agency, failed_person;
  const absl::Status status = RunPersonAudited(
      rc, method, PersonTarget(request.parent()), nullptr,
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        failed_agency.clear();
        failed_person.clear();
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        if (!request.has_agency_id())
          violations.Add("agency_id", "is required");
        ValidateAgencyIdInput(request.agency_id().kind(),
                              request.agency_id().value(), "agency_id.kind",
                              "agency_id.value", &violations);
        if (request.has_proof()) {
          ValidateRemitProof(request.proof(), "proof", TodayInGermany(),
                             &violations);
        }
        if (!violations.empty()) return violations.ToStatus();
        if (!MayLinkKind(request.agency_id().kind(), caller.legal_domain)) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "WRONG_LEGAL_DOMAIN",
                                 "the caller's legal domain may not link ids "
                                 "of this kind");
        }

        PersonStore store(tx, *matcher_);
        v1::LinkAgencyIdRequest content = request;
        content.clear_request_id();
        const std::string fingerprint = api::RequestFingerprint(content);
        const api::RequestKey key{caller.id, method, request.request_id()};
        absl::StatusOr<std::optional<std::string>> seen =
            api::LookupRequestId(tx, key, fingerprint);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          // The link recorded by the first call, wherever a merge moved it.
          std::string link_person, link_id;
          FieldViolations ignored;
          ParseAgencyIdName(**seen, "", &link_person, &link_id, &ignored);
          absl::StatusOr<PersonLookup> holder = store.Get(link_person);
          if (!holder.ok()) return holder.status();
          const std::string name =
              absl::StrCat(holder->person.name(), "/agencyIds/", link_id);
          absl::StatusOr<std::optional<v1::AgencyId>> link =
              FindLink(store, holder->id, name);
          if (!link.ok()) return link.status();
          if (!link->has_value()) {
            return absl::InternalError("recorded agency id link is missing");
          }
          trail->resource = holder->person.name();
          *response = **link;
          return absl::OkStatus();
        }

        // Knowing a name is not a relation: an agency that may not read the
        // person yet links only with proof that the person is in its
        // remit. Every refusal here reads exactly like the one for a person
        // that does not exist.
        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        absl::StatusOr<PersonAccess> access =
            DecidePersonAccess(tx, *access_policy_, rc, caller, *person);
        if (!access.ok()) return access.status();
        if (!access->core.allowed) {
          const absl::Status refusal = RefusalWithoutStanding(
              *access_policy_, SubjectOf(caller), DataCategory::kCoreIdentity,
              rc.purpose, PersonNotFoundError(person_id));
          if (!request.has_proof()) return refusal;
          absl::StatusOr<int64_t> failures =
              CountFailedProofs(tx, caller.id, person->id, absl::Now());
          if (!failures.ok()) return failures.status();
          if (*failures >= kMaxFailedProofs) {
            trail->reason = "PROOF_ATTEMPTS_EXHAUSTED";
            return refusal;
          }
          absl::StatusOr<bool> holds = RemitProofHolds(
              store, *matcher_, request.proof(), caller, *person);
          if (!holds.ok()) return holds.status();
          if (!*holds) {
            failed_agency = caller.id;
            failed_person = person->id;
            return refusal;
          }
          // The audit record says what the link rests on, never the values.
          trail->reason = request.proof().has_attributes() ? "PROOF:ATTRIBUTES"
                                                           : "PROOF:ISSUED_ID";
        }
        if (person->merged) return MergedError(*person);

        absl::StatusOr<LinkResult> linked = store.LinkAgencyId(
            person_id, request.agency_id().kind(), request.agency_id().value(),
            AgencyResourceName(caller.id));
        if (!linked.ok()) {
          return HideUnreadableHolder(tx, store, *access_policy_, rc, caller,
                                      linked.status());
        }
        if (absl::Status s = api::RecordRequestId(tx, key, fingerprint,
                                                  linked->agency_id.name());
            !s.ok()) {
          return s;
        }
        *response = std::move(linked->agency_id);
        return absl::OkStatus();
      });
  if (!status.ok() && !failed_person.empty()) {
    absl::Status recorded = CommitWrite([&](Transaction& tx) {
      return RecordFailedProof(tx, failed_agency, failed_person, absl::Now());
    });
    if (!recorded.ok()) {
      server::Log(server::LogLevel::kError, "failed proof not recorded",
                  {{"agency", failed_agency},
                   {"error", std::string(recorded.message())}});
    }
  }
  return status;
}

absl::Status IdentityServiceImpl::DoUnlinkAgencyId(
    const RequestContext& rc, const v1::UnlinkAgencyIdRequest& request,
    v1::AgencyId* response) {
  std::string target_person, target_link;
  {
    FieldViolations ignored;
    ParseAgencyIdName(request.name(), "name", &target_person, &target_link,
                      &ignored);
  }
  return RunPersonAudited(
      rc, Method("UnlinkAgencyId"),
      target_person.empty() ? "persons" : PersonResourceName(target_person),
      nullptr,
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail*) -> absl::Status {
        FieldViolations violations;
        std::string person_id, link_id;
        ParseAgencyIdName(request.name(), "name", &person_id, &link_id,
                          &violations);
        if (request.etag().empty()) violations.Add("etag", "is required");
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        if (person->merged) return MergedError(*person);
        absl::StatusOr<std::optional<v1::AgencyId>> link =
            FindLink(store, person_id, request.name());
        if (!link.ok()) return link.status();
        if (!link->has_value()) {
          return absl::NotFoundError("no such agency id of this person");
        }
        if ((*link)->issuing_agency() != AgencyResourceName(caller.id)) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "NOT_ISSUING_AGENCY",
                                 "only the agency that linked the id may "
                                 "unlink it");
        }
        absl::StatusOr<v1::AgencyId> unlinked =
            store.UnlinkAgencyId(person_id, link_id, request.etag());
        if (!unlinked.ok()) return unlinked.status();
        *response = *std::move(unlinked);
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoListAgencyIds(
    const RequestContext& rc, const v1::ListAgencyIdsRequest& request,
    v1::ListAgencyIdsResponse* response) {
  return RunPersonAudited(
      rc, Method("ListAgencyIds"), PersonTarget(request.parent()),
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        const int page_size = api::NormalizePageSize(request.page_size(),
                                                     "page_size", &violations);
        const std::string fingerprint = absl::StrCat(
            request.parent(), "|", request.include_unlinked() ? 1 : 0);
        const std::string after = api::DecodePageToken(
            request.page_token(), fingerprint, "page_token", &violations);
        if (!violations.empty()) return violations.ToStatus();

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> person = store.Get(person_id);
        if (!person.ok()) return person.status();
        trail->resource = person->person.name();
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *person);
        if (!access.ok()) return access.status();
        absl::StatusOr<AgencyIdPage> page = store.ListAgencyIds(
            person->id, request.include_unlinked(), after, page_size);
        if (!page.ok()) return page.status();
        response->Clear();
        for (v1::AgencyId& link : page->agency_ids) {
          *response->add_agency_ids() = std::move(link);
        }
        if (!page->next_cursor.empty()) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, page->next_cursor));
        }
        return absl::OkStatus();
      },
      nullptr);
}

absl::Status IdentityServiceImpl::DoLookupPersonByAgencyId(
    const RequestContext& rc, const v1::LookupPersonByAgencyIdRequest& request,
    v1::Person* response) {
  return RunPersonAudited(
      rc, Method("LookupPersonByAgencyId"), "persons",
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        ValidateAgencyIdInput(request.kind(), request.value(), "kind", "value",
                              &violations);
        std::string issuer = AgencyResourceName(caller.id);
        const bool national = v1::AgencyIdKind_IsValid(request.kind()) &&
                              IsNationalAgencyIdKind(request.kind());
        if (!request.issuing_agency().empty()) {
          if (national) {
            violations.Add("issuing_agency",
                           "must be empty for national kinds");
          } else {
            const std::string id = ParseAgencyName(
                request.issuing_agency(), "issuing_agency", &violations);
            issuer = AgencyResourceName(id);
          }
        }
        if (!violations.empty()) return violations.ToStatus();

        // One answer for "no such id" and "an id of a person the caller may
        // not read": the lookup never tells whether an id is in use.
        const absl::Status not_found = ErrorWithReason(
            absl::StatusCode::kNotFound, "AGENCY_ID_NOT_FOUND",
            "no person the calling agency may read has this agency id");
        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.LookupByAgencyId(
            request.kind(), NormalizeAgencyIdValue(request.value()), issuer);
        if (!found.ok()) {
          return found.status().code() == absl::StatusCode::kNotFound
                     ? not_found
                     : found.status();
        }
        absl::StatusOr<PersonAccess> access =
            DecidePersonAccess(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        trail->resource = found->person.name();
        if (!access->core.allowed) {
          trail->reason = "NOT_READABLE";
          return not_found;
        }
        *response = std::move(found->person);
        ShowTo(*access, response);
        return absl::OkStatus();
      },
      nullptr);
}

// gRPC entry points: request context from the call, then the Do* method.

void IdentityServiceImpl::RegisterPersonRpcs() {
  Handle("CreatePerson", this, &IdentityServiceImpl::DoCreatePerson);
  Handle("GetPerson", this, &IdentityServiceImpl::DoGetPerson);
  Handle("UpdatePerson", this, &IdentityServiceImpl::DoUpdatePerson);
  Handle("ListPersons", this, &IdentityServiceImpl::DoListPersons);
  Handle("SearchPersons", this, &IdentityServiceImpl::DoSearchPersons);
  Handle("FindDuplicates", this, &IdentityServiceImpl::DoFindDuplicates);
  Handle("MergePersons", this, &IdentityServiceImpl::DoMergePersons);
  Handle("LinkAgencyId", this, &IdentityServiceImpl::DoLinkAgencyId);
  Handle("UnlinkAgencyId", this, &IdentityServiceImpl::DoUnlinkAgencyId);
  Handle("ListAgencyIds", this, &IdentityServiceImpl::DoListAgencyIds);
  Handle("LookupPersonByAgencyId",
         [this](const RequestContext& rc,
                const v1::LookupPersonByAgencyIdRequest& r, v1::Person* out) {
           return DoLookupPersonByAgencyId(rc, r, out);
         });
}

}  // namespace lotse::identity
