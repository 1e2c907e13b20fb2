// The cases service's share of the data lifecycle, through a real
// in-process server over mutual TLS, on SQLite and PostgreSQL: identity's
// PersonErased and legal-hold events applied by the event handler, the
// waiting-time statistics across an erasure and a purge, the watch stream
// resumed across an erasure, the purge tasks of "case" and "note", and
// events that arrive after an erasure or are malformed.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/events/outbox.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "common/storage/database.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/cases/store/case_store.h"
#include "services/cases/store/lifecycle_store.h"
#include "tests/cases/service/cases_server_fixture.h"

namespace lotse::cases {
namespace {

using Reader = grpc::ClientReader<v1::WatchCaseEventsResponse>;

constexpr char kCem[] = "persons/p-cem";

lotse::events::v1::Event IdentityEvent(const std::string& id,
                                       const google::protobuf::Message& m) {
  lotse::events::v1::Event e;
  e.set_event_id(id);
  e.set_source("identity");
  e.mutable_payload()->PackFrom(m);
  return e;
}

class LifecycleServiceTest : public CasesServerTest {
 protected:
  void SetUp() override {
    CasesServerTest::SetUp();
    if (HasFatalFailure()) return;
    access_.AddPerson(kCem);
  }

  absl::StatusOr<bool> Erase(const std::string& person,
                             const std::string& event_id = "") {
    identity::v1::PersonErased m;
    m.set_person(person);
    m.set_requesting_agency(kKim);
    return service_->ApplyEvent(IdentityEvent(
        event_id.empty() ? absl::StrCat("erase-", person) : event_id, m));
  }

  // A hold on `subject` ("cases/x" or "persons/x") of `person`, ending in a
  // year; released when `released`.
  absl::StatusOr<bool> Hold(const std::string& hold, const std::string& subject,
                            const std::string& person, bool released) {
    identity::v1::LegalHold h;
    h.set_name(absl::StrCat("legalHolds/", hold));
    h.set_subject(subject);
    h.set_person(person);
    h.set_reason("Verfahren 4 K 12/26");
    const absl::CivilDay end =
        absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 365;
    h.mutable_end_date()->set_year(static_cast<int32_t>(end.year()));
    h.mutable_end_date()->set_month(end.month());
    h.mutable_end_date()->set_day(end.day());
    h.set_placing_agency(kKim);
    if (released) {
      h.mutable_release_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
      identity::v1::LegalHoldReleased m;
      *m.mutable_hold() = h;
      return service_->ApplyEvent(
          IdentityEvent(absl::StrCat("release-", hold), m));
    }
    identity::v1::LegalHoldPlaced m;
    *m.mutable_hold() = h;
    return service_->ApplyEvent(IdentityEvent(absl::StrCat("hold-", hold), m));
  }

  // Opens a case for `person` with an accepted integration course step, a
  // counselling step and a note by the owner.
  v1::Case CaseWithSteps(const std::string& person) {
    v1::Case c;
    EXPECT_TRUE(Open("kim-koeln", person, &c).ok());
    v1::Step s, accepted;
    EXPECT_TRUE(
        Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE, kVhs, &s)
            .ok());
    EXPECT_TRUE(Accept("vhs-koeln", s, &accepted).ok());
    EXPECT_TRUE(
        Refer("kim-koeln", c.name(), v1::STEP_KIND_COUNSELLING, kCaritas, &s)
            .ok());
    v1::Note note;
    EXPECT_TRUE(CreateNote(c.name(), "Erstgespräch", &note).ok());
    return c;
  }

  grpc::Status CreateNote(const std::string& parent, const std::string& text,
                          v1::Note* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CreateNoteRequest req;
    req.set_parent(parent);
    req.set_request_id(absl::StrCat("note-", ++counter_));
    req.mutable_note()->set_text(text);
    return As("kim-koeln")->CreateNote(&context, req, out);
  }

  grpc::Status GetCase(const std::string& name, v1::Case* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetCaseRequest req;
    req.set_name(name);
    return As("kim-koeln")->GetCase(&context, req, out);
  }

  grpc::Status Close(const std::string& name, v1::Case* out) {
    v1::Case c;
    grpc::Status got = GetCase(name, &c);
    if (!got.ok()) return got;
    grpc::ClientContext context;
    Prepare(&context);
    v1::CloseCaseRequest req;
    req.set_name(name);
    req.set_etag(c.etag());
    req.set_closing_reason(v1::CASE_CLOSING_REASON_OTHER);
    req.set_closing_comment("umgezogen");
    req.set_cancel_open_steps(true);
    return As("kim-koeln")->CloseCase(&context, req, out);
  }

  // This year's waiting-time statistics of Köln, every grouping, without
  // the time they were computed (the rest must not change).
  std::string Statistics() {
    const absl::CivilDay today =
        absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetWaitingTimeStatisticsRequest req;
    req.set_municipality_code("05315000");
    req.mutable_period_start()->set_year(static_cast<int32_t>(today.year()));
    req.mutable_period_start()->set_month(1);
    req.mutable_period_start()->set_day(1);
    req.mutable_period_end()->set_year(static_cast<int32_t>(today.year()));
    req.mutable_period_end()->set_month(12);
    req.mutable_period_end()->set_day(31);
    v1::WaitingTimeStatistics out;
    grpc::Status s =
        As("kim-koeln")->GetWaitingTimeStatistics(&context, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    out.clear_compute_time();
    return out.DebugString();
  }

  // Runs the purge task of `kind` once (one batch) at `now` with `cutoff`.
  lifecycle::PurgeBatch Purge(const std::string& kind, absl::Time cutoff,
                              absl::Time now, int limit = 100) {
    lifecycle::PurgeBatch batch;
    for (const lifecycle::PurgeTask& task : CasePurgeTasks()) {
      if (task.kind != kind) continue;
      absl::Status s = storage::RunInTransaction(
          db(), [&](storage::Transaction& tx) -> absl::Status {
            absl::StatusOr<lifecycle::PurgeBatch> b =
                task.run(tx, cutoff, now, limit);
            if (!b.ok()) return b.status();
            batch = *std::move(b);
            return absl::OkStatus();
          });
      EXPECT_TRUE(s.ok()) << s;
    }
    return batch;
  }

  int64_t CountOf(const std::string& table, const std::string& where) {
    return Count(
        absl::StrCat("SELECT COUNT(*) FROM ", table, " WHERE ", where));
  }

  static std::string CaseId(const v1::Case& c) { return c.name().substr(6); }

  // The ErasureReported events in the outbox, opened as the relay opens
  // them (outbox rows about one person are sealed).
  std::vector<identity::v1::ErasureReported> Reports() {
    std::vector<identity::v1::ErasureReported> out;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](storage::Transaction& tx) -> absl::Status {
          out.clear();
          absl::StatusOr<storage::Rows> rows =
              tx.Query("SELECT seq FROM event_outbox ORDER BY seq");
          if (!rows.ok()) return rows.status();
          for (const storage::Row& row : *rows) {
            absl::StatusOr<lotse::events::v1::Event> e =
                events::ReadOutboxEvent(tx, *row.GetInt(0));
            if (absl::IsNotFound(e.status())) continue;  // shredded
            if (!e.ok()) return e.status();
            identity::v1::ErasureReported report;
            if (e->payload().UnpackTo(&report)) out.push_back(report);
          }
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
};

TEST_P(LifecycleServiceTest, ErasureRemovesThePersonsCasesAsIfUnknown) {
  const v1::Case mine = CaseWithSteps(kPerson);
  const v1::Case other = CaseWithSteps(kOtherPerson);
  // An activity recorded for the person before any case (none matches).
  courses::v1::WaitlistJoined joined;
  joined.mutable_context()->set_person(kPerson);
  joined.mutable_context()->set_provider_agency(kVhs);
  joined.mutable_context()->set_course("courses/c1");
  lotse::events::v1::Event course;
  course.set_event_id("ev-joined");
  course.set_source("courses");
  course.mutable_payload()->PackFrom(joined);
  ASSERT_TRUE(service_->ApplyEvent(course).ok());
  v1::Step step;
  grpc::ClientContext lc;
  Prepare(&lc);
  v1::ListStepsRequest list_steps;
  list_steps.set_parent(mine.name());
  v1::ListStepsResponse steps;
  ASSERT_TRUE(As("kim-koeln")->ListSteps(&lc, list_steps, &steps).ok());
  ASSERT_EQ(steps.steps_size(), 2);
  grpc::ClientContext nc;
  Prepare(&nc);
  v1::ListNotesRequest list_notes;
  list_notes.set_parent(mine.name());
  v1::ListNotesResponse notes;
  ASSERT_TRUE(As("kim-koeln")->ListNotes(&nc, list_notes, &notes).ok());
  ASSERT_EQ(notes.notes_size(), 1);
  const int64_t events_before = CountOf("case_events", "1 = 1");

  absl::StatusOr<bool> erased = Erase(kPerson);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_TRUE(*erased);

  v1::Case c;
  EXPECT_EQ(GetCase(mine.name(), &c).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(GetCase(other.name(), &c).ok());
  EXPECT_EQ(GetStep("kim-koeln", steps.steps(0).name(), &step).error_code(),
            grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetNoteRequest req;
    req.set_name(notes.notes(0).name());
    v1::Note note;
    EXPECT_EQ(As("kim-koeln")->GetNote(&context, req, &note).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetIntegrationPlanRequest req;
    req.set_name(absl::StrCat(mine.name(), "/plan"));
    v1::IntegrationPlan plan;
    EXPECT_EQ(
        As("kim-koeln")->GetIntegrationPlan(&context, req, &plan).error_code(),
        grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetCaseViewRequest req;
    req.set_name(mine.name());
    v1::CaseView view;
    EXPECT_EQ(As("kim-koeln")->GetCaseView(&context, req, &view).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ListCasesRequest req;
    req.set_person(kPerson);
    v1::ListCasesResponse cases;
    ASSERT_TRUE(As("kim-koeln")->ListCases(&context, req, &cases).ok());
    EXPECT_EQ(cases.cases_size(), 0);
  }
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ListStepsRequest req;
    req.set_parent(mine.name());
    v1::ListStepsResponse out;
    EXPECT_EQ(As("kim-koeln")->ListSteps(&context, req, &out).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // Nothing of the person is left in the tables; the event log keeps its
  // rows (sequence numbers) but no one is their audience any more.
  const std::string id = CaseId(mine);
  EXPECT_EQ(CountOf("cases", absl::StrCat("person = '", kPerson, "'")), 0);
  for (const char* table : {"steps", "plan_versions", "notes",
                            "case_participants", "case_event_audience"}) {
    EXPECT_EQ(CountOf(table, absl::StrCat("case_id = '", id, "'")), 0) << table;
  }
  EXPECT_EQ(CountOf("unassigned_activities",
                    absl::StrCat("person = '", kPerson, "'")),
            0);
  EXPECT_EQ(CountOf("case_events", "1 = 1"), events_before);
  EXPECT_EQ(CountOf("lifecycle_person_keys",
                    "person = 'p-anna' AND data_key IS NOT NULL"),
            0);
  // The report to identity: everything erased, nothing kept.
  std::vector<identity::v1::ErasureReported> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].person(), kPerson);
  EXPECT_EQ(reports[0].service(), "cases");
  EXPECT_EQ(reports[0].state(), identity::v1::ServiceErasure::STATE_DONE);
  EXPECT_GE(reports[0].erased_records(), 5);  // case, plan, 2 steps, note
  EXPECT_EQ(reports[0].kept_size(), 0);
  // A redelivery changes nothing and reports nothing again.
  absl::StatusOr<bool> again = Erase(kPerson);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(Reports().size(), 1u);
}

TEST_P(LifecycleServiceTest, StatisticsAreTheSameAfterErasureAndPurge) {
  for (const char* person : {kPerson, kOtherPerson, kCem}) {
    CaseWithSteps(person);
  }
  const std::string before = Statistics();
  ASSERT_NE(before.find("referral_count: 3"), std::string::npos) << before;
  ASSERT_TRUE(Erase(kPerson).ok());
  EXPECT_EQ(Statistics(), before);
  EXPECT_GT(CountOf("step_statistics", "1 = 1"), 0);
  // A purged case keeps its steps' facts the same way.
  v1::Case c;
  grpc::ClientContext context;
  Prepare(&context);
  v1::ListCasesRequest req;
  req.set_person(kOtherPerson);
  v1::ListCasesResponse cases;
  ASSERT_TRUE(As("kim-koeln")->ListCases(&context, req, &cases).ok());
  ASSERT_EQ(cases.cases_size(), 1);
  ASSERT_TRUE(Close(cases.cases(0).name(), &c).ok());
  const std::string closed = Statistics();
  const absl::Time now = absl::Now();
  EXPECT_EQ(Purge("case", now + absl::Hours(1), now).purged, 1);
  EXPECT_EQ(Statistics(), closed);
}

TEST_P(LifecycleServiceTest, WatchResumesFromACursorTakenBeforeTheErasure) {
  const v1::Case mine = CaseWithSteps(kPerson);
  CaseWithSteps(kOtherPerson);
  // A cursor from before every event, as a client that saw nothing yet.
  ASSERT_TRUE(Erase(kPerson).ok());
  const v1::Case later = CaseWithSteps(kCem);

  grpc::ClientContext context;
  Prepare(&context, 30);
  v1::WatchCaseEventsRequest req;
  req.set_after_cursor(1);
  std::unique_ptr<Reader> reader =
      As("kim-koeln")->WatchCaseEvents(&context, req);
  // kOtherPerson's and kCem's events, never the erased person's: the
  // stream reads past their rows and goes on to the events after the
  // erasure.
  std::vector<v1::CaseEvent> got;
  v1::WatchCaseEventsResponse r;
  while (reader->Read(&r)) {
    if (!r.has_event()) continue;
    got.push_back(r.event());
    if (r.event().case_name() == later.name() &&
        r.event().has_step_state_changed()) {
      break;
    }
  }
  context.TryCancel();
  while (reader->Read(&r)) {
  }
  reader->Finish();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().case_name(), later.name());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NE(got[i].case_name(), mine.name());
    if (i > 0) EXPECT_GT(got[i].cursor(), got[i - 1].cursor());
  }
  // The erased person's rows are still there, sealed under a key that is
  // gone, so the sequence is unbroken.
  EXPECT_GT(
      CountOf("case_events", absl::StrCat("case_id = '", CaseId(mine), "'")),
      0);
}

TEST_P(LifecycleServiceTest, EventsAboutAnErasedPersonAreDropped) {
  CaseWithSteps(kPerson);
  ASSERT_TRUE(Erase(kPerson).ok());
  const int64_t events = CountOf("case_events", "1 = 1");
  const int64_t outbox = CountOf("event_outbox", "1 = 1");
  // A course booking the courses service sent before it erased arrives
  // after the erasure here.
  courses::v1::CourseBooked booked;
  booked.mutable_context()->set_person(kPerson);
  booked.mutable_context()->set_provider_agency(kVhs);
  booked.mutable_context()->set_course("courses/c1");
  lotse::events::v1::Event e;
  e.set_event_id("ev-late");
  e.set_source("courses");
  e.mutable_payload()->PackFrom(booked);
  absl::StatusOr<bool> applied = service_->ApplyEvent(e);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(*applied);
  EXPECT_EQ(CountOf("unassigned_activities",
                    absl::StrCat("person = '", kPerson, "'")),
            0);
  EXPECT_EQ(CountOf("case_events", "1 = 1"), events);
  EXPECT_EQ(CountOf("event_outbox", "1 = 1"), outbox);
  // A merge onto the erased person moves nothing onto them.
  v1::Case other;
  ASSERT_TRUE(Open("kim-koeln", kOtherPerson, &other).ok());
  identity::v1::PersonMerged merged;
  merged.set_merged(kOtherPerson);
  merged.set_survivor(kPerson);
  ASSERT_TRUE(service_->ApplyEvent(IdentityEvent("merge", merged)).ok());
  v1::Case still;
  ASSERT_TRUE(GetCase(other.name(), &still).ok());
  EXPECT_EQ(still.person(), kOtherPerson);
}

TEST_P(LifecycleServiceTest, MalformedLifecycleEventsAreRefused) {
  identity::v1::PersonErased nobody;
  nobody.set_requesting_agency(kKim);
  absl::StatusOr<bool> r =
      service_->ApplyEvent(IdentityEvent("erase-nobody", nobody));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  nobody.set_person("p-anna");  // not a person name
  r = service_->ApplyEvent(IdentityEvent("erase-bad", nobody));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  identity::v1::LegalHoldPlaced hold;  // no name, subject or end date
  hold.mutable_hold()->set_reason("x");
  r = service_->ApplyEvent(IdentityEvent("hold-bad", hold));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CountOf("lifecycle_holds", "1 = 1"), 0);
  // A correction of the core record is accepted: cases keeps nothing
  // derived from it.
  identity::v1::PersonRectified rectified;
  rectified.set_person(kPerson);
  rectified.add_changed_fields("family_names");
  r = service_->ApplyEvent(IdentityEvent("rectified", rectified));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r);
}

TEST_P(LifecycleServiceTest, PurgeRemovesDueCasesButNotHeldOnes) {
  std::vector<v1::Case> cases;
  for (const char* person : {kPerson, kOtherPerson, kCem}) {
    v1::Case closed;
    cases.push_back(CaseWithSteps(person));
    ASSERT_TRUE(Close(cases.back().name(), &closed).ok());
  }
  access_.AddPerson("persons/p-dora");
  v1::Case open;
  ASSERT_TRUE(Open("kim-koeln", "persons/p-dora", &open).ok());
  // Bela's case is held; Cem is held as a person.
  ASSERT_TRUE(Hold("h1", cases[1].name(), kOtherPerson, false).ok());
  ASSERT_TRUE(Hold("h2", kCem, kCem, false).ok());

  const absl::Time now = absl::Now();
  // Not due yet: the cutoff is before every close.
  lifecycle::PurgeBatch none = Purge("case", now - absl::Hours(1), now);
  EXPECT_EQ(none.purged, 0);
  EXPECT_EQ(none.held, 0);
  EXPECT_FALSE(none.more);

  lifecycle::PurgeBatch batch = Purge("case", now + absl::Hours(1), now);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(batch.held, 2);
  EXPECT_EQ(batch.persons, std::vector<std::string>{"p-anna"});
  v1::Case c;
  EXPECT_EQ(GetCase(cases[0].name(), &c).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(GetCase(cases[1].name(), &c).ok());
  EXPECT_TRUE(GetCase(cases[2].name(), &c).ok());
  EXPECT_TRUE(GetCase(open.name(), &c).ok());
  // A purge leaves no readable event of the case, also not to someone
  // holding the person's key.
  EXPECT_EQ(CountOf("case_events", absl::StrCat("case_id = '", CaseId(cases[0]),
                                                "' AND LENGTH(body) > 0")),
            0);

  // Released, Bela's case is due like any other.
  ASSERT_TRUE(Hold("h1", cases[1].name(), kOtherPerson, true).ok());
  batch = Purge("case", now + absl::Hours(1), now);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(batch.held, 1);
  EXPECT_EQ(GetCase(cases[1].name(), &c).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Batches: at most `limit` per run, `more` while some remain.
  ASSERT_TRUE(Hold("h2", kCem, kCem, true).ok());
  v1::Case extra, closed;
  access_.AddPerson("persons/p-emil");
  ASSERT_TRUE(Open("kim-koeln", "persons/p-emil", &extra).ok());
  ASSERT_TRUE(Close(extra.name(), &closed).ok());
  batch = Purge("case", now + absl::Hours(1), now + absl::Seconds(1), 1);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_TRUE(batch.more);
  batch = Purge("case", now + absl::Hours(1), now + absl::Seconds(1), 1);
  EXPECT_EQ(batch.purged, 1);
  batch = Purge("case", now + absl::Hours(1), now + absl::Seconds(1), 1);
  EXPECT_EQ(batch.purged, 0);
  EXPECT_FALSE(batch.more);
  EXPECT_TRUE(GetCase(open.name(), &c).ok());
}

TEST_P(LifecycleServiceTest, PurgeOfNotesKeepsTheirCase) {
  const v1::Case mine = CaseWithSteps(kPerson);
  const v1::Case held = CaseWithSteps(kOtherPerson);
  v1::Case closed;
  ASSERT_TRUE(Close(mine.name(), &closed).ok());
  ASSERT_TRUE(Close(held.name(), &closed).ok());
  ASSERT_TRUE(Hold("h1", kOtherPerson, kOtherPerson, false).ok());
  const absl::Time now = absl::Now();
  lifecycle::PurgeBatch batch = Purge("note", now + absl::Hours(1), now);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(batch.held, 1);
  EXPECT_EQ(CountOf("notes", absl::StrCat("case_id = '", CaseId(mine), "'")),
            0);
  EXPECT_EQ(CountOf("notes", absl::StrCat("case_id = '", CaseId(held), "'")),
            1);
  v1::Case c;
  EXPECT_TRUE(GetCase(mine.name(), &c).ok());
}

TEST_P(LifecycleServiceTest, CasesARuleKeepsStayAndAreReportedAsKept) {
  absl::StatusOr<lifecycle::RetentionRules> rules =
      lifecycle::RetentionRules::Parse(
          "retain case category=CASE_STATUS keep=3y from=CLOSE erasure=keep "
          "basis=\"Aktenführung\"\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  retention_ = *std::move(rules);
  const v1::Case mine = CaseWithSteps(kPerson);
  v1::Case closed;
  ASSERT_TRUE(Close(mine.name(), &closed).ok());
  ASSERT_TRUE(Erase(kPerson).ok());
  v1::Case c;
  EXPECT_TRUE(GetCase(mine.name(), &c).ok());
  // The notes have no rule that keeps them.
  EXPECT_EQ(CountOf("notes", absl::StrCat("case_id = '", CaseId(mine), "'")),
            0);
  std::vector<identity::v1::ErasureReported> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state(),
            identity::v1::ServiceErasure::STATE_KEPT_BY_RULE);
  ASSERT_EQ(reports[0].kept_size(), 1);
  EXPECT_EQ(reports[0].kept(0).resource_kind(), "case");
  EXPECT_EQ(reports[0].kept(0).record_count(), 1);
  EXPECT_EQ(reports[0].kept(0).legal_reference(), "Aktenführung");
  // Due three years after the close.
  EXPECT_GT(reports[0].kept(0).keep_until().seconds(),
            closed.close_time().seconds() + 3 * 365 * 86400 - 86400);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(LifecycleServiceTest);

}  // namespace
}  // namespace lotse::cases
