#include "services/cases/store/lifecycle_store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "lotse/cases/v1/case.pb.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases {
namespace {

using storage::Bytes;
using storage::Row;
using storage::Rows;
using storage::Transaction;

constexpr int64_t kClosed = v1::CASE_STATE_CLOSED;

int64_t TsMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::string PersonId(absl::string_view person) {
  absl::ConsumePrefix(&person, "persons/");
  return std::string(person);
}

absl::StatusOr<int64_t> Count(Transaction& tx, const std::string& sql,
                              std::vector<storage::Value> params) {
  absl::StatusOr<Rows> rows = tx.Query(sql, std::move(params));
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return int64_t{0};
  return rows->front().GetInt(0);
}

// Empties the event bodies of the case that must not stay: all of them,
// or with `key_shredded` those not sealed under `person`'s key (written in
// the clear before sealing existed, or under a person merged away).
absl::StatusOr<int64_t> EmptyEventBodies(Transaction& tx,
                                         const std::string& case_id,
                                         const std::string& person,
                                         bool key_shredded) {
  absl::StatusOr<Rows> rows =
      tx.Query("SELECT seq, person, body FROM case_events WHERE case_id = $1",
               {case_id});
  if (!rows.ok()) return rows.status();
  int64_t emptied = 0;
  for (const Row& row : *rows) {
    absl::StatusOr<int64_t> seq = row.GetInt(0);
    if (!seq.ok()) return seq.status();
    absl::StatusOr<std::string> of = row.GetText(1);
    if (!of.ok()) return of.status();
    absl::StatusOr<std::string> body = row.GetBytes(2);
    if (!body.ok()) return body.status();
    if (body->empty()) continue;
    if (key_shredded && PersonId(*of) == person && lifecycle::IsSealed(*body)) {
      continue;  // unreadable once the key is gone
    }
    absl::StatusOr<int64_t> n = tx.Execute(
        "UPDATE case_events SET body = $2 WHERE seq = $1", {*seq, Bytes{""}});
    if (!n.ok()) return n.status();
    ++emptied;
  }
  return emptied;
}

// What erasure keeps of one kind, summed over the person's cases.
void AddKept(std::map<std::string, lifecycle::ErasureResult::Kept>* kept,
             const lifecycle::RetentionRule& rule, int64_t count,
             std::optional<absl::Time> anchor) {
  lifecycle::ErasureResult::Kept& k = (*kept)[rule.kind];
  k.kind = rule.kind;
  k.count += count;
  const absl::Time until =
      anchor ? rule.DueAt(*anchor) : absl::InfiniteFuture();
  k.keep_until = std::max(k.keep_until, until);
}

// Due (closed at or before the cutoff) cases, as a condition on the cases
// table `c`; $1 is now (the hold condition's), $2 the cutoff.
const std::string& DueCase() {
  static const std::string* const due = new std::string(absl::StrCat(
      "c.state = ", kClosed, " AND c.close_us > 0 AND c.close_us <= $2"));
  return *due;
}

std::string NotHeld() {
  return lifecycle::NotHeldCondition("SUBSTR(c.person, 9)", "'cases/' || c.id");
}

absl::StatusOr<lifecycle::PurgeBatch> PurgeCases(Transaction& tx,
                                                 absl::Time cutoff,
                                                 absl::Time now, int limit) {
  if (absl::StatusOr<int> filled = BackfillCloseTimes(tx, limit);
      !filled.ok()) {
    return filled.status();
  }
  const std::vector<storage::Value> params = {ToMicros(now), ToMicros(cutoff),
                                              static_cast<int64_t>(limit)};
  absl::StatusOr<Rows> rows = tx.Query(
      absl::StrCat("SELECT c.id, c.person FROM cases c WHERE ", DueCase(),
                   " AND ", NotHeld(), " ORDER BY c.close_us, c.id LIMIT $3"),
      params);
  if (!rows.ok()) return rows.status();
  lifecycle::PurgeBatch batch;
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    absl::StatusOr<std::string> person = row.GetText(1);
    if (!person.ok()) return person.status();
    if (absl::Status s = LockCase(tx, *id); !s.ok()) return s;
    absl::StatusOr<int64_t> removed =
        RemoveCase(tx, *id, PersonId(*person), RemoveCaseOptions());
    if (!removed.ok()) return removed.status();
    ++batch.purged;
    const std::string p = PersonId(*person);
    if (std::find(batch.persons.begin(), batch.persons.end(), p) ==
        batch.persons.end()) {
      batch.persons.push_back(p);
    }
  }
  batch.more = static_cast<int>(rows->size()) >= limit;
  if (!batch.more) {
    absl::StatusOr<int64_t> held =
        Count(tx,
              absl::StrCat("SELECT COUNT(*) FROM cases c WHERE ", DueCase(),
                           " AND NOT (", NotHeld(), ")"),
              {ToMicros(now), ToMicros(cutoff)});
    if (!held.ok()) return held.status();
    batch.held = *held;
  }
  return batch;
}

absl::StatusOr<lifecycle::PurgeBatch> PurgeNotes(Transaction& tx,
                                                 absl::Time cutoff,
                                                 absl::Time now, int limit) {
  if (absl::StatusOr<int> filled = BackfillCloseTimes(tx, limit);
      !filled.ok()) {
    return filled.status();
  }
  absl::StatusOr<Rows> rows = tx.Query(
      absl::StrCat("SELECT n.id, c.person FROM notes n JOIN cases c ON "
                   "c.id = n.case_id WHERE ",
                   DueCase(), " AND ", NotHeld(),
                   " ORDER BY c.close_us, n.id LIMIT $3"),
      {ToMicros(now), ToMicros(cutoff), static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  lifecycle::PurgeBatch batch;
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    absl::StatusOr<std::string> person = row.GetText(1);
    if (!person.ok()) return person.status();
    absl::StatusOr<int64_t> n =
        tx.Execute("DELETE FROM notes WHERE id = $1", {*id});
    if (!n.ok()) return n.status();
    batch.purged += *n;
    const std::string p = PersonId(*person);
    if (std::find(batch.persons.begin(), batch.persons.end(), p) ==
        batch.persons.end()) {
      batch.persons.push_back(p);
    }
  }
  batch.more = static_cast<int>(rows->size()) >= limit;
  if (!batch.more) {
    absl::StatusOr<int64_t> held =
        Count(tx,
              absl::StrCat("SELECT COUNT(*) FROM notes n JOIN cases c ON "
                           "c.id = n.case_id WHERE ",
                           DueCase(), " AND NOT (", NotHeld(), ")"),
              {ToMicros(now), ToMicros(cutoff)});
    if (!held.ok()) return held.status();
    batch.held = *held;
  }
  return batch;
}

}  // namespace

absl::StatusOr<int64_t> RemoveCase(Transaction& tx, const std::string& case_id,
                                   const std::string& person,
                                   const RemoveCaseOptions& options) {
  int64_t records = 0;
  auto run = [&](const char* sql, bool counts) -> absl::Status {
    absl::StatusOr<int64_t> n = tx.Execute(sql, {case_id});
    if (!n.ok()) return n.status();
    if (counts) records += *n;
    return absl::OkStatus();
  };
  // The statistics facts first, while the steps are still there.
  if (absl::Status s = run(
          "INSERT INTO step_statistics (kind, receiving_agency, "
          "municipality_code, create_us, accept_us, start_us, state, due_key) "
          "SELECT kind, receiving_agency, municipality_code, create_us, "
          "accept_us, start_us, state, due_key FROM steps WHERE case_id = $1",
          false);
      !s.ok()) {
    return s;
  }
  for (const auto& [sql, counts] : std::vector<std::pair<const char*, bool>>{
           {"DELETE FROM step_dependencies WHERE step_id IN "
            "(SELECT id FROM steps WHERE case_id = $1)",
            false},
           {"DELETE FROM steps WHERE case_id = $1", true},
           {"DELETE FROM plan_versions WHERE case_id = $1", true},
           {"DELETE FROM unassigned_activities WHERE case_id = $1", true},
           {"DELETE FROM case_event_audience WHERE case_id = $1", false}}) {
    if (absl::Status s = run(sql, counts); !s.ok()) return s;
  }
  absl::StatusOr<int64_t> emptied =
      EmptyEventBodies(tx, case_id, person, options.key_shredded);
  if (!emptied.ok()) return emptied.status();
  records += *emptied;
  if (options.keep_notes) return records;
  for (const auto& [sql, counts] : std::vector<std::pair<const char*, bool>>{
           {"DELETE FROM notes WHERE case_id = $1", true},
           {"DELETE FROM case_participants WHERE case_id = $1", false},
           {"DELETE FROM cases WHERE id = $1", true}}) {
    if (absl::Status s = run(sql, counts); !s.ok()) return s;
  }
  return records;
}

absl::StatusOr<lifecycle::ErasureResult> ErasePersonCases(
    Transaction& tx, const std::string& person,
    const lifecycle::RetentionRules& rules, absl::Time now) {
  (void)now;  // what is kept is due from its case's close, not from now
  const std::string name = absl::StrCat("persons/", person);
  const lifecycle::RetentionRule* case_rule = rules.Find("case");
  const lifecycle::RetentionRule* note_rule = rules.Find("note");
  const bool keep_cases = case_rule != nullptr && case_rule->keep_on_erasure;
  const bool keep_notes = note_rule != nullptr && note_rule->keep_on_erasure;
  lifecycle::ErasureResult result;
  std::map<std::string, lifecycle::ErasureResult::Kept> kept;
  absl::StatusOr<std::vector<std::string>> ids = CasesOfPerson(tx, name);
  if (!ids.ok()) return ids.status();
  for (const std::string& id : *ids) {
    if (absl::Status s = LockCase(tx, id); !s.ok()) return s;
    absl::StatusOr<std::optional<CaseRow>> c = ReadCase(tx, id);
    if (!c.ok()) return c.status();
    if (!c->has_value()) continue;
    const v1::Case& record = (*c)->record;
    std::optional<absl::Time> closed;
    if (record.state() == v1::CASE_STATE_CLOSED && record.has_close_time()) {
      closed = FromMicros(TsMicros(record.close_time()));
    }
    int64_t notes = 0;
    if (keep_notes) {
      absl::StatusOr<int64_t> n =
          Count(tx, "SELECT COUNT(*) FROM notes WHERE case_id = $1", {id});
      if (!n.ok()) return n.status();
      notes = *n;
    }
    if (keep_cases) {
      // The whole case stays, its notes only if their rule keeps them too.
      AddKept(&kept, *case_rule, 1, closed);
      if (notes > 0) AddKept(&kept, *note_rule, notes, closed);
      if (!keep_notes) {
        absl::StatusOr<int64_t> n =
            tx.Execute("DELETE FROM notes WHERE case_id = $1", {id});
        if (!n.ok()) return n.status();
        result.erased += *n;
      }
      continue;
    }
    RemoveCaseOptions options;
    options.key_shredded = true;
    options.keep_notes = notes > 0;
    if (notes > 0) AddKept(&kept, *note_rule, notes, closed);
    absl::StatusOr<int64_t> removed = RemoveCase(tx, id, person, options);
    if (!removed.ok()) return removed.status();
    result.erased += *removed;
  }
  // Activities recorded for the person before any case was opened.
  absl::StatusOr<int64_t> n = tx.Execute(
      "DELETE FROM unassigned_activities WHERE person = $1 AND case_id = ''",
      {name});
  if (!n.ok()) return n.status();
  result.erased += *n;
  for (auto& [kind, k] : kept) result.kept.push_back(std::move(k));
  return result;
}

absl::StatusOr<int> BackfillCloseTimes(Transaction& tx, int limit) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT id, body FROM cases WHERE state = $1 AND close_us = 0 LIMIT $2",
      {kClosed, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  int filled = 0;
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    if (!id.ok()) return id.status();
    absl::StatusOr<std::string> body = row.GetBytes(1);
    if (!body.ok()) return body.status();
    v1::Case record;
    if (!record.ParseFromString(*body)) {
      return absl::InternalError("stored record does not parse");
    }
    // The close time; a record without one was closed at its last update.
    const google::protobuf::Timestamp& at =
        record.has_close_time()    ? record.close_time()
        : record.has_update_time() ? record.update_time()
                                   : record.create_time();
    const int64_t us = std::max<int64_t>(1, TsMicros(at));
    absl::StatusOr<int64_t> n =
        tx.Execute("UPDATE cases SET close_us = $2 WHERE id = $1", {*id, us});
    if (!n.ok()) return n.status();
    ++filled;
  }
  return filled;
}

std::vector<lifecycle::PurgeTask> CasePurgeTasks() {
  return {{"case", PurgeCases}, {"note", PurgeNotes}};
}

}  // namespace lotse::cases
