// The purge job of the running lotse_cases process (its make_purge_tasks,
// --retention_rules, --purge_interval): on a database seeded with closed
// and open cases, the shipped rules remove the case closed longer than
// three years ago, keep its steps' timing facts for the statistics, and
// leave the held, the recently closed and the open case.
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/lifecycle/holds.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "services/cases/store/case_store.h"
#include "services/cases/store/migrations.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::cases {
namespace {

using storage::Transaction;

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

// A case of `person`, closed at `closed` (open when InfinitePast), written
// as a release before close_us existed would have left it (close_us 0).
absl::Status SeedCase(Transaction& tx, const std::string& id,
                      const std::string& person, absl::Time created,
                      absl::Time closed) {
  CaseRow row;
  row.id = id;
  row.version = 1;
  row.record.set_person(absl::StrCat("persons/", person));
  row.record.set_owner_agency("agencies/kim-koeln");
  row.record.add_participating_agencies("agencies/kim-koeln");
  *row.record.mutable_create_time() = Ts(created);
  row.record.set_state(v1::CASE_STATE_ACTIVE);
  if (closed != absl::InfinitePast()) {
    row.record.set_state(v1::CASE_STATE_CLOSED);
    *row.record.mutable_close_time() = Ts(closed);
  }
  if (absl::Status s = InsertCase(tx, row); !s.ok()) return s;
  StepRow step;
  step.id = absl::StrCat("s-", id);
  step.case_id = id;
  step.version = 1;
  step.municipality_code = "05315000";
  step.record.set_kind(v1::STEP_KIND_INTEGRATION_COURSE);
  step.record.set_state(v1::STEP_STATE_DONE);
  step.record.set_receiving_agency("agencies/vhs-koeln");
  *step.record.mutable_create_time() = Ts(created);
  *step.record.mutable_accept_time() = Ts(created + absl::Hours(48));
  if (absl::Status s = InsertStep(tx, step); !s.ok()) return s;
  NoteRow note;
  note.id = absl::StrCat("n-", id);
  note.case_id = id;
  note.version = 1;
  note.record.set_text("Erstgespräch");
  note.record.set_author_agency("agencies/kim-koeln");
  if (absl::Status s = InsertNote(tx, note); !s.ok()) return s;
  v1::CaseEvent event;
  event.set_event_id(absl::StrCat("e-", id));
  event.set_case_name(absl::StrCat("cases/", id));
  event.mutable_case_opened()->set_case_name(event.case_name());
  return AppendCaseEvent(tx, event, row.record.person(), {"agencies/kim-koeln"})
      .status();
}

TEST(CasesPurgeProcessTest, TheRunningServicePurgesDueCasesButNotHeldOnes) {
  char pattern[] = "/tmp/lotse-cases-purge.XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string url = absl::StrCat("sqlite:", dir, "/cases.db");
  const absl::Time now = absl::Now();
  const absl::Time years_ago = now - absl::Hours(24 * 365 * 4);
  {
    absl::StatusOr<std::unique_ptr<storage::Database>> db =
        storage::OpenDatabase(url);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(storage::ApplyMigrations(**db, CasesMigrations()).ok());
    absl::Status seeded =
        storage::RunInTransaction(**db, [&](Transaction& tx) -> absl::Status {
          for (const auto& [id, closed] :
               std::vector<std::pair<std::string, absl::Time>>{
                   {"c-old", years_ago},
                   {"c-held", years_ago},
                   {"c-new", now - absl::Hours(24)},
                   {"c-open", absl::InfinitePast()}}) {
            if (absl::Status s = SeedCase(tx, id, absl::StrCat("p", id),
                                          years_ago - absl::Hours(24), closed);
                !s.ok()) {
              return s;
            }
          }
          identity::v1::LegalHold hold;
          hold.set_name("legalHolds/h1");
          hold.set_subject("cases/c-held");
          hold.set_person("persons/pc-held");
          hold.set_reason("Verfahren 4 K 12/26");
          const absl::CivilDay end =
              absl::ToCivilDay(now, absl::UTCTimeZone()) + 365;
          hold.mutable_end_date()->set_year(static_cast<int32_t>(end.year()));
          hold.mutable_end_date()->set_month(end.month());
          hold.mutable_end_date()->set_day(end.day());
          return lifecycle::ApplyHold(tx, hold);
        });
    ASSERT_TRUE(seeded.ok()) << seeded;
  }

  absl::StatusOr<testing::ServiceProcess> process =
      testing::ServiceProcess::Start(
          absl::StrCat(testing::BinaryDir(), "/services/cases/lotse_cases"),
          {"--listen=127.0.0.1:0", "--insecure_dev",
           absl::StrCat("--database=", url),
           absl::StrCat("--retention_rules=", testing::SourceDir(),
                        "/config/retention.conf"),
           "--purge_interval=1s", "--drain_grace=0s", "--log_calls=false"},
          absl::StrCat(dir, "/cases.log"));
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> port = process->WaitServing(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << process->ReadLog();

  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(url);
  ASSERT_TRUE(db.ok()) << db.status();
  auto query = [&](const std::string& sql) {
    std::vector<std::string> out;
    absl::Status s = storage::RunInTransaction(
        **db,
        [&](Transaction& tx) -> absl::Status {
          out.clear();
          absl::StatusOr<storage::Rows> rows = tx.Query(sql);
          if (!rows.ok()) return rows.status();
          for (const storage::Row& row : *rows) {
            absl::StatusOr<std::string> text = row.GetText(0);
            out.push_back(text.ok() ? *text : absl::StrCat(*row.GetInt(0)));
          }
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  };
  const std::vector<std::string> left = {"c-held", "c-new", "c-open"};
  EXPECT_TRUE(testing::Eventually(
      [&] { return query("SELECT id FROM cases ORDER BY id") == left; },
      absl::Seconds(30)))
      << process->ReadLog();
  // The old case's step is kept as a fact without case or person; its
  // event row stays, emptied; its note went with it; the purge is audited.
  EXPECT_EQ(query("SELECT COUNT(*) FROM step_statistics"),
            std::vector<std::string>{"1"});
  EXPECT_EQ(query("SELECT COUNT(*) FROM steps"), std::vector<std::string>{"3"});
  EXPECT_EQ(query("SELECT LENGTH(body) FROM case_events WHERE case_id = "
                  "'c-old'"),
            std::vector<std::string>{"0"});
  EXPECT_EQ(query("SELECT COUNT(*) FROM notes WHERE case_id = 'c-old'"),
            std::vector<std::string>{"0"});
  // The held case's note is due (one year after closing) but held.
  EXPECT_EQ(query("SELECT COUNT(*) FROM notes WHERE case_id = 'c-held'"),
            std::vector<std::string>{"1"});
  EXPECT_FALSE(query("SELECT seq FROM audit_log WHERE operation = "
                     "'lotse.lifecycle/Purge'")
                   .empty());

  process->Signal(SIGTERM);
  EXPECT_EQ(process->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << process->ReadLog();
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

}  // namespace
}  // namespace lotse::cases
