// The SQLite backend: a pool of connections to one database file in WAL mode,
// each with its own cache of prepared statements.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/internal/pool.h"
#include "common/storage/internal/tx_state.h"

namespace lotse::storage {
namespace {

// Statements cached per connection before the cache is flushed; guards
// against code that builds SQL text dynamically.
constexpr size_t kMaxCachedStatements = 1024;

absl::Status SqliteError(int rc, sqlite3* db, absl::string_view what) {
  std::string message =
      absl::StrCat("sqlite: ", what, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(message);
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_READONLY:  // a write in a kReadOnly transaction
      return absl::FailedPreconditionError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ConflictError(message);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return StorageUnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// One connection with its statement cache. Used by one thread at a time (the
// pool hands it to one transaction), hence SQLITE_OPEN_NOMUTEX.
class Checkpointer;

class SqliteConn {
 public:
  explicit SqliteConn(sqlite3* db) : db_(db) {}
  ~SqliteConn() {
    ClearCache();
    sqlite3_close_v2(db_);
  }
  // Keeps the checkpointer this connection's WAL hook points at alive for
  // as long as the connection exists.
  void set_checkpointer(std::shared_ptr<Checkpointer> checkpointer) {
    checkpointer_ = std::move(checkpointer);
  }
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

  sqlite3* db() const { return db_; }

  // A prepared statement and, for each of its parameters (index 1, 2, ...
  // at position 0, 1, ...), the N of its name `$N`, or 0 for a name of
  // another form. Read once at prepare time: looking a parameter's name up
  // walks SQLite's list of names, so doing it at every bind costs time
  // quadratic in the parameters (a batched IN list has a hundred).
  struct Statement {
    sqlite3_stmt* stmt = nullptr;
    std::vector<size_t> numbers;
  };

  // Returns the cached statement for `sql`, preparing it on first use.
  // A null stmt means the text holds no statement (only whitespace or
  // comments). The pointer stays valid until TrimCache() clears the cache.
  absl::StatusOr<const Statement*> Prepare(absl::string_view sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second.get();

    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return SqliteError(rc, db_, "prepare");
    // Query and Execute run exactly one statement, like PostgreSQL's
    // extended protocol; anything after it other than comments is an error.
    absl::string_view rest(tail, sql.data() + sql.size() - tail);
    sqlite3_stmt* next = nullptr;
    rc = sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()),
                            &next, nullptr);
    sqlite3_finalize(next);
    if (rc != SQLITE_OK || next != nullptr) {
      sqlite3_finalize(stmt);
      return absl::InvalidArgumentError(
          "sqlite: Query and Execute take one statement; use ExecuteScript "
          "for several");
    }
    auto statement = std::make_unique<Statement>();
    statement->stmt = stmt;
    const int count = stmt == nullptr ? 0 : sqlite3_bind_parameter_count(stmt);
    statement->numbers.resize(count, 0);
    for (int index = 1; index <= count; ++index) {
      const char* name = sqlite3_bind_parameter_name(stmt, index);
      size_t n = 0;
      if (name != nullptr && name[0] == '$' && absl::SimpleAtoi(name + 1, &n)) {
        statement->numbers[index - 1] = n;
      }
    }
    const Statement* out = statement.get();
    cache_.emplace(std::string(sql), std::move(statement));
    return out;
  }

  // Runs a parameterless statement to completion (BEGIN, COMMIT, PRAGMA).
  absl::Status Exec(absl::string_view sql) {
    absl::StatusOr<const Statement*> prepared = Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    sqlite3_stmt* stmt = (*prepared)->stmt;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    absl::Status status;
    if (rc != SQLITE_DONE) status = SqliteError(rc, db_, sql);
    sqlite3_reset(stmt);
    return status;
  }

  void TrimCache() {
    if (cache_.size() > kMaxCachedStatements) ClearCache();
  }

 private:
  void ClearCache() {
    for (auto& [sql, statement] : cache_) sqlite3_finalize(statement->stmt);
    cache_.clear();
  }

  sqlite3* const db_;
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> cache_;
  std::shared_ptr<Checkpointer> checkpointer_;
};

using SqlitePool = internal::Pool<SqliteConn>;

// SQLite lets one writer in at a time and makes the others poll with
// growing sleeps (the busy handler), which gives queued writers tail
// latencies of tens of milliseconds. Writers of this process instead queue
// here, first come first served, from before BEGIN IMMEDIATE to the end of
// the transaction, and each is handed the lock as soon as the writer before
// it is done. (A plain mutex lets the releasing thread take it again at once
// and starves the others.) Writers of other processes still meet the busy
// handler.
class WriteGate {
 public:
  explicit WriteGate(absl::Duration timeout) : timeout_(timeout) {}

  // False when the lock did not come within the timeout.
  bool Acquire() {
    absl::MutexLock lock(&mu_);
    if (!held_) {
      held_ = true;
      return true;
    }
    Waiter self;
    waiters_.push_back(&self);
    const absl::Time deadline = absl::Now() + timeout_;
    while (!self.granted) {
      if (self.cv.WaitWithDeadline(&mu_, deadline) && !self.granted) {
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
        return false;
      }
    }
    return true;
  }

  void Release() {
    absl::MutexLock lock(&mu_);
    if (waiters_.empty()) {
      held_ = false;
      return;
    }
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;  // handed over: held_ stays true
    next->cv.Signal();
  }

 private:
  struct Waiter {
    absl::CondVar cv;
    bool granted = false;
  };

  const absl::Duration timeout_;
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

// Copies the WAL back into the database file on a thread of its own.
// SQLite's default does it inside the commit of whichever writer pushes the
// WAL past 1000 pages, with an fsync, while every writer queued behind the
// single write lock waits (measured: a ninth of the courses service's CPU
// under booking load, all of it on the serial write path). Here commits
// only signal; a PASSIVE checkpoint runs beside them and never blocks
// readers or writers. The WAL is reused from its start once a checkpoint
// has caught up, so it stays near the limit unless readers pin old pages.
//
// A writer that never pauses (a bulk load, sustained write load) keeps the
// passive checkpoint from ever catching up with the newest commit, and the
// WAL is never reused. Past the restart limit the checkpoint is a RESTART
// one: it holds the write lock while it copies and until readers have left
// the WAL, so the next writer starts the WAL from its beginning. It takes
// its turn in this process's write gate, so the process's writers queue
// behind it as behind any writer (SQLite's busy handler alone lets a writer
// without pauses take the lock back every time); the journal size limit
// then cuts the file back.
class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<SqliteConn> conn,
               std::shared_ptr<WriteGate> gate, int checkpoint_pages,
               int restart_pages)
      : conn_(std::move(conn)),
        gate_(std::move(gate)),
        checkpoint_pages_(checkpoint_pages),
        restart_pages_(restart_pages),
        thread_([this] { Loop(); }) {}

  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // sqlite3_wal_hook callback: runs on the committing thread, after the
  // commit, so it must stay cheap.
  static int OnCommit(void* self, sqlite3*, const char*, int wal_pages) {
    auto* checkpointer = static_cast<Checkpointer*>(self);
    if (wal_pages >= checkpointer->checkpoint_pages_) {
      absl::MutexLock lock(&checkpointer->mu_);
      checkpointer->pending_ = true;
      if (wal_pages >= checkpointer->restart_pages_) {
        checkpointer->restart_ = true;
      }
    }
    return SQLITE_OK;
  }

 private:
  void Loop() {
    while (true) {
      bool restart = false;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return pending_ || stopping_;
        };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) return;
        pending_ = false;
        restart = restart_;
        restart_ = false;
      }
      // A failure (e.g. BUSY once the busy timeout ran out) leaves the WAL
      // longer; the next commit past the limit asks again. A RESTART that
      // found a reader it could not wait out (a long read transaction: an
      // online backup, a large export) is not tried again for a while,
      // doubling up to kMaxRestartBackoff: each try holds the writers back
      // for the whole busy timeout, and while the reader stays no try can
      // succeed. Measured with bench/backup_bench.cc (200 MiB, 4 writers):
      // retrying at every commit cut writes during a backup to 30% of
      // their rate alone, with stalls of up to 585 ms.
      if (restart && absl::Now() >= restart_not_before_ && gate_->Acquire()) {
        const int rc = sqlite3_wal_checkpoint_v2(
            conn_->db(), nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
        gate_->Release();
        if ((rc & 0xff) == SQLITE_BUSY) {
          restart_backoff_ =
              std::min(kMaxRestartBackoff,
                       std::max(kMinRestartBackoff, restart_backoff_ * 2));
          restart_not_before_ = absl::Now() + restart_backoff_;
        } else {
          restart_backoff_ = absl::ZeroDuration();
        }
      } else {
        sqlite3_wal_checkpoint_v2(conn_->db(), nullptr,
                                  SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      }
    }
  }

  static constexpr absl::Duration kMinRestartBackoff = absl::Seconds(1);
  static constexpr absl::Duration kMaxRestartBackoff = absl::Seconds(8);

  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool restart_ ABSL_GUARDED_BY(mu_) = false;
  // The checkpoint thread's own: when a RESTART may be tried again after
  // one that a reader made fail, and the current back-off.
  absl::Time restart_not_before_ = absl::InfinitePast();
  absl::Duration restart_backoff_ = absl::ZeroDuration();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<SqliteConn> conn_;
  const std::shared_ptr<WriteGate> gate_;
  const int checkpoint_pages_;
  const int restart_pages_;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<SqliteConn>> OpenConnection(
    const SqliteOptions& options) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      options.path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(rc, raw, "open");
    sqlite3_close_v2(raw);
    return StorageUnavailableError(status.message());
  }
  auto conn = std::make_unique<SqliteConn>(raw);
  sqlite3_extended_result_codes(raw, 1);
  // The timeout comes first so that the pragmas below wait for a concurrent
  // opener instead of failing.
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  // No mmap (mmap_size=0). A connection that starts a read after any
  // commit by another connection drops its whole mapping (munmap) and
  // faults the pages in again; every audited read commits, so under load
  // the threads queued on the process's memory-map lock. Measured with
  // FindDuplicates at 100k persons, 32 in flight: 780 QPS with a 1 GiB
  // mapping, 1120 with read(); at concurrency 1 the two were within noise.
  // temp_store=MEMORY: every body of a group commit runs in a savepoint,
  // and SQLite keeps a savepoint's undo pages in a statement journal, a
  // temporary file by default. Measured: those pwrite() calls were a fifth
  // of the cases service's CPU under a transition load. The journal only
  // holds pages of one batch, so memory stays small.
  // secure_delete=ON: deleted records and freed pages are overwritten with
  // zeros, so an erased person's data does not linger in free space of the
  // file. Old page images stay in the WAL until it is checkpointed and
  // reused or truncated.
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON",
        "PRAGMA secure_delete=ON", "PRAGMA mmap_size=0",
        "PRAGMA temp_store=MEMORY",
        options.synchronous_full ? "PRAGMA synchronous=FULL"
                                 : "PRAGMA synchronous=NORMAL"}) {
    if (absl::Status s = conn->Exec(pragma); !s.ok()) return s;
  }
  // The WAL file is cut back to the restart limit whenever it is reused
  // (pages of SQLite's default size, which no database here changes).
  if (absl::Status s =
          conn->Exec(absl::StrCat("PRAGMA journal_size_limit=",
                                  int64_t{options.wal_restart_pages} * 4096));
      !s.ok()) {
    return s;
  }
  // journal_mode answers with the mode in force; a file system without
  // shared memory would silently keep the rollback journal.
  absl::StatusOr<const SqliteConn::Statement*> prepared =
      conn->Prepare("PRAGMA journal_mode");
  if (!prepared.ok()) return prepared.status();
  sqlite3_stmt* mode = (*prepared)->stmt;
  std::string got;
  if (sqlite3_step(mode) == SQLITE_ROW) {
    got = reinterpret_cast<const char*>(sqlite3_column_text(mode, 0));
  }
  sqlite3_reset(mode);
  if (absl::AsciiStrToLower(got) != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite: cannot switch ", options.path, " to WAL (mode is ", got, ")"));
  }
  return conn;
}

// Binds params[N-1] to every `$N` in the statement. SQLite sees `$1` as a
// named parameter, so the numbering is read from each parameter's name.
absl::Status Bind(const SqliteConn::Statement& statement,
                  const std::vector<Value>& params) {
  sqlite3_stmt* stmt = statement.stmt;
  std::vector<bool> used(params.size(), false);
  const int count = static_cast<int>(statement.numbers.size());
  for (int index = 1; index <= count; ++index) {
    const size_t n = statement.numbers[index - 1];
    if (n == 0) {
      const char* name = sqlite3_bind_parameter_name(stmt, index);
      return absl::InvalidArgumentError(
          absl::StrCat("sqlite: parameters must be written $1, $2, ...; got ",
                       name == nullptr ? "?" : name));
    }
    if (n > params.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sqlite: the statement uses $", n, " but ",
                       params.size(), " parameters were given"));
    }
    used[n - 1] = true;
    const Value& v = params[n - 1];
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(v)) {
      rc = sqlite3_bind_null(stmt, index);
    } else if (const int64_t* i = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, index, *i);
    } else if (const double* d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(stmt, index, *d);
    } else if (const std::string* t = std::get_if<std::string>(&v)) {
      // SQLITE_STATIC: the bindings are cleared before `params` goes away.
      rc = sqlite3_bind_text64(stmt, index, t->data(), t->size(), SQLITE_STATIC,
                               SQLITE_UTF8);
    } else {
      const std::string& b = std::get<Bytes>(v).data;
      // A null pointer would bind NULL; an empty blob is a zero-length blob.
      rc = b.empty() ? sqlite3_bind_zeroblob(stmt, index, 0)
                     : sqlite3_bind_blob64(stmt, index, b.data(), b.size(),
                                           SQLITE_STATIC);
    }
    if (rc != SQLITE_OK) {
      return SqliteError(rc, sqlite3_db_handle(stmt), "bind");
    }
  }
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sqlite: parameter $", i + 1, " is not used by the statement"));
    }
  }
  return absl::OkStatus();
}

Value ReadColumn(sqlite3_stmt* stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
      return int64_t{sqlite3_column_int64(stmt, column)};
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, column);
    case SQLITE_TEXT: {
      const unsigned char* text = sqlite3_column_text(stmt, column);
      int size = sqlite3_column_bytes(stmt, column);
      return std::string(reinterpret_cast<const char*>(text), size);
    }
    case SQLITE_BLOB: {
      const void* blob = sqlite3_column_blob(stmt, column);
      int size = sqlite3_column_bytes(stmt, column);
      if (blob == nullptr) return Bytes{};
      return Bytes{std::string(static_cast<const char*>(blob), size)};
    }
    default:
      return std::monostate{};
  }
}

// "PRAGMA journal_mode", "PRAGMA table_info(t)": SQLite does not call
// pragmas read-only, but one without "=" only reports a setting.
bool IsPragmaQuery(absl::string_view sql) {
  sql = absl::StripLeadingAsciiWhitespace(sql);
  return absl::StartsWithIgnoreCase(sql, "PRAGMA") &&
         !absl::StrContains(sql, '=');
}

class SqliteTransaction : public Transaction {
 public:
  // `gate` is locked by the caller for a read-write transaction and is
  // unlocked when the transaction ends; nullptr for a read-only one.
  SqliteTransaction(std::shared_ptr<SqlitePool> pool,
                    std::unique_ptr<SqliteConn> conn, TxMode mode,
                    std::shared_ptr<WriteGate> gate)
      : pool_(std::move(pool)),
        conn_(std::move(conn)),
        mode_(mode),
        gate_(std::move(gate)) {}

  ~SqliteTransaction() override {
    if (!state_.finished()) End(/*commit=*/false).IgnoreError();
  }

  absl::StatusOr<Rows> Query(absl::string_view sql,
                             const std::vector<Value>& params) override {
    Rows rows;
    absl::StatusOr<int64_t> n = Run(sql, params, &rows);
    if (!n.ok()) return n.status();
    return rows;
  }

  absl::StatusOr<int64_t> Execute(absl::string_view sql,
                                  const std::vector<Value>& params) override {
    return Run(sql, params, nullptr);
  }

  absl::Status ExecuteScript(absl::string_view sql) override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    if (mode_ == TxMode::kReadOnly) {
      return state_.Fail(absl::FailedPreconditionError(
          "sqlite: scripts need a read-write transaction"));
    }
    std::string text(sql);  // sqlite3_exec wants a terminated string
    char* error = nullptr;
    int rc = sqlite3_exec(conn_->db(), text.c_str(), nullptr, nullptr, &error);
    sqlite3_free(error);  // the same text is in sqlite3_errmsg
    if (rc != SQLITE_OK) {
      return state_.Fail(SqliteError(rc, conn_->db(), "script"));
    }
    return absl::OkStatus();
  }

  absl::Status LockNamed(absl::string_view name) override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    if (mode_ != TxMode::kReadWrite) {
      return state_.Fail(absl::FailedPreconditionError(
          "storage: LockNamed needs a read-write transaction"));
    }
    // BEGIN IMMEDIATE already holds the database's only write lock.
    return absl::OkStatus();
  }

  absl::Status BeginSavepoint() override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    if (absl::Status s = conn_->Exec(
            absl::StrCat("SAVEPOINT lotse_sp_", state_.savepoint_depth() + 1));
        !s.ok()) {
      return state_.Fail(s);
    }
    state_.PushSavepoint();
    return absl::OkStatus();
  }

  absl::Status EndSavepoint(bool keep) override {
    if (state_.finished() || state_.savepoint_depth() == 0) {
      return absl::FailedPreconditionError(
          "storage: EndSavepoint without an open savepoint");
    }
    const std::string name =
        absl::StrCat("lotse_sp_", state_.savepoint_depth());
    if (keep) {
      if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
      if (absl::Status s =
              conn_->Exec(absl::StrCat("RELEASE SAVEPOINT ", name));
          !s.ok()) {
        return state_.Fail(s);
      }
      state_.PopSavepoint(/*rolled_back=*/false);
      return absl::OkStatus();
    }
    // Some errors (I/O, a full disk) make SQLite roll the whole transaction
    // back on its own; then there is no savepoint left to return to.
    absl::Status s = sqlite3_get_autocommit(conn_->db()) != 0
                         ? absl::InternalError(
                               "sqlite: the transaction was rolled back by "
                               "an earlier error")
                         : conn_->Exec(absl::StrCat("ROLLBACK TO ", name));
    if (s.ok()) s = conn_->Exec(absl::StrCat("RELEASE SAVEPOINT ", name));
    if (!s.ok()) return state_.Fail(s);
    state_.PopSavepoint(/*rolled_back=*/true);
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (!state_.open()) {
      absl::Status refusal = state_.CommitRefusal();
      if (!state_.finished()) End(/*commit=*/false).IgnoreError();
      return refusal;
    }
    absl::Status committed = End(/*commit=*/true);
    if (committed.ok()) state_.RunCommitHooks();
    return committed;
  }

  void OnCommit(std::function<void()> hook) override {
    state_.AddCommitHook(std::move(hook));
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

 private:
  absl::StatusOr<int64_t> Run(absl::string_view sql,
                              const std::vector<Value>& params, Rows* rows) {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    sqlite3* db = conn_->db();
    absl::StatusOr<const SqliteConn::Statement*> prepared = conn_->Prepare(sql);
    if (!prepared.ok()) return state_.Fail(prepared.status());
    sqlite3_stmt* stmt = (*prepared)->stmt;
    if (stmt == nullptr) {
      return state_.Fail(absl::InvalidArgumentError("sqlite: empty statement"));
    }
    // Refused as PostgreSQL refuses writes in a READ ONLY transaction.
    // (Not PRAGMA query_only: toggling it expires every prepared statement
    // of the connection, so each read-only transaction re-prepared all
    // statements; that was a fifth of a booking's CPU.)
    if (mode_ == TxMode::kReadOnly && !sqlite3_stmt_readonly(stmt) &&
        !IsPragmaQuery(sql)) {
      return state_.Fail(absl::FailedPreconditionError(
          "sqlite: a read-only transaction cannot write"));
    }
    // Reset on every exit, so that a cached statement neither keeps a read
    // open nor points at the caller's parameters.
    struct Reset {
      sqlite3_stmt* stmt;
      ~Reset() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};

    if (absl::Status s = Bind(**prepared, params); !s.ok()) {
      return state_.Fail(s);
    }
    int64_t total_before = sqlite3_total_changes64(db);
    int columns = sqlite3_column_count(stmt);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (rows == nullptr) continue;
      std::vector<Value> cells;
      cells.reserve(columns);
      for (int c = 0; c < columns; ++c) cells.push_back(ReadColumn(stmt, c));
      rows->emplace_back(std::move(cells));
    }
    if (rc != SQLITE_DONE) return state_.Fail(SqliteError(rc, db, "step"));
    // sqlite3_changes keeps the count of the last INSERT/UPDATE/DELETE, even
    // after a SELECT or DDL; the total tells whether this statement changed
    // anything at all.
    if (sqlite3_total_changes64(db) == total_before) return 0;
    return sqlite3_changes64(db);
  }

  // Commits or rolls back, then hands the connection back to the pool, or
  // drops it if it is left inside a transaction.
  absl::Status End(bool commit) {
    state_.Finish();
    absl::Status status;
    if (commit) {
      status = conn_->Exec("COMMIT");
      // SQLite leaves the transaction open when COMMIT fails with BUSY.
    }
    if (sqlite3_get_autocommit(conn_->db()) == 0) {
      absl::Status rolled_back = conn_->Exec("ROLLBACK");
      if (status.ok() && !rolled_back.ok()) status = rolled_back;
    }
    const bool clean = sqlite3_get_autocommit(conn_->db()) != 0;
    if (clean) conn_->TrimCache();
    pool_->Release(clean ? std::move(conn_) : nullptr);
    conn_.reset();
    if (gate_ != nullptr) gate_->Release();
    return status;
  }

  std::shared_ptr<SqlitePool> pool_;
  std::unique_ptr<SqliteConn> conn_;
  const TxMode mode_;
  const std::shared_ptr<WriteGate> gate_;
  internal::TxState state_;
};

// An flock on a file of its own: the kernel releases it when the
// descriptor closes, including when the process dies.
class SqliteProcessLock : public ProcessLock {
 public:
  explicit SqliteProcessLock(int fd) : fd_(fd) {}
  ~SqliteProcessLock() override { close(fd_); }
  bool Held() override { return true; }

 private:
  const int fd_;
};

class SqliteDatabase : public Database {
 public:
  SqliteDatabase(std::shared_ptr<SqlitePool> pool,
                 std::shared_ptr<WriteGate> gate, std::string path)
      : pool_(std::move(pool)),
        gate_(std::move(gate)),
        path_(std::move(path)) {}

  absl::StatusOr<std::unique_ptr<ProcessLock>> TryLockForProcess(
      absl::string_view name) override {
    std::string file = absl::StrCat(path_, ".");
    for (char c : name) file.push_back(absl::ascii_isalnum(c) ? c : '_');
    file += ".lock";
    const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return StorageUnavailableError(absl::StrCat(
          "sqlite: cannot open lock file ", file, ": ", std::strerror(errno)));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      close(fd);
      if (error == EWOULDBLOCK) return nullptr;
      return StorageUnavailableError(absl::StrCat("sqlite: cannot lock ", file,
                                                  ": ", std::strerror(error)));
    }
    return std::make_unique<SqliteProcessLock>(fd);
  }

  absl::StatusOr<std::unique_ptr<Transaction>> Begin(TxMode mode) override {
    std::shared_ptr<WriteGate> gate;
    if (mode == TxMode::kReadWrite) {
      // Before taking a connection, so queued writers leave the pool's
      // connections to readers.
      if (!gate_->Acquire()) {
        return ConflictError(
            "sqlite: timed out waiting for the database's write lock");
      }
      gate = gate_;
    }
    absl::StatusOr<std::unique_ptr<SqliteConn>> conn = pool_->Acquire();
    if (!conn.ok()) {
      if (gate != nullptr) gate->Release();
      return conn.status();
    }
    absl::Status status;
    if (mode == TxMode::kReadWrite) {
      // Take the write lock now: a deferred transaction that reads and then
      // writes can fail with BUSY without waiting, when another writer
      // committed since its read.
      status = (*conn)->Exec("BEGIN IMMEDIATE");
    } else {
      // Writes are refused statement by statement (Run).
      status = (*conn)->Exec("BEGIN");
    }
    if (!status.ok()) {
      bool clean = sqlite3_get_autocommit((*conn)->db()) != 0;
      pool_->Release(clean ? std::move(*conn) : nullptr);
      if (gate != nullptr) gate->Release();
      return status;
    }
    return std::make_unique<SqliteTransaction>(pool_, std::move(*conn), mode,
                                               std::move(gate));
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

 private:
  std::shared_ptr<SqlitePool> pool_;
  // Shared with the open transactions, which may outlive this object.
  std::shared_ptr<WriteGate> gate_;
  const std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> OpenSqlite(
    const SqliteOptions& options) {
  if (options.path.empty() || options.path == ":memory:" ||
      options.path.find("mode=memory") != std::string::npos) {
    return absl::InvalidArgumentError(
        "sqlite: an in-memory database is not shared between the pool's "
        "connections; give a file path");
  }
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError("sqlite: pool_size must be at least 1");
  }
  if (options.wal_checkpoint_pages < 1 ||
      options.wal_restart_pages < options.wal_checkpoint_pages) {
    return absl::InvalidArgumentError(
        "sqlite: wal_checkpoint_pages must be at least 1 and at most "
        "wal_restart_pages");
  }
  absl::StatusOr<std::unique_ptr<SqliteConn>> own = OpenConnection(options);
  if (!own.ok()) return own.status();
  // A RESTART checkpoint holds the write gate while it waits for readers
  // to leave the WAL; a short wait keeps the writers queued behind it from
  // stalling on a long reader (the checkpoint then stops early, like a
  // passive one, and the next commit past the limit asks again).
  sqlite3_busy_timeout((*own)->db(), std::min(options.busy_timeout_ms, 200));
  auto gate =
      std::make_shared<WriteGate>(absl::Milliseconds(options.busy_timeout_ms));
  auto checkpointer = std::make_shared<Checkpointer>(
      *std::move(own), gate, options.wal_checkpoint_pages,
      options.wal_restart_pages);
  auto pool = std::make_shared<SqlitePool>(
      options.pool_size,
      [options, checkpointer]() -> absl::StatusOr<std::unique_ptr<SqliteConn>> {
        absl::StatusOr<std::unique_ptr<SqliteConn>> conn =
            OpenConnection(options);
        if (!conn.ok()) return conn.status();
        // Replaces SQLite's automatic checkpoint in the committing thread.
        sqlite3_wal_hook((*conn)->db(), &Checkpointer::OnCommit,
                         checkpointer.get());
        (*conn)->set_checkpointer(checkpointer);
        return conn;
      });
  // Open one connection now, so that a bad path fails here and not at the
  // first request.
  absl::StatusOr<std::unique_ptr<SqliteConn>> first = pool->Acquire();
  if (!first.ok()) return first.status();
  pool->Release(std::move(*first));
  return std::make_unique<SqliteDatabase>(std::move(pool), std::move(gate),
                                          options.path);
}

}  // namespace lotse::storage
