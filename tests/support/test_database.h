// Fresh, empty databases for tests of any module, on either backend.
//
// SQLite databases are files in a temporary directory made for this process.
// PostgreSQL databases are created, with a random name, on the server whose
// libpq URI is in the file named by the environment variable
// LOTSE_TEST_PG_DSN_FILE; ctest sets it for tests registered with
// `lotse_add_gtest(... POSTGRES)` and starts that server (fixture "postgres").
// Without it, asking for a PostgreSQL database is an error that says how to
// get one, so a hand-run test binary fails rather than passing silently.
// Everything made here is removed when the process exits.
//
// Typical use, running every test of a suite on both backends:
//
//   class OutboxTest : public lotse::testing::BothBackendsTest {};
//   TEST_P(OutboxTest, DeliversInOrder) { ... db() ... }
//   LOTSE_INSTANTIATE_BOTH_BACKENDS(OutboxTest);
//
// Note: inside `namespace lotse`, `testing::` names this namespace; write
// `::testing::` for GoogleTest's.
#ifndef LOTSE_TESTS_SUPPORT_TEST_DATABASE_H_
#define LOTSE_TESTS_SUPPORT_TEST_DATABASE_H_

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "common/storage/database.h"
#include "gtest/gtest.h"

namespace lotse::storage {
// Lets GoogleTest print a Dialect parameter as "Sqlite" / "Postgres"; it is
// found by argument-dependent lookup, hence this namespace.
void PrintTo(Dialect dialect, std::ostream* os);
}  // namespace lotse::storage

namespace lotse::testing {

using ::lotse::storage::Database;
using ::lotse::storage::Dialect;

// "Sqlite" or "Postgres".
std::string DialectName(Dialect dialect);

// Creates an empty database and returns the URL OpenDatabase takes:
// "sqlite:/tmp/lotse-test.XXXXXX/N.db" or "postgresql://.../lotse_test_...".
// Useful to open the same database twice (e.g. to test a restart).
absl::StatusOr<std::string> NewTestDatabaseUrl(Dialect dialect);

// Creates an empty database and opens a pool of `pool_size` connections to it.
absl::StatusOr<std::unique_ptr<Database>> NewTestDatabase(Dialect dialect,
                                                          int pool_size = 4);

// A value-parameterised fixture whose SetUp gives each test a fresh database
// of the parameter's dialect in db() (and its URL in url()).
class BothBackendsTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override;

  Database& db() { return *db_; }
  Dialect dialect() const { return GetParam(); }
  const std::string& url() const { return url_; }

  std::string url_;
  std::unique_ptr<Database> db_;
};

// Test name suffix for INSTANTIATE_TEST_SUITE_P: "Sqlite" / "Postgres".
struct DialectParamName {
  std::string operator()(const ::testing::TestParamInfo<Dialect>& info) const {
    return DialectName(info.param);
  }
};

}  // namespace lotse::testing

// Runs every TEST_P of `suite` (a BothBackendsTest subclass) on both backends.
#define LOTSE_INSTANTIATE_BOTH_BACKENDS(suite)                 \
  INSTANTIATE_TEST_SUITE_P(                                    \
      Backends, suite,                                         \
      ::testing::Values(::lotse::storage::Dialect::kSqlite,    \
                        ::lotse::storage::Dialect::kPostgres), \
      ::lotse::testing::DialectParamName())

#endif  // LOTSE_TESTS_SUPPORT_TEST_DATABASE_H_
