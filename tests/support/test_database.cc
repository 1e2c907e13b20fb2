#include "tests/support/test_database.h"

#include <libpq-fe.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace lotse::storage {
void PrintTo(Dialect dialect, std::ostream* os) {
  *os << ::lotse::testing::DialectName(dialect);
}
}  // namespace lotse::storage

namespace lotse::testing {
namespace {

constexpr char kDsnFileEnv[] = "LOTSE_TEST_PG_DSN_FILE";

// What this process made, removed at exit.
struct Leftovers {
  absl::Mutex mu;
  std::string sqlite_dir ABSL_GUARDED_BY(mu);
  int next_file ABSL_GUARDED_BY(mu) = 0;
  std::string admin_dsn ABSL_GUARDED_BY(mu);
  std::vector<std::string> pg_databases ABSL_GUARDED_BY(mu);
};

Leftovers& leftovers() {
  // Never destroyed: the exit handler below runs after static destructors
  // may have started.
  static Leftovers* l = new Leftovers;
  return *l;
}

void CleanUpAtExit() {
  Leftovers& l = leftovers();
  absl::MutexLock lock(&l.mu);
  if (!l.sqlite_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(l.sqlite_dir, ignored);
  }
  if (!l.pg_databases.empty()) {
    PGconn* conn = PQconnectdb(l.admin_dsn.c_str());
    if (PQstatus(conn) == CONNECTION_OK) {
      for (const std::string& name : l.pg_databases) {
        std::string sql =
            absl::StrCat("DROP DATABASE IF EXISTS \"", name, "\" WITH (FORCE)");
        PQclear(PQexec(conn, sql.c_str()));
      }
    }
    PQfinish(conn);
  }
}

void RegisterCleanUp() {
  static const bool registered = [] {
    std::atexit(&CleanUpAtExit);
    return true;
  }();
  (void)registered;
}

absl::StatusOr<std::string> NewSqliteUrl() {
  RegisterCleanUp();
  Leftovers& l = leftovers();
  absl::MutexLock lock(&l.mu);
  if (l.sqlite_dir.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "lotse-test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot create a temporary directory ", pattern));
    }
    l.sqlite_dir = pattern;
  }
  return absl::StrCat("sqlite:", l.sqlite_dir, "/", l.next_file++, ".db");
}

absl::StatusOr<std::string> ReadDsn() {
  const char* file = std::getenv(kDsnFileEnv);
  if (file == nullptr || *file == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        kDsnFileEnv,
        " is not set, so there is no PostgreSQL server for this test. Run it "
        "through ctest, or start one with `tests/support/postgres.sh start "
        "DIR` and set ",
        kDsnFileEnv, "=DIR/dsn"));
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::string dsn(absl::StripAsciiWhitespace(text.str()));
  if (!in || dsn.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read a PostgreSQL URI from ", file, " (", kDsnFileEnv,
        "); did tests/support/postgres.sh start run?"));
  }
  return dsn;
}

std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// The same server and credentials as `dsn`, but database `name`, as a URI.
absl::StatusOr<std::string> UriForDatabase(const std::string& dsn,
                                           const std::string& name) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("bad PostgreSQL URI in ", kDsnFileEnv, ": ", message));
  }
  std::vector<std::string> query;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    if (absl::string_view(o->keyword) == "dbname") continue;
    query.push_back(absl::StrCat(o->keyword, "=", PercentEncode(o->val)));
  }
  PQconninfoFree(options);
  return absl::StrCat("postgresql:///", name, "?", absl::StrJoin(query, "&"));
}

absl::StatusOr<std::string> NewPostgresUrl() {
  absl::StatusOr<std::string> dsn = ReadDsn();
  if (!dsn.ok()) return dsn.status();

  thread_local absl::BitGen gen;
  std::string name = absl::StrCat(
      "lotse_test_", absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
  PGconn* conn = PQconnectdb(dsn->c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the test PostgreSQL server: ",
                     absl::StripAsciiWhitespace(message)));
  }
  std::string sql = absl::StrCat("CREATE DATABASE \"", name, "\"");
  PGresult* result = PQexec(conn, sql.c_str());
  bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string message = ok ? "" : PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(conn);
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("CREATE DATABASE failed: ", message));
  }

  RegisterCleanUp();
  {
    Leftovers& l = leftovers();
    absl::MutexLock lock(&l.mu);
    l.admin_dsn = *dsn;
    l.pg_databases.push_back(name);
  }
  return UriForDatabase(*dsn, name);
}

}  // namespace

std::string DialectName(Dialect dialect) {
  return dialect == Dialect::kSqlite ? "Sqlite" : "Postgres";
}

absl::StatusOr<std::string> NewTestDatabaseUrl(Dialect dialect) {
  return dialect == Dialect::kSqlite ? NewSqliteUrl() : NewPostgresUrl();
}

absl::StatusOr<std::unique_ptr<Database>> NewTestDatabase(Dialect dialect,
                                                          int pool_size) {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(dialect);
  if (!url.ok()) return url.status();
  return storage::OpenDatabase(*url, pool_size);
}

void BothBackendsTest::SetUp() {
  absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
  ASSERT_TRUE(url.ok()) << url.status();
  url_ = *url;
  absl::StatusOr<std::unique_ptr<Database>> db = storage::OpenDatabase(url_);
  ASSERT_TRUE(db.ok()) << db.status();
  db_ = *std::move(db);
}

}  // namespace lotse::testing
