// The person and agency-id RPCs of IdentityServiceImpl (issue 3, items 2,
// 3, 5 and 6). The pattern is that of the agency RPCs in
// identity_service.cc: ServeUnary -> Do* -> RunPersonAudited. Reads run in
// a read-only transaction and commit only their audit records afterwards;
// CreatePerson checks for duplicates in the read phase and re-checks what
// changed since in its write phase; the other changes run in one write
// transaction. Events are enqueued before the audit record.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/api/idempotency.h"
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
#include "services/identity/service/identity_service.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/person_store.h"
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

// The policy's core identity read request for `caller` about person
// `person_id`, before the relations are known.
AccessRequest CoreIdentityRequest(const RequestContext& rc,
                                  const AgencyRecord& caller,
                                  const std::string& person_id) {
  AccessRequest request;
  request.agency_id = caller.id;
  request.legal_domain = LegalDomainFromName(caller.legal_domain)
                             .value_or(LegalDomain::kUnspecified);
  request.person_id = person_id;
  request.category = DataCategory::kCoreIdentity;
  request.purpose = rc.purpose;
  return request;
}

// Whether `agency_name` holds a linked agency id for person `person_id`.
absl::StatusOr<bool> HoldsAgencyId(PersonStore& store,
                                   const std::string& person_id,
                                   const std::string& agency_name) {
  // Links are few per person; page through them all to find the caller's.
  std::string cursor;
  do {
    absl::StatusOr<AgencyIdPage> page = store.ListAgencyIds(
        person_id, /*include_unlinked=*/false, cursor, api::kMaxPageSize);
    if (!page.ok()) return page.status();
    for (const v1::AgencyId& link : page->agency_ids) {
      if (link.issuing_agency() == agency_name) return true;
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return false;
}

// The read decision for the core identity of `person` (the survivor when
// the id was merged), from the relations identity records itself.
absl::Status CheckCoreIdentityRead(PersonStore& store,
                                   const AccessPolicy& policy,
                                   const RequestContext& rc,
                                   const AgencyRecord& caller,
                                   const PersonLookup& person) {
  const std::string caller_name = AgencyResourceName(caller.id);
  AccessRequest request = CoreIdentityRequest(rc, caller, person.id);
  request.caller_wrote_data = person.person.creating_agency() == caller_name;
  if (!request.caller_wrote_data) {
    absl::StatusOr<bool> holder = HoldsAgencyId(store, person.id, caller_name);
    if (!holder.ok()) return holder.status();
    if (*holder) request.relations.push_back(Relation::kAgencyIdHolder);
    // Relations other services told identity of (relation_events.h).
    absl::StatusOr<std::vector<Relation>> known =
        RelationsBetween(store.transaction(), person.id, caller.id);
    if (!known.ok()) return known.status();
    request.relations.insert(request.relations.end(), known->begin(),
                             known->end());
  }
  const AccessDecision decision = policy.Decide(request, absl::Now());
  if (decision.allowed) return absl::OkStatus();
  return ErrorWithReason(
      absl::StatusCode::kPermissionDenied,
      AccessDenialReasonName(decision.denial_reason),
      "the calling agency may not read this person's core identity");
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

// The records of scored[begin, end), for the response.
absl::StatusOr<std::vector<ScoredCandidate>> WithPersons(
    PersonStore& store, std::vector<ScoredId>& scored, size_t begin,
    size_t end) {
  std::vector<ScoredCandidate> out;
  for (size_t i = begin; i < end && i < scored.size(); ++i) {
    absl::StatusOr<PersonLookup> found = store.Get(scored[i].id);
    if (!found.ok()) return found.status();
    out.push_back({std::move(found->person), std::move(scored[i].match)});
  }
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
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  FieldViolations ignored;
  if (parts.size() == 4 && parts[0] == "persons" && IsValidPersonId(parts[1]) &&
      parts[2] == "agencyIds" &&
      api::ValidateToken(parts[3], field, 1, 64,
                         "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                         "[A-Za-z0-9_-]", &ignored)) {
    *person_id = std::string(parts[1]);
    *link_id = std::string(parts[3]);
    return true;
  }
  violations->Add(field, "must be persons/{person}/agencyIds/{agency_id}");
  return false;
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
                                                   const PersonBody& write) {
  if (access_policy_ == nullptr || matcher_ == nullptr) return NotConfigured();
  // Until the caller is resolved, the audit trail names the certificate.
  std::string agency_id = rc.caller.agency_id;
  PersonTrail trail;
  trail.resource = target;
  AgencyRecord caller;
  auto check_caller = [&](Transaction& tx) -> absl::Status {
    absl::StatusOr<AgencyRecord> checked = CheckCaller(tx, rc);
    if (!checked.ok()) return checked.status();
    caller = *std::move(checked);
    agency_id = caller.id;
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
    if (absl::Status s =
            CheckCoreIdentityRead(store, *access_policy_, rc, caller, *first);
        !s.ok()) {
      return s;
    }
    *response = first->person;
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
        if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                   caller, *found);
            !s.ok()) {
          return s;
        }
        *response = std::move(found->person);
        return absl::OkStatus();
      },
      nullptr);
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
        if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                   caller, *found);
            !s.ok()) {
          return s;
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
        const absl::Time now = absl::Now();
        response->Clear();
        for (v1::Person& person : page->persons) {
          // Listed because the caller created the person or holds an id
          // for them; the deployment's rules still decide whether that
          // relation lets its domain read them, as for GetPerson.
          AccessRequest decide = CoreIdentityRequest(
              rc, caller, person.name().substr(sizeof("persons/") - 1));
          decide.caller_wrote_data =
              person.creating_agency() == AgencyResourceName(caller.id);
          if (!decide.caller_wrote_data) {
            // Holds an id for them, or another service told identity of a
            // relation: read which, as GetPerson does.
            absl::StatusOr<std::vector<Relation>> known = RelationsBetween(
                tx, person.name().substr(sizeof("persons/") - 1), caller.id);
            if (!known.ok()) return known.status();
            decide.relations = *std::move(known);
            absl::StatusOr<bool> holder = HoldsAgencyId(
                store, person.name().substr(sizeof("persons/") - 1),
                AgencyResourceName(caller.id));
            if (!holder.ok()) return holder.status();
            if (*holder) decide.relations.push_back(Relation::kAgencyIdHolder);
          }
          if (!access_policy_->Decide(decide, now).allowed) continue;
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
        absl::StatusOr<PreparedRecord> query = matcher_->Prepare(
            SearchRecord(request.name_query(), request.birth_date()));
        if (!query.ok()) return query.status();
        absl::StatusOr<Candidates> candidates = store.Search(*query, {});
        if (!candidates.ok()) return candidates.status();
        absl::StatusOr<std::vector<ScoredId>> scored =
            ScoreCandidates(store, match_forms_.get(), *matcher_, *query,
                            candidates->person_ids, min_score);
        if (!scored.ok()) return scored.status();
        response->Clear();
        const int end =
            std::min<int>(static_cast<int>(scored->size()), offset + page_size);
        absl::StatusOr<std::vector<ScoredCandidate>> page =
            WithPersons(store, *scored, offset, end);
        if (!page.ok()) return page.status();
        for (const ScoredCandidate& candidate : *page) {
          ToProto(candidate, response->add_results());
          trail->extra.push_back({candidate.person.name(), ""});
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
        absl::StatusOr<PreparedRecord> query;
        if (!subject_id.empty()) {
          absl::StatusOr<PersonLookup> subject = store.Get(subject_id);
          if (!subject.ok()) return subject.status();
          trail->resource = subject->person.name();
          // The candidates would say who the subject resembles, i.e. reveal
          // its identity: only a caller that may read it may ask.
          if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                     caller, *subject);
              !s.ok()) {
            return s;
          }
          subject_id = subject->id;
          // The subject's stored prepared form.
          absl::StatusOr<std::vector<MatchCandidate>> form =
              match_forms_->Load(store, {subject_id});
          if (!form.ok()) return form.status();
          if (form->empty()) return absl::InternalError("subject vanished");
          query = std::move(form->front().prepared);
        } else {
          query = matcher_->Prepare(ToMatchRecord(request.draft()));
        }
        if (!query.ok()) return query.status();
        absl::StatusOr<Candidates> candidates =
            store.FindCandidates(*query, {}, subject_id);
        if (!candidates.ok()) return candidates.status();
        absl::StatusOr<std::vector<ScoredId>> scored =
            ScoreCandidates(store, match_forms_.get(), *matcher_, *query,
                            candidates->person_ids, min_score);
        if (!scored.ok()) return scored.status();
        response->Clear();
        response->set_duplicate_threshold(kStrongDuplicateScore);
        absl::StatusOr<std::vector<ScoredCandidate>> page =
            WithPersons(store, *scored, 0, page_size);
        if (!page.ok()) return page.status();
        for (const ScoredCandidate& candidate : *page) {
          ToProto(candidate, response->add_candidates());
          trail->extra.push_back({candidate.person.name(), ""});
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
          if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                     caller, *survivor);
              !s.ok()) {
            return s;
          }
          *response = std::move(survivor->person);
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
        for (const PersonLookup* person : {&*survivor, &*merged}) {
          trail->resource = person->person.name();
          if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                     caller, *person);
              !s.ok()) {
            return s;
          }
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
        return absl::OkStatus();
      });
}

absl::Status IdentityServiceImpl::DoLinkAgencyId(
    const RequestContext& rc, const v1::LinkAgencyIdRequest& request,
    v1::AgencyId* response) {
  const std::string method = Method("LinkAgencyId");
  return RunPersonAudited(
      rc, method, PersonTarget(request.parent()), nullptr,
      [&](Transaction& tx, const AgencyRecord& caller,
          PersonTrail* trail) -> absl::Status {
        FieldViolations violations;
        const std::string person_id =
            ParsePersonName(request.parent(), "parent", &violations);
        api::ValidateRequestId(request.request_id(), "request_id", &violations);
        if (!request.has_agency_id())
          violations.Add("agency_id", "is required");
        ValidateAgencyIdInput(request.agency_id().kind(),
                              request.agency_id().value(), "agency_id.kind",
                              "agency_id.value", &violations);
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

        absl::StatusOr<LinkResult> linked = store.LinkAgencyId(
            person_id, request.agency_id().kind(), request.agency_id().value(),
            AgencyResourceName(caller.id));
        if (!linked.ok()) return linked.status();
        if (absl::Status s = api::RecordRequestId(tx, key, fingerprint,
                                                  linked->agency_id.name());
            !s.ok()) {
          return s;
        }
        *response = std::move(linked->agency_id);
        return absl::OkStatus();
      });
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
        if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                   caller, *person);
            !s.ok()) {
          return s;
        }
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

        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.LookupByAgencyId(
            request.kind(), NormalizeAgencyIdValue(request.value()), issuer);
        if (!found.ok()) return found.status();
        trail->resource = found->person.name();
        if (absl::Status s = CheckCoreIdentityRead(store, *access_policy_, rc,
                                                   caller, *found);
            !s.ok()) {
          return s;
        }
        *response = std::move(found->person);
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
