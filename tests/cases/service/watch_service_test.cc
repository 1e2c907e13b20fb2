// WatchCaseEvents through a real in-process server over mutual TLS, on
// SQLite and PostgreSQL: live events, resuming from a cursor (also after a
// restart of the service on the same database), heartbeats, slow consumers,
// bad cursors, events applied from the inbox, and the access decisions the
// streams share.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "services/cases/store/case_store.h"
#include "tests/cases/service/cases_server_fixture.h"

namespace lotse::cases {
namespace {

using Reader = grpc::ClientReader<v1::WatchCaseEventsResponse>;

class WatchServiceTest : public CasesServerTest {
 protected:
  CasesOptions Options() override {
    CasesOptions options = CasesServerTest::Options();
    options.watch.buffer_messages = buffer_;
    options.watch.stall_limit = stall_;
    options.watch.heartbeat = heartbeat_;
    options.watch.poll = poll_;
    options.watch.max_streams_per_agency = max_per_agency_;
    options.watch.max_streams_total = max_total_;
    options.watch.on_refused = [this](const std::string& agency,
                                      absl::string_view reason) {
      absl::MutexLock lock(&refused_mu_);
      refused_.push_back(absl::StrCat(agency, " ", reason));
    };
    return options;
  }

  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<Reader> reader;
  };

  Watch Open(const std::string& as, int64_t after,
             v1::WatchStart start = v1::WATCH_START_UNSPECIFIED,
             v1::CasesService::Stub* stub = nullptr) {
    Watch w;
    w.context = std::make_unique<grpc::ClientContext>();
    Prepare(w.context.get(), 30);
    v1::WatchCaseEventsRequest req;
    req.set_after_cursor(after);
    req.set_start(start);
    w.reader = (stub ? stub : As(as))->WatchCaseEvents(w.context.get(), req);
    return w;
  }

  // Whether `w` is a live stream: it delivers a message (the heartbeat a
  // quiet stream gets) instead of ending.
  static bool Delivers(Watch& w) {
    v1::WatchCaseEventsResponse r;
    return w.reader->Read(&r);
  }

  // The next event (skipping heartbeats); false at the end of the stream.
  static bool NextEvent(Watch& w, v1::CaseEvent* out) {
    v1::WatchCaseEventsResponse r;
    while (w.reader->Read(&r)) {
      if (r.has_event()) {
        *out = r.event();
        return true;
      }
    }
    return false;
  }

  // Opens a case and refers a step; 3 events visible to kim-koeln
  // (CaseOpened, StepReferred, StepStateChanged after accept).
  void MakeEvents(const std::string& person) {
    v1::Case c;
    ASSERT_TRUE(CasesServerTest::Open("kim-koeln", person, &c).ok());
    v1::Step s, accepted;
    ASSERT_TRUE(
        Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE, kVhs, &s)
            .ok());
    ASSERT_TRUE(Accept("vhs-koeln", s, &accepted).ok());
  }

  int buffer_ = 256;
  absl::Duration stall_ = absl::Seconds(10);
  absl::Duration heartbeat_ = absl::Seconds(15);
  absl::Duration poll_ = absl::Milliseconds(100);
  int max_per_agency_ = 0;
  int max_total_ = 0;
  absl::Mutex refused_mu_;
  std::vector<std::string> refused_ ABSL_GUARDED_BY(refused_mu_);
};

TEST_P(WatchServiceTest, LiveEventsWithIncreasingCursors) {
  Watch w = Open("kim-koeln", 0);
  // Give the pump time to resolve the stream's start (NOW).
  absl::SleepFor(absl::Milliseconds(300));
  MakeEvents(kPerson);
  v1::CaseEvent e1, e2, e3;
  ASSERT_TRUE(NextEvent(w, &e1));
  ASSERT_TRUE(NextEvent(w, &e2));
  ASSERT_TRUE(NextEvent(w, &e3));
  EXPECT_TRUE(e1.has_case_opened());
  EXPECT_TRUE(e2.has_step_referred());
  EXPECT_TRUE(e3.has_step_state_changed());
  EXPECT_LT(e1.cursor(), e2.cursor());
  EXPECT_LT(e2.cursor(), e3.cursor());
  EXPECT_FALSE(e1.event_id().empty());
  w.context->TryCancel();
}

TEST_P(WatchServiceTest, OnlyCasesTheCallerParticipatesIn) {
  MakeEvents(kPerson);
  // The job center sees nothing of that case, from the earliest event.
  Watch jc = Open("jobcenter-koeln", 0, v1::WATCH_START_EARLIEST);
  Watch vhs = Open("vhs-koeln", 0, v1::WATCH_START_EARLIEST);
  v1::CaseEvent e;
  // vhs participates since the referral: StepReferred, StepStateChanged.
  ASSERT_TRUE(NextEvent(vhs, &e));
  EXPECT_TRUE(e.has_step_referred());
  ASSERT_TRUE(NextEvent(vhs, &e));
  EXPECT_TRUE(e.has_step_state_changed());
  // A marker event for the job center proves nothing came before it.
  v1::Case c2;
  ASSERT_TRUE(CasesServerTest::Open("kim-koeln", kOtherPerson, &c2).ok());
  v1::Step s;
  ASSERT_TRUE(
      Refer("kim-koeln", c2.name(), v1::STEP_KIND_JOB_PLACEMENT, kJobcenter, &s)
          .ok());
  ASSERT_TRUE(NextEvent(jc, &e));
  EXPECT_TRUE(e.has_step_referred());
  EXPECT_EQ(e.step_referred().step(), s.name());
  jc.context->TryCancel();
  vhs.context->TryCancel();
}

TEST_P(WatchServiceTest, ResumeAfterCursorAcrossRestart) {
  MakeEvents(kPerson);
  Watch w = Open("kim-koeln", 0, v1::WATCH_START_EARLIEST);
  v1::CaseEvent first;
  ASSERT_TRUE(NextEvent(w, &first));
  w.context->TryCancel();
  v1::WatchCaseEventsResponse ignored;
  while (w.reader->Read(&ignored)) {
  }
  w.reader->Finish();

  // Restart the service on the same database; events happen meanwhile.
  StopServer();
  StartServer();
  MakeEvents(kOtherPerson);

  Watch resumed = Open("kim-koeln", first.cursor());
  std::vector<v1::CaseEvent> got;
  v1::CaseEvent e;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(NextEvent(resumed, &e));
    got.push_back(e);
  }
  // Exactly what was missed: the two events after `first` of the first
  // case, then the three of the second; strictly increasing, no gaps in
  // what the caller may see.
  EXPECT_TRUE(got[0].has_step_referred());
  EXPECT_TRUE(got[1].has_step_state_changed());
  EXPECT_TRUE(got[2].has_case_opened());
  EXPECT_GT(got[0].cursor(), first.cursor());
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_GT(got[i].cursor(), got[i - 1].cursor());
  }
  resumed.context->TryCancel();
}

TEST_P(WatchServiceTest, UnknownCursorIsRefused) {
  Watch w = Open("kim-koeln", 999999);
  v1::WatchCaseEventsResponse r;
  EXPECT_FALSE(w.reader->Read(&r));
  grpc::Status s = w.reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(s), "CURSOR_UNKNOWN");
  Watch neg = Open("kim-koeln", -1);
  EXPECT_FALSE(neg.reader->Read(&r));
  EXPECT_EQ(neg.reader->Finish().error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  Watch stranger = Open("abh-koeln", 0);
  EXPECT_FALSE(stranger.reader->Read(&r));
  EXPECT_EQ(Reason(stranger.reader->Finish()), "UNKNOWN_AGENCY");
}

void AppendEvents(storage::Database& db, const std::string& case_name, int n);

// What a restore from a backup leaves of the case-event log: the events up
// to the backup, then FenceRestoredCaseEvents (the restore command's
// on_restore step). Modelled here by removing the events written after the
// backup, which is what the restored file lacks.
void RestoreLogTo(storage::Database& db, int64_t backup_cursor) {
  ASSERT_TRUE(
      storage::RunInTransaction(
          db,
          [&](storage::Transaction& tx) -> absl::Status {
            for (const char* table : {"case_event_audience", "case_events"}) {
              absl::StatusOr<int64_t> n = tx.Execute(
                  absl::StrCat("DELETE FROM ", table, " WHERE seq > $1"),
                  {backup_cursor});
              if (!n.ok()) return n.status();
            }
            return FenceRestoredCaseEvents(tx, absl::Now());
          })
          .ok());
}

TEST_P(WatchServiceTest, CursorsOfHistoryLostInARestoreAreRefused) {
  MakeEvents(kPerson);
  Watch before = Open("kim-koeln", 0, v1::WATCH_START_EARLIEST);
  v1::CaseEvent first, backup_point;
  ASSERT_TRUE(NextEvent(before, &first));
  ASSERT_TRUE(NextEvent(before, &backup_point));
  ASSERT_TRUE(NextEvent(before, &backup_point));  // the newest at backup
  // The lost time: events a client saw before the service was restored.
  MakeEvents(kOtherPerson);
  v1::CaseEvent lost_first, lost_last;
  ASSERT_TRUE(NextEvent(before, &lost_first));
  ASSERT_TRUE(NextEvent(before, &lost_last));
  ASSERT_TRUE(NextEvent(before, &lost_last));
  before.context->TryCancel();
  v1::WatchCaseEventsResponse ignored;
  while (before.reader->Read(&ignored)) {
  }
  before.reader->Finish();

  StopServer();
  RestoreLogTo(db(), backup_point.cursor());
  StartServer();
  // New events after the restore, more than were lost.
  AppendEvents(db(), "cases/after-restore", 5);
  service_->NotifyWatchers();

  // A cursor of the lost history gets a clear refusal naming the restore,
  // never the new events in its place.
  for (int64_t lost : {lost_first.cursor(), lost_last.cursor()}) {
    Watch w = Open("kim-koeln", lost);
    v1::WatchCaseEventsResponse r;
    EXPECT_FALSE(w.reader->Read(&r)) << "cursor " << lost;
    const grpc::Status s = w.reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << lost;
    EXPECT_EQ(Reason(s), "HISTORY_RESTORED") << lost;
    EXPECT_EQ(MetadataOf(FromGrpcStatus(s), "restored_cursor"),
              absl::StrCat(backup_point.cursor()));
  }

  // A cursor from before the backup resumes: the rest of the restored
  // history, then the new events, numbered after every lost cursor.
  Watch resumed = Open("kim-koeln", first.cursor());
  std::vector<v1::CaseEvent> got;
  v1::CaseEvent e;
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(NextEvent(resumed, &e)) << i;
    got.push_back(e);
  }
  resumed.context->TryCancel();
  EXPECT_TRUE(got[0].has_step_referred());
  EXPECT_EQ(got[1].cursor(), backup_point.cursor());
  for (size_t i = 2; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].has_step_updated()) << i;
    EXPECT_GT(got[i].cursor(), lost_last.cursor()) << i;
    EXPECT_GT(got[i].cursor(), got[i - 1].cursor()) << i;
  }
  // The restored point itself and the newest cursor resume normally.
  Watch at_backup = Open("kim-koeln", backup_point.cursor());
  ASSERT_TRUE(NextEvent(at_backup, &e));
  EXPECT_EQ(e.cursor(), got[2].cursor());
  at_backup.context->TryCancel();
}

TEST_P(WatchServiceTest, StreamCapsRefuseBeforeAnythingIsDone) {
  StopServer();
  max_per_agency_ = 2;
  max_total_ = 3;
  heartbeat_ = absl::Milliseconds(100);
  StartServer();
  const size_t audited = AuditOf("cases").size();
  Watch a = Open("kim-koeln", 0);
  Watch b = Open("kim-koeln", 0);
  ASSERT_TRUE(Delivers(a));
  ASSERT_TRUE(Delivers(b));

  // The agency's third stream ends at once, naming its cap.
  Watch c = Open("kim-koeln", 0);
  EXPECT_FALSE(Delivers(c));
  grpc::Status s = c.reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Reason(s), "TOO_MANY_WATCH_STREAMS");
  absl::Status back = FromGrpcStatus(s);
  EXPECT_EQ(MetadataOf(back, "limit"), "watch_streams_per_agency");
  EXPECT_EQ(MetadataOf(back, "value"), "2");
  EXPECT_EQ(RetryDelayOf(back), kWatchStreamRetryDelay);

  // Another agency still gets one, up to the process's cap.
  Watch vhs = Open("vhs-koeln", 0);
  ASSERT_TRUE(Delivers(vhs));
  Watch jc = Open("jobcenter-koeln", 0);
  EXPECT_FALSE(Delivers(jc));
  s = jc.reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(MetadataOf(FromGrpcStatus(s), "limit"), "watch_streams_total");
  {
    absl::MutexLock lock(&refused_mu_);
    EXPECT_EQ(refused_, (std::vector<std::string>{
                            "kim-koeln TOO_MANY_WATCH_STREAMS",
                            "jobcenter-koeln TOO_MANY_WATCH_STREAMS"}));
  }
  // The refused streams were never resolved: nothing audited for them
  // (the three live ones were).
  EXPECT_EQ(AuditOf("cases").size(), audited + 3);

  // A stream that ends gives its place back.
  a.context->TryCancel();
  while (Delivers(a)) {
  }
  a.reader->Finish();
  const absl::Time until = absl::Now() + absl::Seconds(20);
  bool reopened = false;
  while (!reopened && absl::Now() < until) {
    Watch again = Open("kim-koeln", 0);
    reopened = Delivers(again);
    again.context->TryCancel();
    while (Delivers(again)) {
    }
    again.reader->Finish();
    if (!reopened) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(reopened);
  b.context->TryCancel();
  vhs.context->TryCancel();
}

TEST_P(WatchServiceTest, HeartbeatCarriesTheCursor) {
  StopServer();
  heartbeat_ = absl::Milliseconds(200);
  StartServer();
  MakeEvents(kPerson);
  Watch w = Open("jobcenter-koeln", 0);
  v1::WatchCaseEventsResponse r;
  ASSERT_TRUE(w.reader->Read(&r));
  ASSERT_TRUE(r.has_heartbeat());
  EXPECT_GE(r.heartbeat().cursor(), 3);
  w.context->TryCancel();
}

// Many events for kim-koeln straight into the log, as a busy deployment
// would write them.
void AppendEvents(storage::Database& db, const std::string& case_name, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(storage::RunInTransaction(
                    db,
                    [&](storage::Transaction& tx) -> absl::Status {
                      v1::CaseEvent e;
                      e.set_event_id(absl::StrCat("bulk-", case_name, "-", i));
                      e.set_case_name(case_name);
                      v1::StepUpdated* u = e.mutable_step_updated();
                      u->set_case_name(case_name);
                      u->add_changed_fields(std::string(200, 'x'));
                      return AppendCaseEvent(tx, e, kPerson, {kKim}).status();
                    })
                    .ok());
  }
}

TEST_P(WatchServiceTest, SlowConsumerIsCutOffWithResumeCursor) {
  StopServer();
  buffer_ = 4;
  stall_ = absl::Milliseconds(300);
  StartServer();
  // A client with a tiny flow-control window that does not read.
  auto creds = server::ClientCredentialsFromDir(pki_, "kim-koeln");
  ASSERT_TRUE(creds.ok());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt("lotse.test.slow", 1);
  auto slow_stub = v1::CasesService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", server_->port()), *creds, args));
  Watch slow = Open("kim-koeln", 0, v1::WATCH_START_EARLIEST, slow_stub.get());
  // A healthy watcher at the same time.
  Watch fast = Open("kim-koeln", 0, v1::WATCH_START_EARLIEST);
  AppendEvents(db(), "cases/bulk", 400);
  service_->NotifyWatchers();
  v1::CaseEvent e;
  int fast_seen = 0;
  while (fast_seen < 400 && NextEvent(fast, &e)) ++fast_seen;
  EXPECT_EQ(fast_seen, 400);  // not held up by the slow one
  absl::SleepFor(absl::Seconds(2));
  // Now the slow client reads: what was in flight, then the status.
  int64_t last = 0;
  while (NextEvent(slow, &e)) last = e.cursor();
  grpc::Status s = slow.reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Reason(s), "CONSUMER_TOO_SLOW");
  EXPECT_LT(last, 400);
  // Resuming from the last cursor read gets the rest, nothing lost.
  Watch resumed = Open("kim-koeln", last);
  int rest = 0;
  int64_t prev = last;
  while (prev < 400 && NextEvent(resumed, &e)) {
    EXPECT_EQ(e.cursor(), prev + 1);
    prev = e.cursor();
    ++rest;
  }
  EXPECT_EQ(last + rest, 400);
  fast.context->TryCancel();
  resumed.context->TryCancel();
}

TEST_P(WatchServiceTest, ActivityDetailsWithheldPerEvent) {
  v1::Case c;
  ASSERT_TRUE(CasesServerTest::Open("kim-koeln", kPerson, &c).ok());
  v1::Step s;
  ASSERT_TRUE(
      Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE, kVhs, &s)
          .ok());
  courses::v1::CourseBooked booked;
  booked.mutable_context()->set_person(kPerson);
  booked.mutable_context()->set_course("courses/c1");
  booked.mutable_context()->set_provider_agency(kVhs);
  booked.mutable_context()->set_case_step(s.name());
  lotse::events::v1::Event ev;
  ev.set_event_id("ev-b");
  ev.mutable_payload()->PackFrom(booked);
  ASSERT_TRUE(service_->ApplyEvent(ev).ok());
  access_.Grant(kVhs, type::v1::DATA_CATEGORY_LANGUAGE);
  Watch kim = Open("kim-koeln", 0, v1::WATCH_START_EARLIEST);
  Watch vhs = Open("vhs-koeln", 0, v1::WATCH_START_EARLIEST);
  auto find_activity = [&](Watch& w) {
    v1::CaseEvent e;
    while (NextEvent(w, &e)) {
      if (e.has_activity_recorded()) return e;
    }
    return v1::CaseEvent();
  };
  v1::CaseEvent for_kim = find_activity(kim);
  v1::CaseEvent for_vhs = find_activity(vhs);
  EXPECT_FALSE(for_kim.activity_recorded().activity().has_course());
  ASSERT_EQ(for_kim.withheld_size(), 1);
  EXPECT_EQ(for_kim.withheld(0).field(), "activity_recorded.activity.course");
  EXPECT_TRUE(for_vhs.activity_recorded().activity().has_course());
  EXPECT_EQ(for_vhs.withheld_size(), 0);
  kim.context->TryCancel();
  vhs.context->TryCancel();
}

TEST_P(WatchServiceTest, InboxEventWakesWatchersWithoutPolling) {
  v1::Case c;
  ASSERT_TRUE(CasesServerTest::Open("kim-koeln", kPerson, &c).ok());
  v1::Step s;
  ASSERT_TRUE(
      Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE, kVhs, &s)
          .ok());
  // A pump that never polls nor sends heartbeats in the test's time: only
  // a wake-up after the inbox's commit brings the event.
  StopServer();
  poll_ = absl::Hours(1);
  heartbeat_ = absl::Hours(1);
  StartServer();
  Watch w = Open("kim-koeln", 0);
  absl::SleepFor(absl::Milliseconds(300));  // the start (NOW) is resolved
  courses::v1::CourseBooked booked;
  booked.mutable_context()->set_person(kPerson);
  booked.mutable_context()->set_course("courses/c1");
  booked.mutable_context()->set_provider_agency(kVhs);
  booked.mutable_context()->set_case_step(s.name());
  lotse::events::v1::Event ev;
  ev.set_event_id("ev-wake");
  ev.mutable_payload()->PackFrom(booked);
  // As the event sink applies it: the inbox and the applier, nothing else.
  absl::StatusOr<bool> applied =
      events::ApplyEventOnce(db(), ev, service_->EventApplier());
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied);
  v1::CaseEvent e;
  bool seen = false;
  // The stream's deadline (30 s) ends the wait if nothing wakes the pump.
  while (!seen && NextEvent(w, &e)) seen = e.has_activity_recorded();
  EXPECT_TRUE(seen);
  EXPECT_EQ(e.activity_recorded().person(), kPerson);
  w.context->TryCancel();
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(WatchServiceTest);

// Counts Check calls and answers them from a StaticAccessChecker.
class CountingAccessChecker final : public AccessChecker {
 public:
  absl::StatusOr<std::vector<AccessDecision>> Check(
      absl::string_view agency, absl::string_view person,
      const std::vector<type::v1::DataCategory>& categories,
      absl::string_view purpose,
      const std::vector<identity::v1::Relation>& relations,
      absl::Time deadline) override {
    ++checks;
    return inner.Check(agency, person, categories, purpose, relations,
                       deadline);
  }
  absl::StatusOr<std::string> ResolvePerson(absl::string_view person,
                                            absl::string_view agency,
                                            absl::string_view purpose,
                                            absl::Time deadline) override {
    return inner.ResolvePerson(person, agency, purpose, deadline);
  }
  absl::StatusOr<identity::v1::Person> GetPerson(absl::string_view person,
                                                 absl::string_view purpose,
                                                 absl::Time deadline) override {
    return inner.GetPerson(person, purpose, deadline);
  }
  absl::StatusOr<identity::v1::ResidenceStatus> GetCurrentResidenceStatus(
      absl::string_view person, absl::string_view purpose,
      absl::Time deadline) override {
    return inner.GetCurrentResidenceStatus(person, purpose, deadline);
  }

  StaticAccessChecker inner;
  int checks = 0;
};

constexpr type::v1::DataCategory kLanguage = type::v1::DATA_CATEGORY_LANGUAGE;
constexpr type::v1::DataCategory kEmployment =
    type::v1::DATA_CATEGORY_EMPLOYMENT;

TEST(SharedAccessDecisionsTest, OneCheckServesEveryAskerOfTheSameKey) {
  CountingAccessChecker access;
  access.inner.set_allow_any_person(true);
  access.inner.Grant(kVhs, kLanguage);
  SharedAccessDecisions decisions(&access, SharedAccessDecisions::Options());
  const absl::Time t0 = absl::Now();
  for (int stream = 0; stream < 100; ++stream) {
    EXPECT_TRUE(decisions.Decide(kVhs, "p", kPerson, kLanguage, t0).allowed);
    AccessDecision other =
        decisions.Decide(kVhs, "p", kPerson, kEmployment, t0);
    EXPECT_FALSE(other.allowed);
    EXPECT_NE(other.denial_reason, type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED);
  }
  EXPECT_EQ(access.checks, 1);
  // Another agency, purpose or person is a decision of its own.
  AccessDecision kim = decisions.Decide(kKim, "p", kPerson, kLanguage, t0);
  EXPECT_FALSE(kim.allowed);
  EXPECT_EQ(kim.denial_reason, type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
  EXPECT_TRUE(decisions.Decide(kVhs, "q", kPerson, kLanguage, t0).allowed);
  EXPECT_TRUE(decisions.Decide(kVhs, "p", kOtherPerson, kLanguage, t0).allowed);
  EXPECT_EQ(access.checks, 4);
  EXPECT_EQ(decisions.size(), 4u);
}

TEST(SharedAccessDecisionsTest, AnswersExpireAfterTheirBound) {
  CountingAccessChecker access;
  access.inner.set_allow_any_person(true);
  access.inner.Grant(kVhs, kLanguage);
  SharedAccessDecisions::Options options;
  options.ttl = absl::Seconds(30);
  SharedAccessDecisions decisions(&access, options);
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(decisions.Decide(kVhs, "p", kPerson, kLanguage, t0).allowed);
  // Within the bound the kept answer counts, even if identity changed its
  // mind (here: any check now fails); after it identity is asked again.
  access.inner.set_unavailable(true);
  EXPECT_TRUE(
      decisions.Decide(kVhs, "p", kPerson, kLanguage, t0 + absl::Seconds(30))
          .allowed);
  EXPECT_EQ(access.checks, 1);
  AccessDecision later =
      decisions.Decide(kVhs, "p", kPerson, kLanguage, t0 + absl::Seconds(31));
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.denial_reason,
            type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE);
  EXPECT_EQ(access.checks, 2);
}

TEST(SharedAccessDecisionsTest, FailedCheckRefusesAndIsRetriedSoon) {
  CountingAccessChecker access;
  access.inner.set_allow_any_person(true);
  access.inner.Grant(kVhs, kLanguage);
  access.inner.set_unavailable(true);
  SharedAccessDecisions::Options options;
  options.retry = absl::Seconds(1);
  SharedAccessDecisions decisions(&access, options);
  const absl::Time t0 = absl::Now();
  for (int stream = 0; stream < 10; ++stream) {
    AccessDecision d = decisions.Decide(kVhs, "p", kPerson, kLanguage, t0);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.denial_reason,
              type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE);
  }
  EXPECT_EQ(access.checks, 1);
  access.inner.set_unavailable(false);
  EXPECT_TRUE(
      decisions
          .Decide(kVhs, "p", kPerson, kLanguage, t0 + absl::Milliseconds(1001))
          .allowed);
  EXPECT_EQ(access.checks, 2);
}

TEST(SharedAccessDecisionsTest, KeepsAtMostMaxEntries) {
  CountingAccessChecker access;
  access.inner.set_allow_any_person(true);
  access.inner.Grant(kVhs, kLanguage);
  SharedAccessDecisions::Options options;
  options.max_entries = 3;
  SharedAccessDecisions decisions(&access, options);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < 9; ++i) {
    EXPECT_TRUE(
        decisions.Decide(kVhs, "p", absl::StrCat("persons/p", i), kLanguage, t0)
            .allowed);
    EXPECT_LE(decisions.size(), 3u);
  }
  EXPECT_EQ(access.checks, 9);
  ASSERT_EQ(decisions.size(), 3u);
  // Expired answers make room before live ones are dropped.
  const absl::Time later = t0 + absl::Seconds(31);
  EXPECT_TRUE(
      decisions.Decide(kVhs, "p", "persons/new", kLanguage, later).allowed);
  EXPECT_EQ(decisions.size(), 1u);
}

}  // namespace
}  // namespace lotse::cases
