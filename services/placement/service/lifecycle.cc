// The placement service's share of the data lifecycle: erasing a person
// (ErasePlacementPerson, the EraseFn of lifecycle::ApplyPersonErased) and
// the retention purge tasks (PlacementPurgeTasks). See placement_service.h.
#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/lifecycle/holds.h"
#include "common/storage/rows.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::lifecycle::ErasureResult;
using ::lotse::lifecycle::PurgeBatch;
using ::lotse::lifecycle::PurgeTask;
using ::lotse::lifecycle::RetentionRule;
using ::lotse::lifecycle::RetentionRules;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;

namespace {

bool Keeps(const RetentionRule* rule) {
  return rule != nullptr && rule->keep_on_erasure;
}

// Adds `count` records of `kind` kept until their rule's period from
// `anchor` ends (no anchor yet: kept without end).
void AddKept(ErasureResult* result, const std::string& kind,
             const RetentionRule& rule, std::optional<absl::Time> anchor) {
  const absl::Time until =
      anchor ? rule.DueAt(*anchor) : absl::InfiniteFuture();
  for (ErasureResult::Kept& k : result->kept) {
    if (k.kind == kind) {
      ++k.count;
      k.keep_until = std::max(k.keep_until, until);
      return;
    }
  }
  result->kept.push_back({kind, 1, until});
}

bool Ended(v1::PlacementState state) {
  return state == v1::PLACEMENT_STATE_HIRED ||
         state == v1::PLACEMENT_STATE_REJECTED ||
         state == v1::PLACEMENT_STATE_WITHDRAWN;
}

}  // namespace

absl::StatusOr<ErasureResult> ErasePlacementPerson(Transaction& tx,
                                                   const std::string& person_id,
                                                   const RetentionRules& rules,
                                                   absl::Time now) {
  ErasureResult result;
  const RetentionRule* profile_rule = rules.Find("candidate-profile");
  const RetentionRule* placement_rule = rules.Find("placement");

  absl::StatusOr<std::optional<CandidateRow>> candidate =
      ReadCandidate(tx, person_id);
  if (!candidate.ok()) return candidate.status();
  const bool has_profile =
      candidate->has_value() && (*candidate)->merged_into != kErasedCandidate;
  if (has_profile && Keeps(profile_rule)) {
    AddKept(&result, "candidate-profile", *profile_rule,
            api::FromTimestamp((*candidate)->profile.update_time()));
  } else {
    // The facts follow the profile: a new change-counter value lets every
    // replica's match index drop the candidate.
    absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
    if (!seq.ok()) return seq.status();
    if (has_profile) {
      if (absl::Status s = EraseCandidate(tx, person_id, *seq); !s.ok()) {
        return s;
      }
      ++result.erased;
    }
    absl::StatusOr<std::optional<PersonFacts>> facts = ReadFacts(tx, person_id);
    if (!facts.ok()) return facts.status();
    if (facts->has_value()) {
      if (absl::Status s = DeleteFacts(tx, person_id); !s.ok()) return s;
      ++result.erased;
    }
  }

  absl::StatusOr<std::vector<PlacementRow>> placements =
      PlacementsOfPerson(tx, person_id);
  if (!placements.ok()) return placements.status();
  for (PlacementRow& p : *placements) {
    if (Keeps(placement_rule)) {
      std::optional<absl::Time> end;
      if (Ended(p.placement.state())) {
        end = api::FromTimestamp(p.placement.update_time());
      }
      AddKept(&result, "placement", *placement_rule, end);
      continue;
    }
    // The statistics count placements: the row stays, without the person.
    if (absl::Status s = AnonymisePlacement(tx, &p); !s.ok()) return s;
    ++result.erased;
  }

  // Training-toleration notices name the person: they go.
  absl::StatusOr<std::vector<NoticeRow>> notices =
      NoticesOfPerson(tx, person_id);
  if (!notices.ok()) return notices.status();
  for (const NoticeRow& n : *notices) {
    if (absl::Status s = DeleteNotice(tx, n.id); !s.ok()) return s;
    ++result.erased;
  }
  if (absl::Status s = DeleteMergesOf(tx, person_id); !s.ok()) return s;
  (void)now;
  return result;
}

namespace {

// One kind's purge: the records `from_where` selects (a FROM and WHERE
// clause whose anchor test compares with $2, the cutoff), with `id_sql`
// and `person_sql` (the person id, or "" for records of nobody) as the
// columns; `purge` removes one and returns how many records went.
struct PurgeQuery {
  std::string kind;
  std::string id_sql;
  std::string person_sql;
  std::string from_where;
  std::function<absl::StatusOr<int64_t>(Transaction&, const std::string& id)>
      purge;
};

absl::StatusOr<PurgeBatch> RunPurge(const PurgeQuery& q, Transaction& tx,
                                    absl::Time cutoff, absl::Time now,
                                    int limit) {
  // The hold condition binds $1 (now); "$1 >= 0" keeps $1 in the query
  // whatever the condition looks like. Records of nobody are never held.
  const std::string not_held = q.person_sql.empty()
                                   ? "1 = 1"
                                   : lifecycle::NotHeldCondition(q.person_sql);
  const std::string person_sql = q.person_sql.empty() ? "''" : q.person_sql;
  absl::StatusOr<Rows> rows =
      tx.Query(absl::StrCat("SELECT ", q.id_sql, ", ", person_sql, " ",
                            q.from_where, " AND $1 >= 0 AND (", not_held,
                            ") ORDER BY ", q.id_sql, " LIMIT $3"),
               {ToMicros(now), ToMicros(cutoff), static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  PurgeBatch batch;
  for (const storage::Row& r : *rows) {
    absl::StatusOr<std::string> id = r.GetText(0);
    absl::StatusOr<std::string> person = r.GetText(1);
    if (!id.ok()) return id.status();
    if (!person.ok()) return person.status();
    absl::StatusOr<int64_t> purged = q.purge(tx, *id);
    if (!purged.ok()) return purged.status();
    batch.purged += *purged;
    if (!person->empty() && !absl::StartsWith(*person, "erased:") &&
        std::find(batch.persons.begin(), batch.persons.end(), *person) ==
            batch.persons.end()) {
      batch.persons.push_back(*person);
    }
  }
  batch.more = static_cast<int>(rows->size()) >= limit;
  if (!batch.more && !q.person_sql.empty()) {
    absl::StatusOr<Rows> held =
        tx.Query(absl::StrCat("SELECT COUNT(*) ", q.from_where,
                              " AND $1 >= 0 AND NOT (", not_held, ")"),
                 {ToMicros(now), ToMicros(cutoff)});
    if (!held.ok()) return held.status();
    absl::StatusOr<int64_t> n = held->front().GetInt(0);
    if (!n.ok()) return n.status();
    batch.held = *n;
  }
  return batch;
}

PurgeTask TaskOf(PurgeQuery q) {
  PurgeTask task;
  task.kind = q.kind;
  task.run = [q = std::move(q)](Transaction& tx, absl::Time cutoff,
                                absl::Time now, int limit) {
    return RunPurge(q, tx, cutoff, now, limit);
  };
  return task;
}

}  // namespace

std::vector<PurgeTask> PlacementPurgeTasks() {
  std::vector<PurgeTask> tasks;
  // A profile not changed for the period goes as an erased person's does
  // (a tombstone the match index follows), with the person's facts.
  tasks.push_back(TaskOf(
      {"candidate-profile", "c.person_id", "c.person_id",
       absl::StrCat("FROM placement_candidates c WHERE (c.merged_into IS "
                    "NULL OR c.merged_into <> '",
                    kErasedCandidate, "') AND c.change_us <= $2"),
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
         if (!seq.ok()) return seq.status();
         if (absl::Status s = EraseCandidate(tx, id, *seq); !s.ok()) return s;
         if (absl::Status s = DeleteFacts(tx, id); !s.ok()) return s;
         return 1;
       }}));
  // An ended placement loses its person; the statistics still count it.
  tasks.push_back(TaskOf(
      {"placement", "p.id", "p.person_id",
       "FROM placement_placements p WHERE p.person_id NOT LIKE 'erased:%' "
       "AND p.end_us <= $2",
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         absl::StatusOr<std::optional<PlacementRow>> p = ReadPlacement(tx, id);
         if (!p.ok()) return p.status();
         if (!p->has_value()) return 0;
         PlacementRow row = **p;
         if (absl::Status s = AnonymisePlacement(tx, &row); !s.ok()) return s;
         return 1;
       }}));
  // A withdrawn offer goes unless placements were made to it: the
  // statistics find a placement's place through its offer.
  tasks.push_back(TaskOf(
      {"offer", "o.id", "",
       "FROM placement_offers o WHERE o.withdraw_us <= $2 AND NOT EXISTS "
       "(SELECT 1 FROM placement_placements p WHERE p.offer_id = o.id)",
       [](Transaction& tx, const std::string& id) -> absl::StatusOr<int64_t> {
         if (absl::Status s = DeleteOffer(tx, id); !s.ok()) return s;
         return 1;
       }}));
  return tasks;
}

}  // namespace lotse::placement
