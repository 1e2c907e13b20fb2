// The restore drill on SQLite, with the four services as real processes
// over mutual TLS (wired like tools/lotse.sh): every database is backed up
// online while writes go on, more happens after the backups, everything
// stops, every database is restored from its backup with the service
// binaries' restore command, and the services start again. Then:
//   - the audit chains of all four verify (hash walk and witnesses), each
//     listing its restore; a checkpoint of courses' read chain that
//     placement witnessed after courses' backup (so of the time the
//     restore lost) is explained by the restore, not reported as a
//     rewrite, also in lotsectl's output;
//   - a watch cursor from before the backup resumes, and one from the lost
//     time after it is refused with OUT_OF_RANGE / HISTORY_RESTORED instead
//     of skipping the events that now take its positions;
//   - events identity's backup holds as undelivered are delivered after the
//     restore (to cases, which had not applied them when backed up), and
//     those the receiver had already applied (courses) are acknowledged
//     without being applied again;
//   - a create acknowledged before the backup, retried with its request id,
//     answers as the first time.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "common/storage/backup.h"
#include "common/storage/database.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using e2e::Call;
using e2e::Describe;
using e2e::Reason;

namespace idv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace av1 = ::lotse::audit::v1;

const char* const kServices[] = {"identity", "cases", "courses", "placement"};

// Rows of `sql` in the SQLite file `path`, every cell as text.
std::vector<std::vector<std::string>> Query(const std::string& path,
                                            const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  storage::SqliteOptions options;
  options.path = path;
  options.pool_size = 1;
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenSqlite(options);
  EXPECT_TRUE(db.ok()) << path << ": " << db.status();
  if (!db.ok()) return out;
  absl::Status s = storage::RunInTransaction(
      **db,
      [&](storage::Transaction& tx) -> absl::Status {
        out.clear();
        absl::StatusOr<storage::Rows> rows = tx.Query(sql);
        if (!rows.ok()) return rows.status();
        for (const storage::Row& row : *rows) {
          std::vector<std::string> cells;
          for (size_t i = 0; i < row.size(); ++i) {
            if (row.IsNull(i)) {
              cells.push_back("NULL");
            } else if (absl::StatusOr<int64_t> v = row.GetInt(i); v.ok()) {
              cells.push_back(absl::StrCat(*v));
            } else {
              cells.push_back(row.GetText(i).value_or("?"));
            }
          }
          out.push_back(std::move(cells));
        }
        return absl::OkStatus();
      },
      storage::TxMode::kReadOnly);
  EXPECT_TRUE(s.ok()) << path << ": " << sql << ": " << s;
  return out;
}

std::set<std::string> FirstColumn(
    const std::vector<std::vector<std::string>>& rows) {
  std::set<std::string> out;
  for (const auto& row : rows) out.insert(row.at(0));
  return out;
}

// The events of identity's outbox not yet acknowledged by `destination`:
// not taken into delivery yet, or taken and undelivered.
std::string PendingFor(const std::string& destination) {
  return absl::StrCat(
      "SELECT o.event_id FROM event_outbox o WHERE o.seq >= COALESCE((SELECT "
      "next_seq FROM event_outbox_cursor WHERE destination = '",
      destination,
      "'), 0) OR o.seq IN (SELECT seq FROM event_outbox_delivery WHERE "
      "destination = '",
      destination, "' AND delivered_at IS NULL)");
}

class RestoreDrillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-restore.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    for (const char* s : kServices) ports_[s] = FreeLocalPort();
    auto to = [&](const char* s) {
      return absl::StrCat(s, "=127.0.0.1:", ports_[s]);
    };
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", ports_["identity"]);
    args_["identity"] = {absl::StrCat("--event_destinations=", to("cases"), ",",
                                      to("courses"), ",", to("placement"))};
    args_["cases"] = {identity_target,
                      absl::StrCat("--event_destinations=", to("identity"))};
    args_["courses"] = {identity_target,
                        absl::StrCat("--event_destinations=", to("identity"),
                                     ",", to("cases"), ",", to("placement")),
                        "--audit_checkpoint_interval=1s"};
    args_["placement"] = {identity_target,
                          absl::StrCat("--event_destinations=", to("identity"),
                                       ",", to("cases"))};
  }

  std::string Db(const std::string& service) const {
    return absl::StrCat(dir_, "/", service, ".db");
  }
  std::string Backup(const std::string& service) const {
    return absl::StrCat(dir_, "/backup/", service, ".db");
  }
  // The read chains' files (the services' default beside --database, and
  // what backup writes beside the backup).
  std::string ReadsDb(const std::string& service) const {
    return absl::StrCat(dir_, "/", service, ".reads.db");
  }
  std::string ReadsBackup(const std::string& service) const {
    return absl::StrCat(dir_, "/backup/", service, ".reads.db");
  }
  std::string Binary(const std::string& service) const {
    return absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service);
  }

  void Start(const std::string& service) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", ports_[service]),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", Db(service)), "--drain_grace=100ms",
        "--shutdown_deadline=1s",
        // Checkpoints at shutdown only, unless args_ says otherwise (a
        // later flag wins): courses publishes every second, so that one
        // of the time its restore loses reaches a witness.
        "--audit_checkpoint_interval=1h"};
    args.insert(args.end(), args_[service].begin(), args_[service].end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        Binary(service), args,
        absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<int> port = p->WaitServing(absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << p->ReadLog();
    processes_[service] = std::make_unique<ServiceProcess>(*std::move(p));
  }

  void Stop(const std::string& service) {
    auto it = processes_.find(service);
    ASSERT_NE(it, processes_.end()) << service;
    it->second->Signal(SIGTERM);
    EXPECT_EQ(it->second->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << it->second->ReadLog();
    processes_.erase(it);
  }

  // Runs `lotse_<service> <command> ...` on the service's database.
  CommandResult Command(const std::string& service,
                        const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        absl::StrCat("--database=sqlite:", Db(service))};
    args.insert(args.begin(), extra.begin(), extra.end());
    absl::StatusOr<CommandResult> r =
        RunCommand(Binary(service), args, absl::Seconds(120));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  void BackUp(const std::string& service) {
    const CommandResult r = Command(
        service, {"backup", absl::StrCat("--backup_to=", Backup(service))});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service,
                                         const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_[service]),
                               *creds);
  }

  std::string Logs() {
    std::string logs;
    for (const auto& [name, process] : processes_) {
      const std::string log = process->ReadLog();
      absl::StrAppend(&logs, "---- ", name, " log (tail) ----\n",
                      log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    }
    return logs;
  }

  // GetAuditHead of courses as dsb-nrw: one record in courses' read chain.
  void ReadCoursesHead() {
    auto stub = av1::AuditService::NewStub(Channel("courses", "dsb-nrw"));
    av1::GetAuditHeadResponse heads;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->GetAuditHead(c, {}, &heads);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  idv1::Person RegisterPerson(const std::string& given,
                              const std::string& key) {
    idv1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("drill-person-", key));
    *request.mutable_person() = SamplePersonWithPapers(given, "Nasser", 1991);
    request.set_confirm_new_person(true);
    idv1::Person person;
    auto stub =
        idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreatePerson(c, request, &person);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return person;
  }

  // OpenCase as kim-koeln with `request_id`, retried while cases does not
  // know the agency or the relation yet.
  grpc::Status OpenCase(const std::string& person,
                        const std::string& request_id, cv1::Case* opened) {
    cv1::OpenCaseRequest open;
    open.set_request_id(request_id);
    open.mutable_case_record()->set_person(person);
    open.mutable_case_record()->set_responsible_actor("cm-1");
    auto stub = cv1::CasesService::NewStub(Channel("cases", "kim-koeln"));
    grpc::Status last;
    Eventually(
        [&] {
          last = Call([&](grpc::ClientContext* c) {
            return stub->OpenCase(c, open, opened);
          });
          return last.ok();
        },
        absl::Seconds(30));
    return last;
  }

  // Reads kim-koeln's watch stream after `after` until `count` events came
  // or `timeout` passed; the final status in `status` when it ended.
  std::vector<cv1::CaseEvent> Watch(int64_t after, size_t count,
                                    absl::Duration timeout,
                                    grpc::Status* status = nullptr) {
    auto stub = cv1::CasesService::NewStub(Channel("cases", "kim-koeln"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.AddMetadata("x-lotse-actor", "cw-1");
    context.AddMetadata("x-lotse-purpose", "case-management");
    cv1::WatchCaseEventsRequest request;
    request.set_after_cursor(after);
    request.set_start(cv1::WATCH_START_EARLIEST);
    auto reader = stub->WatchCaseEvents(&context, request);
    std::vector<cv1::CaseEvent> events;
    cv1::WatchCaseEventsResponse message;
    bool ended = false;
    while (events.size() < count) {
      if (!reader->Read(&message)) {
        ended = true;
        break;
      }
      if (message.has_event()) events.push_back(message.event());
    }
    if (!ended) context.TryCancel();
    const grpc::Status s = reader->Finish();
    if (status != nullptr) *status = s;
    return events;
  }

  std::string pki_;
  std::string dir_;
  std::map<std::string, int> ports_;
  std::map<std::string, std::vector<std::string>> args_;
  std::map<std::string, std::unique_ptr<ServiceProcess>> processes_;
  int starts_ = 0;
};

TEST_F(RestoreDrillTest, EverythingRestoredIsConsistent) {
  ASSERT_EQ(mkdir(absl::StrCat(dir_, "/backup").c_str(), 0700), 0);
  for (const char* s : kServices) {
    Start(s);
    ASSERT_FALSE(HasFailure()) << Logs();
  }
  absl::StatusOr<ServiceProcess> seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", ports_["identity"]),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
      << seed->ReadLog();

  // ---- Before the backup: a case, its events, a watcher's cursor. ----
  const idv1::Person before = RegisterPerson("Samira", "before");
  cv1::Case acknowledged;
  grpc::Status s = OpenCase(before.name(), "drill-open-before", &acknowledged);
  ASSERT_TRUE(s.ok()) << Describe(s) << Logs();
  const std::vector<cv1::CaseEvent> seen_before =
      Watch(0, 1, absl::Seconds(20));
  ASSERT_EQ(seen_before.size(), 1u) << Logs();
  const int64_t cursor_before = seen_before.back().cursor();

  // ---- Undelivered at backup time: cases and courses stopped, then an
  // agency registered, whose AgencyRegistered waits in identity's outbox
  // for both. ----
  Stop("cases");
  Stop("courses");
  {
    idv1::RegisterAgencyRequest request;
    request.set_request_id("drill-agency");
    request.set_agency_id("drill-traeger");
    request.mutable_agency()->set_display_name("Drill Traeger");
    request.mutable_agency()->set_legal_domain(
        type::v1::LEGAL_DOMAIN_FREIER_TRAEGER);
    request.mutable_agency()->set_municipality_code("05315000");
    request.mutable_agency()->set_certificate_identity("drill-traeger");
    idv1::Agency agency;
    auto stub =
        idv1::IdentityService::NewStub(Channel("identity", "lotse-admin"));
    s = Call([&](grpc::ClientContext* c) {
      return stub->RegisterAgency(c, request, &agency);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // ---- Online backups while writes go on in identity. ----
  std::atomic<bool> stop_writes{false};
  std::atomic<int> writes_during_backup{0};
  std::thread writer([&] {
    auto stub =
        idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
    for (int n = 0; !stop_writes.load(); ++n) {
      idv1::CreatePersonRequest request;
      request.set_request_id(absl::StrCat("drill-load-", n));
      *request.mutable_person() =
          SamplePerson(absl::StrCat("Load", n), "Writer", 1970 + n % 40);
      request.set_confirm_new_person(true);
      idv1::Person person;
      if (Call([&](grpc::ClientContext* c) {
            return stub->CreatePerson(c, request, &person);
          }).ok()) {
        writes_during_backup.fetch_add(1);
      }
    }
  });
  ASSERT_TRUE(Eventually([&] { return writes_during_backup.load() >= 3; },
                         absl::Seconds(30)));
  const int writes_at_backup_start = writes_during_backup.load();
  BackUp("identity");
  BackUp("cases");  // stopped: lacks the agency
  // Courses applies the agency, then is backed up with it applied.
  Start("courses");
  ASSERT_FALSE(HasFailure()) << Logs();
  ASSERT_TRUE(Eventually(
      [&] {
        return !Query(Db("courses"),
                      "SELECT id FROM local_agencies WHERE id = "
                      "'drill-traeger'")
                    .empty();
      },
      absl::Seconds(30)))
      << Logs();
  ReadCoursesHead();  // so that courses' backup holds a read chain
  BackUp("courses");
  stop_writes = true;
  writer.join();
  // ---- A checkpoint of the time courses' restore will lose: courses'
  // read chain moves past what its backup holds, courses signs its head
  // (every second), and placement witnesses it before placement's own
  // backup, so the restored placement still holds it. ----
  const std::string courses_reads_copy =
      absl::StrCat(dir_, "/inspect-courses.reads.db");
  ASSERT_TRUE(
      storage::CopyFileAtomically(ReadsBackup("courses"), courses_reads_copy)
          .ok());
  const auto backed_up_reads =
      Query(courses_reads_copy, "SELECT MAX(seq) FROM audit_read_log");
  ASSERT_EQ(backed_up_reads.size(), 1u);
  const std::string courses_reads_at_backup = backed_up_reads[0].at(0);
  ASSERT_NE(courses_reads_at_backup, "NULL");  // ReadCoursesHead before
  ReadCoursesHead();
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(Eventually(
      [&] {
        return !Query(Db("placement"),
                      absl::StrCat("SELECT seq FROM audit_witness WHERE "
                                   "service = 'courses' AND chain = 'reads' "
                                   "AND seq > ",
                                   courses_reads_at_backup))
                    .empty();
      },
      absl::Seconds(60)))
      << Logs();
  BackUp("placement");
  // The backups did not stop identity's writes.
  EXPECT_GT(writes_during_backup.load(), writes_at_backup_start);
  ASSERT_FALSE(HasFailure()) << Logs();

  // What the backups hold, read from scratch copies.
  auto inspect = [&](const std::string& service) {
    const std::string copy = absl::StrCat(dir_, "/inspect-", service, ".db");
    EXPECT_TRUE(storage::CopyFileAtomically(Backup(service), copy).ok());
    return copy;
  };
  const std::set<std::string> pending_for_cases =
      FirstColumn(Query(inspect("identity"), PendingFor("cases")));
  const std::set<std::string> pending_for_courses =
      FirstColumn(Query(inspect("identity"), PendingFor("courses")));
  const std::set<std::string> cases_inbox_at_backup =
      FirstColumn(Query(inspect("cases"), "SELECT event_id FROM event_inbox"));
  const auto courses_inbox_at_backup =
      Query(inspect("courses"), "SELECT event_id, applied_at FROM event_inbox");
  ASSERT_FALSE(pending_for_cases.empty());
  std::set<std::string> redelivered_but_applied;
  for (const auto& row : courses_inbox_at_backup) {
    if (pending_for_courses.count(row[0]) > 0) {
      redelivered_but_applied.insert(row[0]);
    }
  }
  ASSERT_FALSE(redelivered_but_applied.empty())
      << "courses' backup should hold an event identity's backup still "
         "sends";
  for (const std::string& id : pending_for_cases) {
    ASSERT_EQ(cases_inbox_at_backup.count(id), 0u) << id;
  }

  // ---- The lost time: cases back, a case opened, a watcher sees it. ----
  Start("cases");
  ASSERT_FALSE(HasFailure()) << Logs();
  const idv1::Person lost = RegisterPerson("Yusuf", "lost");
  cv1::Case lost_case;
  s = OpenCase(lost.name(), "drill-open-lost", &lost_case);
  ASSERT_TRUE(s.ok()) << Describe(s) << Logs();
  const std::vector<cv1::CaseEvent> seen_lost =
      Watch(cursor_before, 1, absl::Seconds(20));
  ASSERT_EQ(seen_lost.size(), 1u) << Logs();
  const int64_t cursor_lost = seen_lost.back().cursor();
  ASSERT_GT(cursor_lost, cursor_before);

  // ---- Stop everything, restore everything. ----
  for (const char* service : kServices) Stop(service);
  ASSERT_FALSE(HasFailure());
  // A refusal first: restore checks its backup before it changes anything.
  {
    const CommandResult r = Command(
        "cases",
        {"restore", absl::StrCat("--restore_from=", dir_, "/absent.db")});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(Query(Db("cases"), "SELECT id FROM cases").size(), 2u);
  }
  for (const char* service : kServices) {
    const CommandResult r = Command(
        service, {"restore", absl::StrCat("--restore_from=", Backup(service))});
    ASSERT_EQ(r.exit_code, 0) << service << ": " << r.err;
    EXPECT_FALSE(access(absl::StrCat(Db(service), "-wal").c_str(), F_OK) == 0)
        << service;
  }
  EXPECT_EQ(Query(Db("cases"), "SELECT id FROM cases").size(), 1u);
  for (const char* service : kServices) {
    Start(service);
    ASSERT_FALSE(HasFailure()) << Logs();
  }

  // ---- Events undelivered at backup time arrive; applied ones are not
  // applied again. ----
  ASSERT_TRUE(Eventually(
      [&] {
        const std::set<std::string> inbox =
            FirstColumn(Query(Db("cases"), "SELECT event_id FROM event_inbox"));
        for (const std::string& id : pending_for_cases) {
          if (inbox.count(id) == 0) return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << Logs();
  EXPECT_FALSE(Query(Db("cases"),
                     "SELECT id FROM local_agencies WHERE id = "
                     "'drill-traeger'")
                   .empty());
  // Identity resends to courses what its backup had not seen acknowledged;
  // courses acknowledges each once it finds it in its inbox, unchanged.
  ASSERT_TRUE(Eventually(
      [&] { return Query(Db("identity"), PendingFor("courses")).empty(); },
      absl::Seconds(60)))
      << Logs();
  std::map<std::string, std::string> applied_at_backup;
  for (const auto& row : courses_inbox_at_backup) {
    applied_at_backup[row[0]] = row[1];
  }
  for (const auto& row :
       Query(Db("courses"), "SELECT event_id, applied_at FROM event_inbox")) {
    if (redelivered_but_applied.count(row[0]) > 0) {
      EXPECT_EQ(row[1], applied_at_backup[row[0]]) << row[0];
    }
  }

  // ---- Watch cursors. ----
  grpc::Status watch_status;
  std::vector<cv1::CaseEvent> got =
      Watch(cursor_lost, 1, absl::Seconds(20), &watch_status);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::OUT_OF_RANGE)
      << Describe(watch_status);
  EXPECT_EQ(Reason(watch_status), "HISTORY_RESTORED");
  // New events after the restore are numbered past every lost cursor; a
  // cursor from before the backup gets them.
  const idv1::Person after = RegisterPerson("Leyla", "after");
  cv1::Case after_case;
  s = OpenCase(after.name(), "drill-open-after", &after_case);
  ASSERT_TRUE(s.ok()) << Describe(s) << Logs();
  got = Watch(cursor_before, 1, absl::Seconds(20), &watch_status);
  ASSERT_EQ(got.size(), 1u) << Describe(watch_status);
  EXPECT_EQ(got[0].case_name(), after_case.name());
  EXPECT_GT(got[0].cursor(), cursor_lost);

  // ---- Idempotency: the create acknowledged before the backup, retried,
  // answers as the first time. ----
  cv1::Case retried;
  s = OpenCase(before.name(), "drill-open-before", &retried);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(retried.name(), acknowledged.name());
  EXPECT_EQ(retried.etag(), acknowledged.etag());

  // ---- Audit chains: every chain of every service verifies, and the
  // restore itself is on record, right after what the backup held; the
  // checkpoint placement witnessed of courses' lost time is the restore's.
  // ----
  const std::string restored_courses_reads =
      absl::StrCat(std::stoll(courses_reads_at_backup) + 1);
  for (const char* service : kServices) {
    auto stub = av1::AuditService::NewStub(Channel(service, "dsb-nrw"));
    av1::VerifyAuditChainResponse verified;
    s = Call([&](grpc::ClientContext* c) {
      return stub->VerifyAuditChain(c, {}, &verified);
    });
    ASSERT_TRUE(s.ok()) << service << ": " << Describe(s);
    ASSERT_EQ(verified.chains_size(), 2) << service;
    for (const av1::ChainVerification& v : verified.chains()) {
      const bool reads = v.chain() == av1::AUDIT_CHAIN_READS;
      EXPECT_TRUE(v.intact()) << service << ": " << v.ShortDebugString();
      EXPECT_EQ(v.problem(), "") << service;
      EXPECT_TRUE(v.unreachable_witnesses().empty())
          << service << ": " << v.ShortDebugString();
      const auto records =
          Query(reads ? ReadsDb(service) : Db(service),
                absl::StrCat(
                    "SELECT seq FROM ", reads ? "audit_read_log" : "audit_log",
                    " WHERE operation = 'lotse.ops/RestoreFromBackup'"));
      ASSERT_EQ(records.size(), 1u) << service;
      ASSERT_EQ(v.restores_size(), 1)
          << service << ": " << v.ShortDebugString();
      EXPECT_EQ(absl::StrCat(v.restores(0).seq()), records[0].at(0)) << service;
      EXPECT_EQ(v.restores(0).source(),
                reads ? ReadsBackup(service) : Backup(service))
          << service;
      if (std::string(service) == "courses" && reads) {
        EXPECT_EQ(records[0].at(0), restored_courses_reads);
        EXPECT_GE(v.restores(0).lost_checkpoints(), 1) << v.ShortDebugString();
      }
    }
  }
  // lotsectl shows the restore and what it explains.
  absl::StatusOr<CommandResult> ctl = RunCommand(
      absl::StrCat(BinaryDir(), "/tools/lotsectl/lotsectl"),
      {absl::StrCat("--tls_dir=", pki_), "--client=dsb-nrw", "--actor=dpo-1",
       absl::StrCat("--courses=127.0.0.1:", ports_["courses"]), "audit",
       "verify", "--service", "courses", "--chain", "reads"},
      absl::Seconds(60));
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  EXPECT_EQ(ctl->exit_code, 0) << ctl->err;
  EXPECT_THAT(ctl->out,
              ::testing::HasSubstr(absl::StrCat(
                  "restored: READS seq ", restored_courses_reads, " at ")));
  EXPECT_THAT(ctl->out, ::testing::HasSubstr(absl::StrCat(
                            " from ", ReadsBackup("courses"), "; explains ")));
  EXPECT_THAT(ctl->out,
              ::testing::Not(::testing::HasSubstr("explains 0 witnessed")));
}

}  // namespace
}  // namespace lotse::testing
