#include "tests/common/audit/audit_tamper.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lotse::testing {
namespace {

using storage::Transaction;
using storage::Value;

absl::Status Run(storage::Database& db,
                 const std::function<absl::Status(Transaction&)>& body) {
  return storage::RunInTransaction(db, body);
}

absl::Status Exec(storage::Database& db, const std::string& sql,
                  const std::vector<Value>& params = {}) {
  return Run(db, [&](Transaction& tx) {
    absl::StatusOr<int64_t> changed = tx.Execute(sql, params);
    if (!changed.ok()) return changed.status();
    if (*changed == 0) return absl::NotFoundError("no row changed");
    return absl::OkStatus();
  });
}

}  // namespace

const char* AuditTable(audit::Chain chain) {
  return chain == audit::Chain::kReads ? "audit_read_log" : "audit_log";
}

absl::Status EditAuditRow(storage::Database& db, audit::Chain chain,
                          int64_t seq) {
  return Exec(db,
              absl::StrCat("UPDATE ", AuditTable(chain),
                           " SET actor = actor || '-edited' WHERE seq = $1"),
              {Value(seq)});
}

absl::Status DeleteAuditRow(storage::Database& db, audit::Chain chain,
                            int64_t seq) {
  return Run(db, [&](Transaction& tx) -> absl::Status {
    for (const std::string table :
         {std::string(AuditTable(chain)),
          absl::StrCat(AuditTable(chain), "_persons")}) {
      absl::StatusOr<int64_t> deleted = tx.Execute(
          absl::StrCat("DELETE FROM ", table, " WHERE seq = $1"), {Value(seq)});
      if (!deleted.ok()) return deleted.status();
    }
    return absl::OkStatus();
  });
}

absl::Status SwapAuditRows(storage::Database& db, audit::Chain chain, int64_t a,
                           int64_t b) {
  const std::string table = AuditTable(chain);
  return Run(db, [&](Transaction& tx) -> absl::Status {
    // Through a free seq, since seq is the primary key.
    for (const auto& [from, to] : {std::pair{a, int64_t{-1}}, std::pair{b, a},
                                   std::pair{int64_t{-1}, b}}) {
      absl::StatusOr<int64_t> changed = tx.Execute(
          absl::StrCat("UPDATE ", table, " SET seq = $1 WHERE seq = $2"),
          {Value(to), Value(from)});
      if (!changed.ok()) return changed.status();
      if (*changed != 1) return absl::NotFoundError("no row to swap");
    }
    return absl::OkStatus();
  });
}

absl::Status TruncateAudit(storage::Database& db, audit::Chain chain,
                           int64_t last_kept) {
  return Run(db, [&](Transaction& tx) -> absl::Status {
    for (const std::string table :
         {std::string(AuditTable(chain)),
          absl::StrCat(AuditTable(chain), "_persons")}) {
      absl::StatusOr<int64_t> deleted =
          tx.Execute(absl::StrCat("DELETE FROM ", table, " WHERE seq > $1"),
                     {Value(last_kept)});
      if (!deleted.ok()) return deleted.status();
    }
    return absl::OkStatus();
  });
}

absl::Status RewriteAuditConsistently(storage::Database& db, audit::Chain chain,
                                      int64_t from_seq) {
  const std::string table = AuditTable(chain);
  // The rows from `from_seq` on, read back through the audit library so
  // that every field it hashes is kept.
  std::map<int64_t, audit::AuditRecord> rows;
  {
    auto tx = db.Begin(storage::TxMode::kReadOnly);
    if (!tx.ok()) return tx.status();
    auto resources = (*tx)->Query(absl::StrCat("SELECT DISTINCT resource FROM ",
                                               table, " WHERE seq >= $1"),
                                  {Value(from_seq)});
    if (!resources.ok()) return resources.status();
    tx->reset();
    for (const storage::Row& r : *resources) {
      absl::StatusOr<std::string> resource = r.GetBytes(0);
      if (!resource.ok()) return resource.status();
      audit::ListAuditOptions options;
      options.chain = chain;
      options.after_seq = from_seq - 1;
      options.page_size = 1000;
      for (;;) {
        auto page = audit::ListAuditForResource(db, *resource, options);
        if (!page.ok()) return page.status();
        for (audit::AuditRecord& record : *page) {
          options.after_seq = record.seq;
          if (record.resource == *resource)
            rows[record.seq] = std::move(record);
        }
        if (page->size() < 1000) break;
      }
    }
  }
  if (rows.empty() || rows.begin()->first != from_seq) {
    return absl::NotFoundError("no row at from_seq");
  }
  rows.begin()->second.actor += "-forged";
  return Run(db, [&](Transaction& tx) -> absl::Status {
    absl::StatusOr<int64_t> deleted =
        tx.Execute(absl::StrCat("DELETE FROM ", table, " WHERE seq >= $1"),
                   {Value(from_seq)});
    if (!deleted.ok()) return deleted.status();
    // The chain's person index, which AppendAudit fills again.
    deleted = tx.Execute(
        absl::StrCat("DELETE FROM ", table, "_persons WHERE seq >= $1"),
        {Value(from_seq)});
    if (!deleted.ok()) return deleted.status();
    for (const auto& [seq, record] : rows) {
      if (absl::Status s = audit::AppendAudit(tx, record, chain); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<AuditSnapshot> SnapshotAudit(storage::Database& db,
                                            audit::Chain chain) {
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(
      absl::StrCat("SELECT * FROM ", AuditTable(chain), " ORDER BY seq"));
  if (!rows.ok()) return rows.status();
  AuditSnapshot snapshot;
  snapshot.rows = *std::move(rows);
  return snapshot;
}

absl::Status RestoreAudit(storage::Database& db, audit::Chain chain,
                          const AuditSnapshot& snapshot) {
  const std::string table = AuditTable(chain);
  return Run(db, [&](Transaction& tx) -> absl::Status {
    absl::StatusOr<int64_t> deleted =
        tx.Execute(absl::StrCat("DELETE FROM ", table));
    if (!deleted.ok()) return deleted.status();
    for (const storage::Row& row : snapshot.rows) {
      std::vector<Value> params;
      std::vector<std::string> placeholders;
      for (size_t i = 0; i < row.size(); ++i) {
        params.push_back(row.cell(i));
        placeholders.push_back(absl::StrCat("$", i + 1));
      }
      absl::StatusOr<int64_t> inserted =
          tx.Execute(absl::StrCat("INSERT INTO ", table, " VALUES (",
                                  absl::StrJoin(placeholders, ", "), ")"),
                     params);
      if (!inserted.ok()) return inserted.status();
    }
    return absl::OkStatus();
  });
}

}  // namespace lotse::testing
