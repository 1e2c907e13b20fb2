// Backend-independent parts of the storage contract: Row accessors,
// RunInTransaction and OpenDatabase.
#include "common/storage/database.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::storage {
namespace {

absl::Status CheckColumn(const std::vector<Value>& cells, size_t column) {
  if (column >= cells.size()) {
    return absl::OutOfRangeError(absl::StrCat("storage: column ", column,
                                              " out of range; the row has ",
                                              cells.size(), " columns"));
  }
  if (std::holds_alternative<std::monostate>(cells[column])) {
    return absl::FailedPreconditionError(
        absl::StrCat("storage: column ", column, " is NULL"));
  }
  return absl::OkStatus();
}

absl::Status WrongType(size_t column, absl::string_view wanted) {
  return absl::InvalidArgumentError(
      absl::StrCat("storage: column ", column, " cannot be read as ", wanted));
}

// Retry policy of RunInTransaction: full jitter over an exponentially growing
// ceiling, so that writers that collided once spread out instead of colliding
// again in lock step.
constexpr int kMaxAttempts = 10;
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(2);
constexpr absl::Duration kMaxBackoff = absl::Milliseconds(500);

void SleepBeforeRetry(int attempt) {
  absl::Duration ceiling = std::min(
      kFirstBackoff * (int64_t{1} << std::min(attempt, 20)), kMaxBackoff);
  thread_local absl::InsecureBitGen gen;
  double fraction = absl::Uniform(gen, 0.5, 1.0);
  absl::SleepFor(ceiling * fraction);
}

}  // namespace

bool Row::IsNull(size_t column) const {
  return column < cells_.size() &&
         std::holds_alternative<std::monostate>(cells_[column]);
}

absl::StatusOr<int64_t> Row::GetInt(size_t column) const {
  if (absl::Status s = CheckColumn(cells_, column); !s.ok()) return s;
  const Value& v = cells_[column];
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  // PostgreSQL answers SUM(bigint) with numeric, which arrives as a double;
  // accept doubles that hold an exact integer.
  if (const double* d = std::get_if<double>(&v)) {
    if (std::trunc(*d) == *d && *d >= -9223372036854775808.0 &&
        *d < 9223372036854775808.0) {
      return static_cast<int64_t>(*d);
    }
  }
  return WrongType(column, "an integer");
}

absl::StatusOr<double> Row::GetDouble(size_t column) const {
  if (absl::Status s = CheckColumn(cells_, column); !s.ok()) return s;
  const Value& v = cells_[column];
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&v)) {
    return static_cast<double>(*i);
  }
  return WrongType(column, "a double");
}

absl::StatusOr<std::string> Row::GetText(size_t column) const {
  if (absl::Status s = CheckColumn(cells_, column); !s.ok()) return s;
  if (const std::string* t = std::get_if<std::string>(&cells_[column])) {
    return *t;
  }
  return WrongType(column, "text");
}

absl::StatusOr<std::string> Row::GetBytes(size_t column) const {
  if (absl::Status s = CheckColumn(cells_, column); !s.ok()) return s;
  const Value& v = cells_[column];
  if (const Bytes* b = std::get_if<Bytes>(&v)) return b->data;
  // SQLite keeps whatever was stored; text in a BLOB column is still bytes.
  if (const std::string* t = std::get_if<std::string>(&v)) return *t;
  return WrongType(column, "bytes");
}

namespace {
// The payloads that mark a conflict and an unreachable database; their
// values are irrelevant.
constexpr char kConflictPayload[] = "lotse.storage/conflict";
constexpr char kUnavailablePayload[] = "lotse.storage/unavailable";
}  // namespace

absl::Status StorageUnavailableError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kUnavailablePayload, absl::Cord("1"));
  return status;
}

bool IsStorageUnavailable(const absl::Status& status) {
  return absl::IsUnavailable(status) &&
         status.GetPayload(kUnavailablePayload).has_value();
}

absl::Status ConflictError(absl::string_view message) {
  absl::Status status = absl::AbortedError(message);
  status.SetPayload(kConflictPayload, absl::Cord("1"));
  return status;
}

bool IsRetryableConflict(const absl::Status& status) {
  return absl::IsAborted(status) &&
         status.GetPayload(kConflictPayload).has_value();
}

absl::Status RunInTransaction(
    Database& db, const std::function<absl::Status(Transaction&)>& body,
    TxMode mode) {
  absl::Status status;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (attempt > 0) SleepBeforeRetry(attempt - 1);
    absl::StatusOr<std::unique_ptr<Transaction>> tx = db.Begin(mode);
    if (!tx.ok()) {
      status = tx.status();
    } else {
      status = body(**tx);
      if (status.ok()) status = (*tx)->Commit();
      // Destroying the transaction rolls back whatever did not commit.
    }
    if (!IsRetryableConflict(status)) return status;
  }
  return absl::Status(status.code(),
                      absl::StrCat("storage: gave up after ", kMaxAttempts,
                                   " attempts: ", status.message()));
}

absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(absl::string_view url,
                                                       int pool_size) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (absl::StartsWith(url, kSqlite)) {
    absl::string_view path = url.substr(kSqlite.size());
    // Accept the URI spelling "sqlite:///abs/path" as well as "sqlite:/abs".
    if (absl::StartsWith(path, "///")) {
      path.remove_prefix(2);
    } else if (absl::StartsWith(path, "//")) {
      return absl::InvalidArgumentError(
          "storage: sqlite URLs take a path, not a host: use sqlite:/path or "
          "sqlite:relative/path");
    }
    if (path.empty()) {
      return absl::InvalidArgumentError("storage: sqlite URL without a path");
    }
    SqliteOptions options;
    options.path = std::string(path);
    options.pool_size = pool_size;
    return OpenSqlite(options);
  }
  if (absl::StartsWith(url, "postgresql://") ||
      absl::StartsWith(url, "postgres://")) {
    PostgresOptions options;
    options.conninfo = std::string(url);
    options.pool_size = pool_size;
    return OpenPostgres(options);
  }
  // The URL is not echoed: it may carry a password.
  return absl::InvalidArgumentError(
      "storage: unsupported database URL; expected sqlite:PATH, "
      "postgresql://... or postgres://...");
}

}  // namespace lotse::storage
