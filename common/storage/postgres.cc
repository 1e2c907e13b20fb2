// The PostgreSQL backend: a small pool of libpq connections, each with its
// own named prepared statements.
//
// Transactions run at PostgreSQL's default isolation, READ COMMITTED: every
// statement sees what committed before it started, so a read-modify-write
// guarded by LockNamed (or SELECT ... FOR UPDATE) sees the previous holder's
// write. Under REPEATABLE READ the snapshot would be taken by the lock
// statement itself, before the lock is granted, and LockNamed would not help.
#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/internal/pool.h"
#include "common/storage/internal/tx_state.h"

namespace lotse::storage {
namespace {

// Statements kept per connection before DEALLOCATE ALL starts afresh.
constexpr size_t kMaxCachedStatements = 1024;

// Type OIDs from pg_type.h (server headers are not installed with libpq).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

void IgnoreNotice(void*, const char*) {}

// FNV-1a: LockNamed's key must be the same in every process and release, which
// rules out absl::Hash and std::hash.
int64_t StableHash(absl::string_view name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h);
}

class PgConn {
 public:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  ~PgConn() { PQfinish(conn_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  PGconn* get() const { return conn_; }

  // Set when the connection is lost or left in a state we cannot vouch for;
  // such a connection is closed instead of going back to the pool.
  bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  void set_broken() { broken_ = true; }

  struct Statement {
    std::string name;
    int params = 0;
  };
  absl::flat_hash_map<std::string, Statement>& cache() { return cache_; }
  std::string NextName() { return absl::StrCat("lotse_", next_id_++); }

  // Called when the connection is idle, outside any transaction.
  void TrimCache() {
    if (cache_.size() <= kMaxCachedStatements) return;
    Result r(PQexec(conn_, "DEALLOCATE ALL"));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) set_broken();
    cache_.clear();
  }

 private:
  PGconn* const conn_;
  bool broken_ = false;
  absl::flat_hash_map<std::string, Statement> cache_;
  uint64_t next_id_ = 0;
};

using PgPool = internal::Pool<PgConn>;

// Maps a failed result (or a missing one) to a status, marking the
// connection broken when it was lost. Only the primary message and the
// constraint name are kept: DETAIL lines quote row values, which may be
// personal data and must not reach logs.
absl::Status PgError(PgConn& conn, const PGresult* result,
                     absl::string_view what) {
  if (result == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    conn.set_broken();
    std::string message(absl::StripAsciiWhitespace(PQerrorMessage(conn.get())));
    return StorageUnavailableError(
        absl::StrCat("postgres: ", what, ": connection lost: ", message));
  }
  const char* state_field = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  absl::string_view state = state_field != nullptr ? state_field : "";
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string message = absl::StrCat(
      "postgres: ", what, ": ",
      primary != nullptr
          ? primary
          : absl::StripAsciiWhitespace(PQresultErrorMessage(result)),
      " (SQLSTATE ", state, ")");
  if (const char* constraint =
          PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME)) {
    absl::StrAppend(&message, " constraint ", constraint);
  }
  if (state == "23505") return absl::AlreadyExistsError(message);
  if (absl::StartsWith(state, "23") || state == "25006") {
    // 25006: a write in a READ ONLY transaction.
    return absl::FailedPreconditionError(message);
  }
  if (state == "40001" || state == "40P01" || state == "55P03") {
    return ConflictError(message);
  }
  if (state == "57P01" || state == "57P02" || state == "57P03") {
    // The server is shutting down or restarting; this session is gone.
    conn.set_broken();
    return StorageUnavailableError(message);
  }
  if (absl::StartsWith(state, "08") && state != "08P01") {
    return StorageUnavailableError(message);
  }
  return absl::InternalError(message);
}

// Which of $1..$n the statement refers to, skipping literals, quoted
// identifiers, dollar-quoted strings and comments. PostgreSQL accepts a
// declared but unused parameter where SQLite refuses one; checking here makes
// both refuse, so a wrong parameter list fails in the embedded tests too.
std::vector<bool> ReferencedParams(absl::string_view sql, size_t n) {
  std::vector<bool> used(n, false);
  size_t i = 0;
  auto skip_to = [&](absl::string_view end) {
    size_t found = sql.find(end, i);
    i = found == absl::string_view::npos ? sql.size() : found + end.size();
  };
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      // '' and "" inside are escaped quotes: two literals back to back.
      ++i;
      skip_to(absl::string_view(&c, 1));
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      skip_to("\n");
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      i += 2;
      skip_to("*/");
    } else if (c == '$' && i + 1 < sql.size() &&
               absl::ascii_isdigit(sql[i + 1])) {
      size_t start = ++i;
      while (i < sql.size() && absl::ascii_isdigit(sql[i])) ++i;
      size_t number = 0;
      if (absl::SimpleAtoi(sql.substr(start, i - start), &number) &&
          number >= 1 && number <= n) {
        used[number - 1] = true;
      }
    } else if (c == '$') {
      // A dollar quote $tag$...$tag$ (or $$...$$)?
      size_t end = i + 1;
      while (end < sql.size() &&
             (absl::ascii_isalnum(sql[end]) || sql[end] == '_')) {
        ++end;
      }
      if (end < sql.size() && sql[end] == '$') {
        std::string tag(sql.substr(i, end - i + 1));
        i = end + 1;
        skip_to(tag);
      } else {
        ++i;
      }
    } else {
      ++i;
    }
  }
  return used;
}

// Text form of a parameter PostgreSQL parses exactly.
std::string DoubleText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return absl::StrFormat("%.17g", d);
}

absl::StatusOr<Value> ReadCell(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column)) return std::monostate{};
  const char* text = PQgetvalue(result, row, column);
  int length = PQgetlength(result, row, column);
  absl::string_view view(text, length);
  switch (PQftype(result, column)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      int64_t i;
      if (!absl::SimpleAtoi(view, &i)) break;
      return i;
    }
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid: {
      double d;
      if (!absl::SimpleAtod(view, &d)) break;  // keep a huge numeric as text
      return d;
    }
    case kBoolOid:
      return int64_t{view == "t" ? 1 : 0};
    case kByteaOid: {
      size_t size = 0;
      unsigned char* raw =
          PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &size);
      if (raw == nullptr) {
        return absl::InternalError("postgres: cannot decode a bytea value");
      }
      Bytes bytes{std::string(reinterpret_cast<const char*>(raw), size)};
      PQfreemem(raw);
      return bytes;
    }
    default:
      break;
  }
  return std::string(view);
}

absl::StatusOr<Rows> ReadRows(const PGresult* result) {
  Rows rows;
  int n = PQntuples(result);
  int columns = PQnfields(result);
  rows.reserve(n);
  for (int r = 0; r < n; ++r) {
    std::vector<Value> cells;
    cells.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      absl::StatusOr<Value> cell = ReadCell(result, r, c);
      if (!cell.ok()) return cell.status();
      cells.push_back(*std::move(cell));
    }
    rows.emplace_back(std::move(cells));
  }
  return rows;
}

// `dead_peer_timeout`: when set, TCP keepalives and a user timeout make
// calls on a connection whose server went away (or a partition) fail after
// about that long instead of blocking until the OS gives up (hours).
absl::StatusOr<std::unique_ptr<PgConn>> Connect(
    const std::string& conninfo,
    absl::Duration dead_peer_timeout = absl::ZeroDuration()) {
  PGconn* raw = nullptr;
  if (dead_peer_timeout > absl::ZeroDuration()) {
    const int64_t seconds =
        std::max<int64_t>(3, absl::ToInt64Seconds(dead_peer_timeout));
    const std::string idle = absl::StrCat(seconds / 3);
    const std::string interval =
        absl::StrCat(std::max<int64_t>(1, seconds / 6));
    const std::string user_timeout = absl::StrCat(seconds * 1000);
    // expand_dbname: `conninfo` (a URI or key=value string) is expanded in
    // place of dbname, and the keywords after it override it.
    const char* keywords[] = {"dbname",
                              "keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              nullptr};
    const char* values[] = {conninfo.c_str(), "1", idle.c_str(),
                            interval.c_str(), "2", user_timeout.c_str(),
                            nullptr};
    raw = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  } else {
    raw = PQconnectdb(conninfo.c_str());
  }
  if (raw == nullptr) {
    return absl::ResourceExhaustedError("postgres: out of memory");
  }
  auto conn = std::make_unique<PgConn>(raw);
  if (PQstatus(raw) != CONNECTION_OK) {
    return StorageUnavailableError(
        absl::StrCat("postgres: cannot connect: ",
                     absl::StripAsciiWhitespace(PQerrorMessage(raw))));
  }
  // Notices (e.g. "relation already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(raw, &IgnoreNotice, nullptr);
  return conn;
}

class PgTransaction : public Transaction {
 public:
  PgTransaction(std::shared_ptr<PgPool> pool, std::unique_ptr<PgConn> conn,
                TxMode mode)
      : pool_(std::move(pool)), conn_(std::move(conn)), mode_(mode) {}

  ~PgTransaction() override {
    if (!state_.finished()) End(/*commit=*/false).IgnoreError();
  }

  absl::StatusOr<Rows> Query(absl::string_view sql,
                             const std::vector<Value>& params) override {
    absl::StatusOr<Result> result = Run(sql, params);
    if (!result.ok()) return result.status();
    absl::StatusOr<Rows> rows = ReadRows(result->get());
    if (!rows.ok()) return state_.Fail(rows.status());
    return rows;
  }

  absl::StatusOr<int64_t> Execute(absl::string_view sql,
                                  const std::vector<Value>& params) override {
    absl::StatusOr<Result> result = Run(sql, params);
    if (!result.ok()) return result.status();
    // A SELECT's tag counts rows returned, not changed; DDL has no count.
    if (absl::StartsWith(PQcmdStatus(result->get()), "SELECT")) return 0;
    int64_t changed = 0;
    if (!absl::SimpleAtoi(PQcmdTuples(result->get()), &changed)) changed = 0;
    return changed;
  }

  absl::Status ExecuteScript(absl::string_view sql) override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    // The simple query protocol runs several statements in one call; inside
    // our BEGIN they all belong to this transaction.
    std::string text(sql);
    Result result(PQexec(conn_->get(), text.c_str()));
    ExecStatusType status = PQresultStatus(result.get());
    if (result != nullptr &&
        (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ||
         status == PGRES_EMPTY_QUERY)) {
      return absl::OkStatus();
    }
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT ||
        status == PGRES_COPY_BOTH) {
      conn_->set_broken();
      return state_.Fail(absl::InvalidArgumentError(
          "postgres: COPY is not supported in scripts"));
    }
    return state_.Fail(PgError(*conn_, result.get(), "script"));
  }

  absl::Status LockNamed(absl::string_view name) override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    if (mode_ != TxMode::kReadWrite) {
      return state_.Fail(absl::FailedPreconditionError(
          "storage: LockNamed needs a read-write transaction"));
    }
    absl::StatusOr<Result> result =
        Run("SELECT pg_advisory_xact_lock($1)", {Value{StableHash(name)}});
    return result.status();
  }

  absl::Status BeginSavepoint() override {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    if (absl::Status s = Simple(
            absl::StrCat("SAVEPOINT lotse_sp_", state_.savepoint_depth() + 1),
            "savepoint");
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
              Simple(absl::StrCat("RELEASE SAVEPOINT ", name), "release");
          !s.ok()) {
        return state_.Fail(s);
      }
      state_.PopSavepoint(/*rolled_back=*/false);
      return absl::OkStatus();
    }
    // ROLLBACK TO is what PostgreSQL still accepts after a failed statement.
    absl::Status s = Simple(absl::StrCat("ROLLBACK TO SAVEPOINT ", name),
                            "rollback to savepoint");
    if (s.ok()) {
      s = Simple(absl::StrCat("RELEASE SAVEPOINT ", name), "release");
    }
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

  Dialect dialect() const override { return Dialect::kPostgres; }

 private:
  // Prepares `sql` on this connection once (per parameter type signature)
  // and runs it with `params`.
  absl::StatusOr<Result> Run(absl::string_view sql,
                             const std::vector<Value>& params) {
    if (absl::Status s = state_.CheckUsable(); !s.ok()) return s;
    const int n = static_cast<int>(params.size());
    std::vector<std::string> texts(n);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0);
    std::vector<int> formats(n, 0);
    // Integers, doubles and bytes get their type declared, so that e.g.
    // `SELECT $1` with Bytes is a bytea; text and NULL are left for the
    // server to infer from context, as a literal would be.
    std::vector<Oid> types(n, 0);
    std::string key(sql);
    key.push_back('\0');
    for (int i = 0; i < n; ++i) {
      const Value& v = params[i];
      if (std::holds_alternative<std::monostate>(v)) {
        key.push_back('n');
      } else if (const int64_t* x = std::get_if<int64_t>(&v)) {
        texts[i] = absl::StrCat(*x);
        types[i] = kInt8Oid;
        key.push_back('i');
      } else if (const double* d = std::get_if<double>(&v)) {
        texts[i] = DoubleText(*d);
        types[i] = kFloat8Oid;
        key.push_back('d');
      } else if (const std::string* t = std::get_if<std::string>(&v)) {
        values[i] = t->c_str();
        key.push_back('t');
        continue;
      } else {
        const std::string& b = std::get<Bytes>(v).data;
        values[i] = b.data();
        lengths[i] = static_cast<int>(b.size());
        formats[i] = 1;  // binary: raw bytes, zero bytes included
        types[i] = kByteaOid;
        key.push_back('b');
        continue;
      }
      if (!std::holds_alternative<std::monostate>(v)) {
        values[i] = texts[i].c_str();
      }
    }

    auto& cache = conn_->cache();
    auto it = cache.find(key);
    if (it == cache.end()) {
      std::vector<bool> used = ReferencedParams(sql, n);
      for (int i = 0; i < n; ++i) {
        if (!used[i]) {
          return state_.Fail(absl::InvalidArgumentError(
              absl::StrCat("postgres: parameter $", i + 1,
                           " is not used by the statement")));
        }
      }
      PgConn::Statement statement{conn_->NextName(), 0};
      std::string text(sql);
      Result prepared(PQprepare(conn_->get(), statement.name.c_str(),
                                text.c_str(), n, types.data()));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        return state_.Fail(PgError(*conn_, prepared.get(), "prepare"));
      }
      Result described(
          PQdescribePrepared(conn_->get(), statement.name.c_str()));
      if (PQresultStatus(described.get()) != PGRES_COMMAND_OK) {
        return state_.Fail(PgError(*conn_, described.get(), "describe"));
      }
      statement.params = PQnparams(described.get());
      it = cache.emplace(std::move(key), std::move(statement)).first;
    }
    if (it->second.params != n) {
      return state_.Fail(absl::InvalidArgumentError(
          absl::StrCat("postgres: the statement takes ", it->second.params,
                       " parameters but ", n, " were given")));
    }
    Result result(PQexecPrepared(conn_->get(), it->second.name.c_str(), n,
                                 values.data(), lengths.data(), formats.data(),
                                 /*resultFormat=*/0));
    ExecStatusType status = PQresultStatus(result.get());
    if (result != nullptr &&
        (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)) {
      return result;
    }
    return state_.Fail(PgError(*conn_, result.get(), "execute"));
  }

  // Runs a parameterless command with the simple protocol.
  absl::Status Simple(const std::string& sql, absl::string_view what) {
    if (conn_->broken()) {
      return StorageUnavailableError("postgres: connection lost");
    }
    Result result(PQexec(conn_->get(), sql.c_str()));
    if (PQresultStatus(result.get()) == PGRES_COMMAND_OK) {
      return absl::OkStatus();
    }
    return PgError(*conn_, result.get(), what);
  }

  // Commits or rolls back, then returns the connection to the pool if it is
  // idle and healthy, or closes it.
  absl::Status End(bool commit) {
    state_.Finish();
    absl::Status status;
    if (!conn_->broken()) {
      Result result(PQexec(conn_->get(), commit ? "COMMIT" : "ROLLBACK"));
      if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        status = PgError(*conn_, result.get(), commit ? "commit" : "rollback");
        if (commit && absl::IsUnavailable(status)) {
          status = StorageUnavailableError(absl::StrCat(
              status.message(), "; the commit may or may not have happened"));
        }
      } else if (commit &&
                 std::strcmp(PQcmdStatus(result.get()), "ROLLBACK") == 0) {
        // The server rolled back instead (an error we did not see).
        status = ConflictError(
            "postgres: the transaction was rolled "
            "back by the server at commit");
      }
    } else if (commit) {
      status = StorageUnavailableError("postgres: connection lost");
    }
    bool clean =
        !conn_->broken() && PQtransactionStatus(conn_->get()) == PQTRANS_IDLE;
    if (!clean && PQtransactionStatus(conn_->get()) != PQTRANS_IDLE &&
        !conn_->broken()) {
      // E.g. COMMIT failed without ending the block; try once more.
      Result again(PQexec(conn_->get(), "ROLLBACK"));
      clean =
          PQtransactionStatus(conn_->get()) == PQTRANS_IDLE && !conn_->broken();
    }
    if (clean) {
      conn_->TrimCache();
      clean = !conn_->broken();
    }
    pool_->Release(clean ? std::move(conn_) : nullptr);
    conn_.reset();
    return status;
  }

  std::shared_ptr<PgPool> pool_;
  std::unique_ptr<PgConn> conn_;
  const TxMode mode_;
  internal::TxState state_;
};

// A session advisory lock on a connection nobody else uses: PostgreSQL
// releases it when the connection closes, including when the process dies.
constexpr absl::Duration kProcessLockDeadPeerTimeout = absl::Seconds(30);

class PgProcessLock : public ProcessLock {
 public:
  PgProcessLock(std::unique_ptr<PgConn> conn, int64_t key)
      : conn_(std::move(conn)), key_(key) {}
  ~PgProcessLock() override {
    if (conn_->broken()) return;
    const std::string key = absl::StrCat(key_);
    const char* values[] = {key.c_str()};
    Result r(PQexecParams(conn_->get(), "SELECT pg_advisory_unlock($1::bigint)",
                          1, nullptr, values, nullptr, nullptr, 0));
    // Closing the connection (PgConn's destructor) releases it anyway.
  }

  bool Held() override {
    if (conn_->broken()) return false;
    // A lost connection shows only when used.
    Result r(PQexec(conn_->get(), "SELECT 1"));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) conn_->set_broken();
    return !conn_->broken();
  }

 private:
  std::unique_ptr<PgConn> conn_;
  const int64_t key_;
};

class PgDatabase : public Database {
 public:
  PgDatabase(std::shared_ptr<PgPool> pool, std::string conninfo)
      : pool_(std::move(pool)), conninfo_(std::move(conninfo)) {}

  absl::StatusOr<std::unique_ptr<ProcessLock>> TryLockForProcess(
      absl::string_view name) override {
    // The holder checks this connection to know it still holds the lock; a
    // dead server must show as an error, not as a call that never returns.
    absl::StatusOr<std::unique_ptr<PgConn>> conn =
        Connect(conninfo_, kProcessLockDeadPeerTimeout);
    if (!conn.ok()) return conn.status();
    const int64_t key = StableHash(absl::StrCat("lotse.process/", name));
    const std::string key_text = absl::StrCat(key);
    const char* values[] = {key_text.c_str()};
    Result r(PQexecParams((*conn)->get(),
                          "SELECT pg_try_advisory_lock($1::bigint)", 1, nullptr,
                          values, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
      return PgError(**conn, r.get(), "advisory lock");
    }
    if (std::strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) return nullptr;
    return std::make_unique<PgProcessLock>(*std::move(conn), key);
  }

  absl::StatusOr<std::unique_ptr<Transaction>> Begin(TxMode mode) override {
    const char* begin =
        mode == TxMode::kReadWrite ? "BEGIN" : "BEGIN READ ONLY";
    absl::Status last;
    // An idle connection may have died (server restart, idle timeout); BEGIN
    // has no effect to repeat, so try the next one, and then a fresh one.
    for (int attempt = 0; attempt <= pool_->max_size(); ++attempt) {
      absl::StatusOr<std::unique_ptr<PgConn>> conn = pool_->Acquire();
      if (!conn.ok()) return conn.status();
      Result result(PQexec((*conn)->get(), begin));
      if (PQresultStatus(result.get()) == PGRES_COMMAND_OK) {
        return std::make_unique<PgTransaction>(pool_, std::move(*conn), mode);
      }
      last = PgError(**conn, result.get(), "begin");
      bool broken = (*conn)->broken();
      bool idle = PQtransactionStatus((*conn)->get()) == PQTRANS_IDLE;
      pool_->Release(!broken && idle ? std::move(*conn) : nullptr);
      if (!broken) return last;
    }
    return last;
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

 private:
  std::shared_ptr<PgPool> pool_;
  const std::string conninfo_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> OpenPostgres(
    const PostgresOptions& options) {
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError("postgres: pool_size must be at least 1");
  }
  // A malformed connection string is the caller's mistake, not an outage.
  char* parse_error = nullptr;
  PQconninfoOption* parsed =
      PQconninfoParse(options.conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string message =
        parse_error != nullptr
            ? std::string(absl::StripAsciiWhitespace(parse_error))
            : "out of memory";
    PQfreemem(parse_error);
    return absl::InvalidArgumentError(
        absl::StrCat("postgres: bad connection string: ", message));
  }
  PQconninfoFree(parsed);

  std::string conninfo = options.conninfo;
  auto pool = std::make_shared<PgPool>(
      options.pool_size, [conninfo]() { return Connect(conninfo); });
  // Connect once now, so that a wrong address fails at start-up.
  absl::StatusOr<std::unique_ptr<PgConn>> first = pool->Acquire();
  if (!first.ok()) return first.status();
  pool->Release(std::move(*first));
  return std::make_unique<PgDatabase>(std::move(pool), conninfo);
}

}  // namespace lotse::storage
