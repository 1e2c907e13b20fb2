// CRLs as the server loads them: made with the dev PKI's own tools
// (tools/dev-pki.sh, openssl ca), in a PKI of this test's own.
#include "common/server/internal/crl.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"

namespace lotse::server::internal {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class CrlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/lotse-crl-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = new std::string(pattern);
    pki_ = new std::string(*dir_ + "/pki");
    ASSERT_EQ(Shell(absl::StrCat(DevPki(), " ", *pki_)), 0);
    // kim-bonn revoked, in a second CRL file; the first stays empty.
    ASSERT_EQ(
        Shell(absl::StrCat(
            "cp ", *pki_, "/crl/ca.crl ", *dir_, "/empty.crl && ", DevPki(),
            " revoke kim-bonn ", *pki_, " && cp ", *pki_, "/crl/ca.crl ", *dir_,
            "/revoked.crl && openssl crl -in ", *dir_,
            "/revoked.crl -outform DER -out ", *dir_, "/revoked.der")),
        0);
  }

  static std::string DevPki() {
    return absl::StrCat(lotse::testing::SourceDir(), "/tools/dev-pki.sh");
  }
  static int Shell(const std::string& command) {
    const int rc =
        std::system(absl::StrCat("(", command, ") >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  static CrlFile File(const std::string& name) {
    return CrlFile{name, Slurp(*dir_ + "/" + name)};
  }
  static std::string Ca() { return Slurp(*pki_ + "/ca.crt"); }
  static std::string Client(const std::string& name) {
    return Slurp(absl::StrCat(*pki_, "/clients/", name, ".crt"));
  }

  static std::string* dir_;
  static std::string* pki_;
};
std::string* CrlTest::dir_ = nullptr;
std::string* CrlTest::pki_ = nullptr;

TEST_F(CrlTest, EmptyCrlRevokesNothing) {
  absl::StatusOr<CrlSet> set =
      CrlSet::Parse({File("empty.crl")}, Ca(), absl::Now());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->crl_count(), 1);
  EXPECT_EQ(set->revoked_count(), 0);
  EXPECT_EQ(set->IsRevoked(Client("kim-bonn")).value_or(true), false);
  // dev-pki.sh issues CRLs for 30 days.
  EXPECT_GT(set->next_update(), absl::Now() + absl::Hours(24 * 29));
  EXPECT_LT(set->next_update(), absl::Now() + absl::Hours(24 * 31));
}

TEST_F(CrlTest, RevokedSerialIsFoundOthersAreNot) {
  for (const char* name : {"revoked.crl", "revoked.der"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<CrlSet> set = CrlSet::Parse({File(name)}, Ca(), absl::Now());
    ASSERT_TRUE(set.ok()) << set.status();
    EXPECT_EQ(set->revoked_count(), 1);
    EXPECT_EQ(set->IsRevoked(Client("kim-bonn")).value_or(false), true);
    EXPECT_EQ(set->IsRevoked(Client("kim-koeln")).value_or(true), false);
    EXPECT_EQ(set->IsRevoked(Client("svc-cases")).value_or(true), false);
  }
}

TEST_F(CrlTest, SeveralFilesAddUp) {
  absl::StatusOr<CrlSet> set = CrlSet::Parse(
      {File("empty.crl"), File("revoked.crl")}, Ca(), absl::Now());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->crl_count(), 2);
  EXPECT_EQ(set->IsRevoked(Client("kim-bonn")).value_or(false), true);
}

TEST_F(CrlTest, CertificateOfAnotherIssuerIsNotRevoked) {
  absl::StatusOr<CrlSet> set =
      CrlSet::Parse({File("revoked.crl")}, Ca(), absl::Now());
  ASSERT_TRUE(set.ok()) << set.status();
  // Same subject name as the dev CA but another key: the lookup is by
  // issuer name, and the rogue client's serial is not in the CRL.
  EXPECT_EQ(
      set->IsRevoked(Slurp(*pki_ + "/test/rogue-client.crt")).value_or(true),
      false);
  EXPECT_EQ(set->IsRevoked("not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CrlTest, UnusableCrlsAreRefusedWithTheReason) {
  // Past its nextUpdate: judged at a time after it.
  absl::StatusOr<CrlSet> expired = CrlSet::Parse(
      {File("revoked.crl")}, Ca(), absl::Now() + absl::Hours(24 * 40));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(expired.status().message(), HasSubstr("expired"));

  absl::StatusOr<CrlSet> garbage =
      CrlSet::Parse({CrlFile{"g.crl", "not a CRL"}}, Ca(), absl::Now());
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(garbage.status().message(), HasSubstr("g.crl: no CRL in it"));

  absl::StatusOr<CrlSet> truncated = CrlSet::Parse(
      {CrlFile{"t.crl", File("revoked.crl").contents.substr(0, 200)}}, Ca(),
      absl::Now());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kFailedPrecondition);

  // Verified against a bundle whose only certificate has the CA's name but
  // another key (the rogue CA): the signature does not verify.
  absl::StatusOr<CrlSet> forged = CrlSet::Parse(
      {File("revoked.crl")}, Slurp(*pki_ + "/test/rogue-ca.crt"), absl::Now());
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(forged.status().message(), HasSubstr("signature"));

  // A bundle without the issuer at all.
  absl::StatusOr<CrlSet> unknown =
      CrlSet::Parse({File("revoked.crl")},
                    Slurp(*pki_ + "/servers/identity.crt"), absl::Now());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unknown.status().message(), HasSubstr("not a certificate"));

  EXPECT_EQ(CrlSet::Parse({}, Ca(), absl::Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CrlTest, NameOfGivesSerialAndSubjectForLogs) {
  const CertificateName name = NameOf(Client("kim-bonn"));
  EXPECT_THAT(name.subject, HasSubstr("CN=kim-bonn"));
  EXPECT_THAT(name.subject, HasSubstr("OU=KOMMUNE"));
  // The serial dev-pki.sh printed when it revoked the certificate.
  EXPECT_THAT(Slurp(*pki_ + "/ca-db/index.txt"), HasSubstr(name.serial));
  EXPECT_FALSE(name.serial.empty());
  EXPECT_TRUE(NameOf("garbage").serial.empty());
}

TEST_F(CrlTest, DirectorySkipsHiddenEntriesAndSubdirectories) {
  const std::string d = *dir_ + "/crls";
  ASSERT_EQ(Shell(absl::StrCat("mkdir -p ", d, "/..2026_12_07/sub && cp ",
                               *dir_, "/revoked.crl ", d,
                               "/..2026_12_07/ca.crl && ln -sfn ..2026_12_07 ",
                               d, "/..data && ln -sfn ..data/ca.crl ", d,
                               "/ca.crl && echo junk >", d, "/.hidden")),
            0);
  absl::StatusOr<std::vector<CrlFile>> files = ReadCrlFiles(d);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, d + "/ca.crl");
  EXPECT_EQ((*files)[0].contents, File("revoked.crl").contents);

  ASSERT_EQ(Shell(absl::StrCat("mkdir -p ", *dir_, "/none")), 0);
  EXPECT_EQ(ReadCrlFiles(*dir_ + "/none").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadCrlFiles(*dir_ + "/missing.crl").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lotse::server::internal
