// The storage contract every service stands on: one relational database per
// service, reached through SQLite (embedded default) or PostgreSQL
// (production), with the same SQL and the same migrations on both.
//
// SQL is written once, in the common subset of both dialects, with numbered
// parameters `$1, $2, ...` (PostgreSQL's native form; SQLite binds them by
// name). Column types in migrations use the macros listed in migrations.h.
//
// Thread safety: Database is thread-safe; a Transaction belongs to the thread
// that opened it and must not be shared.
#ifndef LOTSE_COMMON_STORAGE_DATABASE_H_
#define LOTSE_COMMON_STORAGE_DATABASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lotse::storage {

enum class Dialect { kSqlite, kPostgres };

// Raw bytes, kept apart from text so that each backend can bind it as a blob
// (SQLite BLOB, PostgreSQL BYTEA) rather than as text.
struct Bytes {
  std::string data;
  bool operator==(const Bytes& o) const { return data == o.data; }
};

// A bound parameter or a result cell. std::monostate is SQL NULL.
using Value = std::variant<std::monostate, int64_t, double, std::string, Bytes>;

// One row of a result. Accessors return an error status when the column is
// out of range or NULL (use IsNull first for nullable columns) or cannot be
// converted to the requested type.
class Row {
 public:
  explicit Row(std::vector<Value> cells) : cells_(std::move(cells)) {}

  size_t size() const { return cells_.size(); }
  bool IsNull(size_t column) const;
  absl::StatusOr<int64_t> GetInt(size_t column) const;
  absl::StatusOr<double> GetDouble(size_t column) const;
  absl::StatusOr<std::string> GetText(size_t column) const;
  absl::StatusOr<std::string> GetBytes(size_t column) const;
  const Value& cell(size_t column) const { return cells_.at(column); }

 private:
  std::vector<Value> cells_;
};

using Rows = std::vector<Row>;

enum class TxMode {
  // Takes the write lock at BEGIN (SQLite BEGIN IMMEDIATE), so two writers
  // never deadlock on lock upgrade; they queue behind the busy timeout.
  kReadWrite,
  kReadOnly,
};

// A database transaction. Destroying it without Commit() rolls it back, so an
// early return on an error path never leaves a partial write behind.
//
// Errors: constraint violations (unique, foreign key, check) come back as
// ALREADY_EXISTS (unique) or FAILED_PRECONDITION (others); serialization
// failures, deadlocks and lock time-outs as ABORTED, which RunInTransaction
// retries; a database that cannot be reached as UNAVAILABLE
// (StorageUnavailableError); everything else as INTERNAL.
//
// A failed statement aborts the transaction on both backends (PostgreSQL's
// rule, applied to SQLite too so the embedded tests catch code that relies on
// going on): later statements return FAILED_PRECONDITION and Commit returns
// the first error. To tolerate a duplicate, write INSERT ... ON CONFLICT DO
// NOTHING instead of catching ALREADY_EXISTS. Every `$N` must be used, and a
// statement may reference no parameter that is not given.
//
// kReadOnly transactions refuse writes (FAILED_PRECONDITION). PostgreSQL runs
// at READ COMMITTED, so a read-modify-write takes LockNamed (or SELECT ...
// FOR UPDATE, PostgreSQL only) before its read.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // Runs a statement that returns rows.
  virtual absl::StatusOr<Rows> Query(absl::string_view sql,
                                     const std::vector<Value>& params = {}) = 0;
  // Runs a statement and returns the number of rows it changed.
  virtual absl::StatusOr<int64_t> Execute(
      absl::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Runs one or more statements without parameters (migrations).
  virtual absl::Status ExecuteScript(absl::string_view sql) = 0;

  // Serialises this transaction against every other transaction that takes
  // the same named lock, until commit or rollback. On PostgreSQL this is a
  // transaction-scoped advisory lock; on SQLite a read-write transaction
  // already holds the database's single write lock, so it is a no-op.
  virtual absl::Status LockNamed(absl::string_view name) = 0;

  // A nested scope (an SQL savepoint) whose statements can be undone without
  // undoing the rest of the transaction. EndSavepoint(/*keep=*/true) keeps
  // its changes in the transaction; EndSavepoint(false) undoes them and makes
  // the transaction usable again even when a statement inside the scope
  // failed (PostgreSQL's ROLLBACK TO SAVEPOINT). Scopes nest; EndSavepoint
  // closes the innermost. A failure that happened before the innermost open
  // scope began cannot be undone this way.
  virtual absl::Status BeginSavepoint() = 0;
  virtual absl::Status EndSavepoint(bool keep) = 0;

  // Runs `hook` once this transaction has committed: inside a successful
  // Commit(), on its thread, after the commit is durable and the connection
  // is released, before Commit() returns. Never when the transaction rolls
  // back or its commit fails, nor when the savepoint that was innermost
  // when the hook was added is undone (EndSavepoint(false)). Hooks run in
  // the order added. For what must follow a write and never precede it,
  // e.g. waking whoever delivers what the transaction wrote (see
  // events/outbox.h). A hook must be quick and must not touch this
  // transaction.
  virtual void OnCommit(std::function<void()> hook) = 0;

  virtual absl::Status Commit() = 0;
  virtual Dialect dialect() const = 0;
};

// An exclusive lock held by one process (see Database::TryLockForProcess).
class ProcessLock {
 public:
  // Releases the lock.
  virtual ~ProcessLock() = default;
  // Whether the lock is still held. False once it was lost: on PostgreSQL
  // when the connection holding it broke, after which another process may
  // hold it. Costs a round trip on PostgreSQL.
  virtual bool Held() = 0;
};

// A pool of connections to one database.
class Database {
 public:
  virtual ~Database() = default;

  // Opens a transaction, waiting for a free connection if all are in use.
  virtual absl::StatusOr<std::unique_ptr<Transaction>> Begin(
      TxMode mode = TxMode::kReadWrite) = 0;
  virtual Dialect dialect() const = 0;

  // Takes the exclusive lock `name` among all processes (and Database
  // objects) using this database, without waiting: null when someone else
  // holds it. It is held until the ProcessLock is destroyed or the process
  // dies, whichever comes first, so a crashed holder never blocks a
  // successor. For choosing one of several replicas to do a job, e.g. to
  // relay a destination's events. PostgreSQL: a session advisory lock on a
  // connection of its own, outside the pool. SQLite: an flock on the file
  // <database>.<name>.lock beside it (`name` is made file-name safe).
  virtual absl::StatusOr<std::unique_ptr<ProcessLock>> TryLockForProcess(
      absl::string_view name) = 0;
};

// An ABORTED status marked as a storage conflict (serialization failure,
// deadlock, lock time-out, SQLite busy): retrying the whole transaction may
// succeed. Only these are retried by RunInTransaction — an ABORTED that a
// handler returns on purpose (a stale etag) is an answer, not a conflict.
absl::Status ConflictError(absl::string_view message);
bool IsRetryableConflict(const absl::Status& status);

// An UNAVAILABLE status marked as coming from storage: the database cannot be
// reached or used right now (a lost connection, a server restarting, a full
// disk, an exhausted connection pool). Trying again later may succeed; after
// a failed commit the transaction may or may not have happened, which the
// services' request ids make safe to retry. The message is for operators'
// logs only: it quotes files and server texts. Every UNAVAILABLE the storage
// layer returns is marked; the mark survives as long as the status is passed
// on unchanged.
absl::Status StorageUnavailableError(absl::string_view message);
bool IsStorageUnavailable(const absl::Status& status);

// Runs `body` in a transaction and commits it. When the body or the commit
// fails with a storage conflict (IsRetryableConflict) the whole transaction
// is retried a bounded number of times with backoff; any other error —
// including an ABORTED the body returns itself — rolls back and is returned
// unchanged.
absl::Status RunInTransaction(
    Database& db, const std::function<absl::Status(Transaction&)>& body,
    TxMode mode = TxMode::kReadWrite);

struct SqliteOptions {
  std::string path;  // database file; ":memory:" is refused (not shared)
  int pool_size = 4;
  int busy_timeout_ms = 5000;
  // FULL survives power loss at a cost in write latency; NORMAL (the
  // default) survives a crash of the process, which is what WAL promises.
  bool synchronous_full = false;
  // The WAL is copied back into the database file by a background
  // checkpoint once it holds this many pages; that checkpoint never waits.
  int wal_checkpoint_pages = 1000;
  // Under writes without a pause the background checkpoint never catches
  // up with the newest commit, so the WAL is never reused and would grow
  // without bound. Past this many pages the checkpoint therefore waits for
  // the current writer, holds new writers back for as long as it copies
  // (they wait as for any write lock) and restarts the WAL from its start.
  // The file is cut back to this size when it is reused.
  int wal_restart_pages = 16384;
};

struct PostgresOptions {
  std::string conninfo;  // libpq connection string or URI
  int pool_size = 4;
};

absl::StatusOr<std::unique_ptr<Database>> OpenSqlite(
    const SqliteOptions& options);
absl::StatusOr<std::unique_ptr<Database>> OpenPostgres(
    const PostgresOptions& options);

// Opens from a URL: "sqlite:/path/to/file.db" or "postgresql://..." /
// "postgres://..." (passed to libpq unchanged).
absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(absl::string_view url,
                                                       int pool_size = 4);

}  // namespace lotse::storage

#endif  // LOTSE_COMMON_STORAGE_DATABASE_H_
