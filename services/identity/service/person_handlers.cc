// The person RPCs of IdentityServiceImpl: CreatePerson, GetPerson,
// UpdatePerson, ListPersons and MergePersons. Search and duplicate listing
// are in search_handlers.cc, agency ids in agency_id_handlers.cc.
//
// Every record of these calls carries the data category CORE_IDENTITY;
// one is written for the call and one for each further person it
// disclosed or involved. Reads run in a read-only transaction and commit
// only their audit records afterwards; CreatePerson checks for duplicates
// in the read phase and re-checks what changed since in its write phase;
// the other changes run in one write phase. Events are enqueued before the
// audit records.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/log.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/consent_store.h"
#include "services/identity/store/lifecycle_store.h"
#include "services/identity/store/relation_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

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
    // The reasons only for those above the threshold.
    if (matcher.Score(query, candidate.prepared) < min_score) continue;
    out.push_back(
        {std::move(candidate.id), matcher.Compare(query, candidate.prepared)});
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

// CreatePerson's duplicate check: what the read phase found against its
// snapshot, then what the write phase adds from persons keyed since.
struct DuplicateCheck {
  int64_t read_stamp = 0;
  PreparedRecord prepared;
  std::vector<std::string> lookup_keys;
  absl::flat_hash_set<std::string> scored_ids;
  // The strong duplicates ("persons/{id}") and the best score among them.
  std::vector<std::string> strong_names;
  double top_score = 0;
};

// The read phase's part: all the ICU and scoring work, outside the write
// lock.
absl::StatusOr<DuplicateCheck> CheckDuplicates(PersonStore& store,
                                               MatchFormCache* cache,
                                               const DuplicateMatcher& matcher,
                                               const v1::Person& person) {
  DuplicateCheck check;
  absl::StatusOr<int64_t> stamp = store.ReadKeyStamp();
  if (!stamp.ok()) return stamp.status();
  check.read_stamp = *stamp;
  absl::StatusOr<PreparedRecord> query = matcher.Prepare(ToMatchRecord(person));
  if (!query.ok()) return query.status();
  check.prepared = *std::move(query);
  check.lookup_keys = matcher.LookupKeys(check.prepared);
  absl::StatusOr<Candidates> candidates =
      store.FindCandidates(check.prepared, {});
  if (!candidates.ok()) return candidates.status();
  check.scored_ids = absl::flat_hash_set<std::string>(
      candidates->person_ids.begin(), candidates->person_ids.end());
  absl::StatusOr<std::vector<ScoredId>> strong =
      ScoreCandidates(store, cache, matcher, check.prepared,
                      candidates->person_ids, kStrongDuplicateScore);
  if (!strong.ok()) return strong.status();
  for (const ScoredId& c : *strong) {
    check.strong_names.push_back(PersonResourceName(c.id));
  }
  check.top_score = strong->empty() ? 0 : strong->front().match.score;
  return check;
}

// The write phase's part: claims the key stamp (on PostgreSQL this waits
// for any other key writer to commit, so the re-check sees its person) and
// scores the persons keyed since the read snapshot that the read phase did
// not see (a concurrent create of the same person). Adds the strong ones to
// `check`; returns whether there were any.
absl::StatusOr<bool> RecheckSinceRead(PersonStore& store,
                                      const DuplicateMatcher& matcher,
                                      DuplicateCheck& check) {
  absl::StatusOr<int64_t> stamp = store.ClaimKeyStamp();
  if (!stamp.ok()) return stamp.status();
  absl::StatusOr<std::vector<std::string>> since =
      store.KeyedSince(check.read_stamp, check.lookup_keys);
  if (!since.ok()) return since.status();
  std::vector<std::string> fresh;
  for (std::string& id : *since) {
    if (!check.scored_ids.contains(id)) fresh.push_back(std::move(id));
  }
  if (fresh.empty()) return false;
  absl::StatusOr<std::vector<ScoredId>> late =
      ScoreCandidates(store, /*cache=*/nullptr, matcher, check.prepared, fresh,
                      kStrongDuplicateScore);
  if (!late.ok()) return late.status();
  for (const ScoredId& c : *late) {
    check.strong_names.push_back(PersonResourceName(c.id));
    check.top_score = std::max(check.top_score, c.match.score);
  }
  return !late->empty();
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
    if (absl::Status s =
            EnqueuePersonEvent(tx, survivor_id, ResidenceChanged(**after));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = MoveConsents(tx, merged_id, survivor_id); !s.ok()) {
    return s;
  }
  return MoveRelations(tx, merged_id, survivor_id);
}

// MergePersons' fields: the survivor's and the merged person's ids.
std::pair<std::string, std::string> ValidateMerge(
    const v1::MergePersonsRequest& request, FieldViolations* violations) {
  api::ValidateRequestId(request.request_id(), "request_id", violations);
  std::string survivor_id =
      ParsePersonName(request.survivor(), "survivor", violations);
  std::string merged_id =
      ParsePersonName(request.merged(), "merged", violations);
  if (request.survivor_etag().empty()) {
    violations->Add("survivor_etag", "is required");
  }
  if (request.merged_etag().empty()) {
    violations->Add("merged_etag", "is required");
  }
  api::ValidateText(request.justification(), "justification",
                    api::TextRules{1, 500, false}, violations);
  if (!survivor_id.empty() && survivor_id == merged_id) {
    violations->Add("merged", "must differ from survivor");
  }
  return {std::move(survivor_id), std::move(merged_id)};
}

absl::Status RequireMergingDomain(const LocalAgency& caller) {
  if (caller.legal_domain == "KOMMUNE" ||
      caller.legal_domain == "AUSLAENDERBEHOERDE" ||
      caller.legal_domain == "BAMF") {
    return absl::OkStatus();
  }
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "only KOMMUNE, AUSLAENDERBEHOERDE and BAMF "
                         "agencies may merge persons");
}

// CreatePerson's answer to a retry whose first call created `recorded`
// ("persons/{id}"): that person (its survivor if it was merged since),
// creating nothing.
absl::Status AnswerCreateRetry(PersonStore& store, const AccessPolicy& policy,
                               AuditedCall& call, const std::string& recorded,
                               v1::Person* response) {
  call.set_target(recorded);
  FieldViolations ignored;
  absl::StatusOr<PersonLookup> first =
      store.Get(ParsePersonName(recorded, "", &ignored));
  if (!first.ok()) return first.status();
  // Merged since into a person the caller may not read: no data.
  absl::StatusOr<PersonAccess> access = RequireCoreIdentityRead(
      store.transaction(), policy, call.rc(), call.caller(), *first);
  if (!access.ok()) return access.status();
  AuditPerson(call, recorded);
  *response = first->person;
  ShowTo(*access, response);
  return absl::OkStatus();
}

}  // namespace

absl::Status IdentityServiceImpl::DoCreatePerson(
    const RequestContext& rc, const v1::CreatePersonRequest& request,
    v1::Person* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "CreatePerson", "persons");
  call.set_target_categories({kCoreIdentity});

  // Read phase: validation and the duplicate check against the snapshot.
  // Whether the request_id was seen is decided in the write phase (its
  // lookup takes a lock, which needs a read-write transaction), so the
  // refusal of a duplicate waits for it: a retry of a create that
  // succeeded must answer with its person, not call it a duplicate of
  // itself.
  DuplicateCheck check;
  // The person as stored: the request's, with romanised names added when
  // it has no Latin one.
  v1::Person person;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency& caller) {
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
    person = request.person();
    if (absl::Status s = AddRomanizedNames(&person); !s.ok()) return s;
    PersonStore store(tx, *matcher_);
    store.set_key_index(key_index_.get());
    absl::StatusOr<DuplicateCheck> found =
        CheckDuplicates(store, match_forms_.get(), *matcher_, person);
    if (!found.ok()) return found.status();
    check = *std::move(found);
    return absl::OkStatus();
  });
  if (!status.ok()) return FinishPersonCall(call, status);

  // Write phase: only what must see the latest committed state — the
  // request_id (a retry, or a concurrent call with the same one), persons
  // keyed since the read snapshot, then the insert.
  status = call.Write([&](Transaction& tx,
                          const LocalAgency& caller) -> absl::Status {
    PersonStore store(tx, *matcher_);
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      return AnswerCreateRetry(store, *access_policy_, call, **seen, response);
    }
    if (!check.strong_names.empty() && !request.confirm_new_person()) {
      return PossibleDuplicate(check.strong_names, check.top_score);
    }
    DuplicateCheck rechecked = check;
    absl::StatusOr<bool> late = RecheckSinceRead(store, *matcher_, rechecked);
    if (!late.ok()) return late.status();
    if (*late && !request.confirm_new_person()) {
      return PossibleDuplicate(rechecked.strong_names, rechecked.top_score);
    }

    absl::StatusOr<v1::Person> created =
        store.Create(person, AgencyResourceName(caller.id), rechecked.prepared);
    if (!created.ok()) return created.status();
    call.set_target(created->name());
    if (absl::Status s = once.Record(tx, created->name()); !s.ok()) return s;
    if (rechecked.strong_names.empty()) {
      AuditPerson(call, created->name());
    } else {
      // The caseworker overrode the duplicate check: the record says so,
      // and each overridden candidate's trail shows it was involved.
      AuditPerson(call, created->name(), "DUPLICATE_CHECK_OVERRIDDEN");
      for (const std::string& name : rechecked.strong_names) {
        AuditPerson(call, name, "DUPLICATE_CANDIDATE_OVERRIDDEN");
      }
    }
    *response = *std::move(created);
    return absl::OkStatus();
  });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoGetPerson(
    const RequestContext& rc, const v1::GetPersonRequest& request,
    v1::Person* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "GetPerson", PersonTarget(request.name()));
  call.set_target_categories({kCoreIdentity});
  call.admit_services();
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParsePersonName(request.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        PersonStore store(tx, *matcher_);
        absl::StatusOr<PersonLookup> found = store.Get(id);
        if (!found.ok()) return found.status();
        // The data shown is the survivor's: its trail records the read.
        const std::string shown = found->person.name();
        call.set_target(shown);
        if (rc.caller.is_service()) {
          // A service shows the record to an agency only after asking
          // CheckAccess for that agency (the cases view does); it needs no
          // contact data and gets none.
          *response = std::move(found->person);
          ShowTo(PersonAccess{}, response);
          AuditPerson(call, shown);
          return absl::OkStatus();
        }
        absl::StatusOr<PersonAccess> access =
            RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *found);
        if (!access.ok()) return access.status();
        *response = std::move(found->person);
        ShowTo(*access, response);
        AuditPerson(call, shown);
        call.AddLegalBasis(LegalBasisOf(access->core), shown);
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoUpdatePerson(
    const RequestContext& rc, const v1::UpdatePersonRequest& request,
    v1::Person* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "UpdatePerson",
                   PersonTarget(request.person().name()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Write(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
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
        // Path names are checked before anything is read; values only against
        // the stored record below, since whether nationality codes and status
        // agree depends on the part the mask leaves alone.
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
          call.set_target(PersonResourceName(id));
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
        // Names or nationalities may have changed, and with them the
        // romanised names.
        if (absl::Status s = AddRomanizedNames(&updated); !s.ok()) return s;
        absl::StatusOr<v1::Person> stored =
            store.Update(id, updated, request.person().etag());
        if (!stored.ok()) return stored.status();
        // The version replaced stays readable as a revision (rectification
        // with history), and the other services learn which fields changed.
        v1::PersonRevision revision;
        *revision.mutable_person() = std::move(found->person);
        revision.mutable_person()->clear_withheld_categories();
        for (const std::string& path : paths) revision.add_changed_fields(path);
        revision.set_changing_agency(AgencyResourceName(caller.id));
        revision.set_changing_actor(rc.actor);
        *revision.mutable_change_time() = stored->update_time();
        absl::StatusOr<int64_t> n = AppendRevision(tx, id, revision);
        if (!n.ok()) return n.status();
        v1::PersonRectified rectified;
        rectified.set_person(PersonResourceName(id));
        rectified.set_revision(RevisionResourceName(id, *n));
        for (const std::string& path : paths) {
          rectified.add_changed_fields(path);
        }
        rectified.set_changing_agency(AgencyResourceName(caller.id));
        if (absl::Status s = EnqueuePersonEvent(tx, id, rectified); !s.ok()) {
          return s;
        }
        // Which fields changed, never their values.
        AuditPerson(call, PersonResourceName(id),
                    absl::StrCat("UPDATED:", absl::StrJoin(paths, ",")));
        *response = *std::move(stored);
        ShowTo(*access, response);
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoListPersons(
    const RequestContext& rc, const v1::ListPersonsRequest& request,
    v1::ListPersonsResponse* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "ListPersons", "persons");
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
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
        AuditPerson(call, "persons");
        for (v1::Person& person : page->persons) {
          // Listed because the caller created the person, holds an id for them
          // or another service told identity of a relation; the deployment's
          // rules still decide whether that relation lets its domain read
          // them, as for GetPerson.
          PersonLookup lookup;
          lookup.id = person.name().substr(sizeof("persons/") - 1);
          lookup.person = person;
          absl::StatusOr<PersonAccess> access =
              DecidePersonAccess(tx, *access_policy_, rc, caller, lookup);
          if (!access.ok()) return access.status();
          if (!access->core.allowed) continue;
          ShowTo(*access, &person);
          AuditPerson(call, person.name());
          call.AddLegalBasis(LegalBasisOf(access->core), person.name());
          *response->add_persons() = std::move(person);
        }
        if (!page->next_cursor.empty()) {
          response->set_next_page_token(
              api::EncodePageToken(fingerprint, page->next_cursor));
        }
        return absl::OkStatus();
      });
  return FinishPersonCall(call, status);
}

absl::Status IdentityServiceImpl::DoMergePersons(
    const RequestContext& rc, const v1::MergePersonsRequest& request,
    v1::Person* response) {
  if (absl::Status s = RequirePersons(); !s.ok()) return s;
  AuditedCall call(call_env_, rc, "MergePersons",
                   PersonTarget(request.survivor()));
  call.set_target_categories({kCoreIdentity});
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& caller)
                                       -> absl::Status {
    if (absl::Status s = RequireMergingDomain(caller); !s.ok()) return s;
    FieldViolations violations;
    const auto [survivor_id, merged_id] = ValidateMerge(request, &violations);
    if (!violations.empty()) return violations.ToStatus();

    PersonStore store(tx, *matcher_);
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    absl::StatusOr<PersonLookup> survivor = store.Get(survivor_id);
    if (!survivor.ok()) return survivor.status();
    if (seen->has_value()) {
      call.set_target(survivor->person.name());
      // Relations may have changed since the first call.
      absl::StatusOr<PersonAccess> access =
          RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *survivor);
      if (!access.ok()) return access.status();
      AuditPerson(call, survivor->person.name());
      *response = std::move(survivor->person);
      ShowTo(*access, response);
      return absl::OkStatus();
    }

    absl::StatusOr<PersonLookup> merged = store.Get(merged_id);
    if (!merged.ok()) return merged.status();
    if (survivor->merged) return MergedError(*survivor);
    if (merged->merged) {
      call.set_target(PersonResourceName(merged_id));
      return MergedError(*merged);
    }
    std::optional<PersonAccess> survivor_access;
    for (const PersonLookup* person : {&*survivor, &*merged}) {
      call.set_target(person->person.name());
      absl::StatusOr<PersonAccess> access =
          RequireCoreIdentityRead(tx, *access_policy_, rc, caller, *person);
      if (!access.ok()) return access.status();
      if (!survivor_access.has_value()) survivor_access = *access;
    }
    call.set_target(survivor->person.name());
    absl::StatusOr<v1::Person> result = store.Merge(
        survivor_id, request.survivor_etag(), merged_id, request.merged_etag());
    if (!result.ok()) return result.status();
    if (absl::Status s = once.Record(tx, result->name()); !s.ok()) return s;

    v1::PersonMerged payload;
    payload.set_survivor(result->name());
    payload.set_merged(PersonResourceName(merged_id));
    payload.set_merging_agency(AgencyResourceName(caller.id));
    *payload.mutable_merge_time() = api::ToTimestamp(absl::Now());
    lotse::events::v1::Event event;
    event.set_ordering_key(result->name());
    event.set_source("identity");
    event.mutable_payload()->PackFrom(payload);
    if (absl::Status s = events::EnqueueEvent(tx, std::move(event)); !s.ok()) {
      return s;
    }
    if (absl::Status s = MoveHistory(tx, survivor_id, merged_id); !s.ok()) {
      return s;
    }
    // The merged person's own trail must show where its data went.
    AuditPerson(call, survivor->person.name());
    AuditPerson(call, PersonResourceName(merged_id), "MERGED_INTO_SURVIVOR");
    *response = *std::move(result);
    ShowTo(*survivor_access, response);
    return absl::OkStatus();
  });
  return FinishPersonCall(call, status);
}

}  // namespace lotse::identity
