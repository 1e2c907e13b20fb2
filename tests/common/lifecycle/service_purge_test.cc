// The purge job and the retention rules in a real service process (the
// shared main() of common/server/service_main.h, run by
// purge_test_service).
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

}  // namespace
}  // namespace lotse::testing
