#include "services/identity/store/purge_tasks.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/lifecycle/holds.h"

namespace lotse::identity {
namespace {

using ::lotse::lifecycle::PurgeBatch;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;
using ::lotse::storage::Value;

// One kind's queries: `due` is the WHERE condition of a due record of
// table alias `r` with the cutoff as $1 and no other parameter; `key` the
// columns naming one record (the first is the person id); `order` the
// column to purge the oldest first by.
struct KindSql {
  std::string table;
  std::string due;
  std::vector<std::string> key;
  std::string order;
};

absl::StatusOr<PurgeBatch> PurgeDue(Transaction& tx, const KindSql& kind,
                                    absl::Time cutoff, absl::Time now,
                                    int limit) {
  const int64_t cutoff_us = absl::ToUnixMicros(cutoff);
  const int64_t now_us = absl::ToUnixMicros(now);
  std::string columns;
  for (const std::string& k : kind.key) {
    absl::StrAppend(&columns, columns.empty() ? "" : ", ", "r.", k);
  }
  absl::StatusOr<Rows> rows =
      tx.Query(absl::StrCat("SELECT ", columns, " FROM ", kind.table,
                            " r WHERE ", kind.due, " AND ",
                            lifecycle::NotHeldCondition("r.person_id", "", 2),
                            " ORDER BY r.", kind.order, " LIMIT $3"),
               {cutoff_us, now_us, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  PurgeBatch batch;
  absl::flat_hash_set<std::string> persons;
  std::string where;
  for (size_t i = 0; i < kind.key.size(); ++i) {
    absl::StrAppend(&where, i == 0 ? "" : " AND ", kind.key[i], " = $", i + 1);
  }
  for (const storage::Row& row : *rows) {
    std::vector<Value> key;
    for (size_t i = 0; i < kind.key.size(); ++i) {
      if (i == 0) {
        absl::StatusOr<std::string> person = row.GetText(0);
        if (!person.ok()) return person.status();
        if (persons.insert(*person).second) batch.persons.push_back(*person);
        key.emplace_back(*std::move(person));
        continue;
      }
      // The other key columns are ids or numbers; read them as they are.
      absl::StatusOr<int64_t> number = row.GetInt(static_cast<int>(i));
      if (number.ok()) {
        key.emplace_back(*number);
      } else {
        absl::StatusOr<std::string> text = row.GetText(static_cast<int>(i));
        if (!text.ok()) return text.status();
        key.emplace_back(*std::move(text));
      }
    }
    absl::StatusOr<int64_t> deleted = tx.Execute(
        absl::StrCat("DELETE FROM ", kind.table, " WHERE ", where), key);
    if (!deleted.ok()) return deleted.status();
    batch.purged += *deleted;
  }
  batch.more = rows->size() == static_cast<size_t>(limit);
  if (!batch.more) {
    absl::StatusOr<Rows> held = tx.Query(
        absl::StrCat("SELECT COUNT(*) FROM ", kind.table, " r WHERE ", kind.due,
                     " AND NOT ",
                     lifecycle::NotHeldCondition("r.person_id", "", 2)),
        {cutoff_us, now_us});
    if (!held.ok()) return held.status();
    absl::StatusOr<int64_t> count = held->front().GetInt(0);
    if (!count.ok()) return count.status();
    batch.held = *count;
  }
  return batch;
}

lifecycle::PurgeTask TaskFor(std::string kind, KindSql sql) {
  return {std::move(kind),
          [sql = std::move(sql)](Transaction& tx, absl::Time cutoff,
                                 absl::Time now, int limit) {
            return PurgeDue(tx, sql, cutoff, now, limit);
          }};
}

}  // namespace

std::vector<lifecycle::PurgeTask> IdentityPurgeTasks(
    const lifecycle::RetentionRules* rules) {
  std::vector<lifecycle::PurgeTask> tasks;
  tasks.push_back(TaskFor("person-revision", {"identity_person_revisions",
                                              "r.change_us <= $1",
                                              {"person_id", "n"},
                                              "change_us"}));
  const lifecycle::RetentionRule* residence =
      rules == nullptr ? nullptr : rules->Find("residence-status");
  if (residence != nullptr && residence->anchor == "END") {
    tasks.push_back(
        TaskFor("residence-status", {"identity_residence_statuses",
                                     "r.end_us IS NOT NULL AND r.end_us <= $1",
                                     {"person_id", "seq"},
                                     "seq"}));
  } else {
    // Superseded: a newer record of the person exists, recorded at or
    // before the cutoff (records are recorded in seq order).
    tasks.push_back(TaskFor(
        "residence-status",
        {"identity_residence_statuses",
         "EXISTS (SELECT 1 FROM identity_residence_statuses n WHERE "
         "n.person_id = r.person_id AND n.seq > r.seq AND n.create_us <= $1)",
         {"person_id", "seq"},
         "seq"}));
  }
  tasks.push_back(TaskFor(
      "consent", {"identity_consents",
                  "((r.withdraw_us IS NOT NULL AND r.withdraw_us <= $1) OR "
                  "(r.valid_until_us IS NOT NULL AND r.valid_until_us <= $1))",
                  {"person_id", "id"},
                  "create_us"}));
  return tasks;
}

}  // namespace lotse::identity
