// The purge job and the retention rules in a real service process (the
// shared main() of common/server/service_main.h, run by
// purge_test_service).
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/storage/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using ::testing::HasSubstr;

class ServicePurgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/lotse-purge.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    binary_ =
        absl::StrCat(BinaryDir(), "/tests/common/lifecycle/purge_test_service");
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  std::vector<std::string> Args() {
    return {"--listen=127.0.0.1:0", "--insecure_dev",
            absl::StrCat("--database=sqlite:", dir_, "/db.sqlite"),
            "--drain_grace=0s", "--log_calls=false"};
  }

  std::string dir_;
  std::string binary_;
};

TEST_F(ServicePurgeTest, ABadRulesFileStopsStartUpNamingTheLine) {
  const std::string rules =
      WriteFile("bad.conf",
                "# rules\n"
                "retain booking category=LANGUAGE keep=-2y from=END basis=x\n");
  std::vector<std::string> args = Args();
  args.push_back(absl::StrCat("--retention_rules=", rules));
  absl::StatusOr<CommandResult> run =
      RunCommand(binary_, args, absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->exit_code, 0);
  EXPECT_THAT(run->err, HasSubstr(rules));
  EXPECT_THAT(run->err, HasSubstr("line 2: keep must be at least 1"));
  EXPECT_THAT(run->err, ::testing::Not(HasSubstr("\"serving\"")));
}

TEST_F(ServicePurgeTest, AMissingRulesFileStopsStartUp) {
  std::vector<std::string> args = Args();
  args.push_back(absl::StrCat("--retention_rules=", dir_, "/missing.conf"));
  absl::StatusOr<CommandResult> run =
      RunCommand(binary_, args, absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->exit_code, 0);
  EXPECT_THAT(run->err, HasSubstr("missing.conf"));
}

TEST_F(ServicePurgeTest, BadPurgeFlagsStopStartUp) {
  for (const std::string flag : {"--purge_interval=0s", "--purge_batch=0"}) {
    std::vector<std::string> args = Args();
    args.push_back(flag);
    absl::StatusOr<CommandResult> run =
        RunCommand(binary_, args, absl::Seconds(30));
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_NE(run->exit_code, 0) << flag;
    EXPECT_THAT(run->err, HasSubstr(flag.substr(2, flag.find('=') - 2)));
  }
}

TEST_F(ServicePurgeTest, StartsWithTheShippedRulesAndWithoutAny) {
  int run = 0;
  for (const std::string rules :
       {absl::StrCat(SourceDir(), "/config/retention.conf"), std::string()}) {
    std::vector<std::string> args = Args();
    args.push_back(absl::StrCat("--retention_rules=", rules));
    absl::StatusOr<ServiceProcess> process = ServiceProcess::Start(
        binary_, args, absl::StrCat(dir_, "/serve", ++run, ".log"));
    ASSERT_TRUE(process.ok()) << process.status();
    absl::StatusOr<int> port = process->WaitServing(absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << port.status() << process->ReadLog();
    process->Signal(SIGTERM);
    EXPECT_EQ(process->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << process->ReadLog();
  }
}

TEST_F(ServicePurgeTest, ThePurgeJobRunsTheServicesTasks) {
  const std::string rules = WriteFile(
      "rules.conf",
      "retain booking category=LANGUAGE keep=30d from=END basis=\"test\"\n");
  std::vector<std::string> args = Args();
  args.push_back(absl::StrCat("--retention_rules=", rules));
  // A first start creates the tables; the rows are written while it is
  // down.
  {
    absl::StatusOr<ServiceProcess> process =
        ServiceProcess::Start(binary_, args, dir_ + "/first.log");
    ASSERT_TRUE(process.ok()) << process.status();
    ASSERT_TRUE(process->WaitServing(absl::Seconds(30)).ok())
        << process->ReadLog();
    process->Signal(SIGTERM);
    ASSERT_EQ(process->WaitExit(absl::Seconds(30)).value_or(-1), 0);
  }
  const std::string url = absl::StrCat("sqlite:", dir_, "/db.sqlite");
  {
    absl::StatusOr<std::unique_ptr<storage::Database>> db =
        storage::OpenDatabase(url, 1);
    ASSERT_TRUE(db.ok()) << db.status();
    const int64_t old = absl::ToUnixMicros(absl::Now() - absl::Hours(24 * 60));
    const int64_t recent = absl::ToUnixMicros(absl::Now());
    const int64_t hold_end =
        absl::ToUnixMicros(absl::Now() + absl::Hours(24 * 60));
    ASSERT_TRUE(
        storage::RunInTransaction(**db, [&](storage::Transaction& tx) {
          for (const auto& [id, person, anchor] :
               std::vector<std::tuple<std::string, std::string, int64_t>>{
                   {"b1", "p1", old},
                   {"b2", "p2", old},
                   {"b3", "p3", recent}}) {
            absl::StatusOr<int64_t> n =
                tx.Execute("INSERT INTO test_bookings VALUES ($1, $2, $3)",
                           {id, person, anchor});
            if (!n.ok()) return n.status();
          }
          return tx
              .Execute(
                  "INSERT INTO lifecycle_holds VALUES ('legalHolds/h', "
                  "'persons/p2', 'p2', $1, NULL)",
                  {hold_end})
              .status();
        }).ok());
  }
  args.push_back("--purge_interval=100ms");
  absl::StatusOr<ServiceProcess> process =
      ServiceProcess::Start(binary_, args, dir_ + "/second.log");
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(process->WaitServing(absl::Seconds(30)).ok())
      << process->ReadLog();
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(url, 1);
  ASSERT_TRUE(db.ok()) << db.status();
  auto ids = [&] {
    std::vector<std::string> out;
    auto tx = (*db)->Begin(storage::TxMode::kReadOnly);
    if (!tx.ok()) return out;
    auto rows = (*tx)->Query("SELECT id FROM test_bookings ORDER BY id");
    if (!rows.ok()) return out;
    for (const storage::Row& row : *rows) out.push_back(*row.GetText(0));
    return out;
  };
  EXPECT_TRUE(Eventually(
      [&] {
        return ids() == std::vector<std::string>{"b2", "b3"};
      },
      absl::Seconds(20)));
  EXPECT_THAT(ids(), ::testing::ElementsAre("b2", "b3"));
  process->Signal(SIGTERM);
  EXPECT_EQ(process->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << process->ReadLog();
  EXPECT_THAT(process->ReadLog(), ::testing::Not(HasSubstr("purge failed")));
}

}  // namespace
}  // namespace lotse::testing
