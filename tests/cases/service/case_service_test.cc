// Cases, plans and notes through a real in-process server over mutual TLS,
// as the dev PKI's agencies, on SQLite and PostgreSQL.
#include <string>

#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "tests/cases/service/cases_server_fixture.h"

namespace lotse::cases {
namespace {

class CaseServiceTest : public CasesServerTest {
 protected:
  // Rows of a table, to prove "nothing stored".
  int64_t Count(const std::string& table) {
    int64_t n = -1;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](storage::Transaction& tx) -> absl::Status {
                      auto rows = tx.Query(
                          absl::StrCat("SELECT COUNT(*) FROM ", table));
                      if (!rows.ok()) return rows.status();
                      n = *rows->front().GetInt(0);
                      return absl::OkStatus();
                    },
                    storage::TxMode::kReadOnly)
                    .ok());
    return n;
  }
};

TEST_P(CaseServiceTest, OpenGetAndListCase) {
  v1::Case opened;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &opened).ok());
  EXPECT_EQ(opened.person(), kPerson);
  EXPECT_EQ(opened.owner_agency(), kKim);
  EXPECT_EQ(opened.state(), v1::CASE_STATE_INTAKE);
  EXPECT_EQ(opened.municipality_code(), "05315000");
  EXPECT_EQ(opened.plan_version(), 1);
  EXPECT_FALSE(opened.etag().empty());
  ASSERT_EQ(opened.participating_agencies_size(), 1);

  grpc::ClientContext context;
  Prepare(&context);
  v1::GetCaseRequest get;
  get.set_name(opened.name());
  v1::Case got;
  ASSERT_TRUE(As("kim-koeln")->GetCase(&context, get, &got).ok());
  EXPECT_EQ(got.SerializeAsString(), opened.SerializeAsString());

  v1::Case second;
  ASSERT_TRUE(Open("kim-koeln", kOtherPerson, &second).ok());
  grpc::ClientContext lc;
  Prepare(&lc);
  v1::ListCasesRequest list;
  list.set_page_size(1);
  v1::ListCasesResponse page1;
  ASSERT_TRUE(As("kim-koeln")->ListCases(&lc, list, &page1).ok());
  ASSERT_EQ(page1.cases_size(), 1);
  EXPECT_EQ(page1.cases(0).name(), second.name());  // newest first
  ASSERT_FALSE(page1.next_page_token().empty());
  grpc::ClientContext lc2;
  Prepare(&lc2);
  list.set_page_token(page1.next_page_token());
  v1::ListCasesResponse page2;
  ASSERT_TRUE(As("kim-koeln")->ListCases(&lc2, list, &page2).ok());
  ASSERT_EQ(page2.cases_size(), 1);
  EXPECT_EQ(page2.cases(0).name(), opened.name());
  EXPECT_TRUE(page2.next_page_token().empty());

  // A filtered list does not accept the unfiltered token.
  grpc::ClientContext lc3;
  Prepare(&lc3);
  list.set_person(kPerson);
  v1::ListCasesResponse bad;
  EXPECT_EQ(As("kim-koeln")->ListCases(&lc3, list, &bad).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // Another agency sees nothing and may not read.
  grpc::ClientContext oc;
  Prepare(&oc);
  v1::Case other;
  grpc::Status denied = As("jobcenter-koeln")->GetCase(&oc, get, &other);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "NO_RELATION");
}

TEST_P(CaseServiceTest, OpenCaseIsIdempotentAndOneOpenPerOwner) {
  v1::Case first, again, dup;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &first, "req-1").ok());
  ASSERT_TRUE(Open("kim-koeln", kPerson, &again, "req-1").ok());
  EXPECT_EQ(first.name(), again.name());
  grpc::Status reused = Open("kim-koeln", kOtherPerson, &dup, "req-1");
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(reused), "REQUEST_ID_REUSED");
  grpc::Status exists = Open("kim-koeln", kPerson, &dup, "req-2");
  EXPECT_EQ(exists.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(exists), "OPEN_CASE_EXISTS");
  EXPECT_EQ(Count("cases"), 1);
}

TEST_P(CaseServiceTest, OpenCaseRefusals) {
  v1::Case out;
  // Unknown person (identity says NOT_FOUND): refused like a person the
  // caller has no relation to, nothing stored.
  grpc::Status unknown = Open("kim-koeln", "persons/p-nobody", &out);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown), "NO_RELATION");
  // Not a KOMMUNE agency.
  grpc::Status domain = Open("jobcenter-koeln", kPerson, &out);
  EXPECT_EQ(domain.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(domain), "WRONG_LEGAL_DOMAIN");
  // Unregistered agency (its certificate is valid).
  grpc::Status unregistered = Open("abh-koeln", kPerson, &out);
  EXPECT_EQ(unregistered.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unregistered), "UNKNOWN_AGENCY");
  // Bad fields, all reported.
  grpc::ClientContext context;
  Prepare(&context);
  v1::OpenCaseRequest req;
  req.set_request_id("bad id!");
  req.mutable_case_record()->set_person("people/x");
  grpc::Status bad = As("kim-koeln")->OpenCase(&context, req, &out);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(bad),
            (std::set<std::string>{"request_id", "case_record.person",
                                   "case_record.responsible_actor"}));
  // Identity down: fail closed.
  access_.set_unavailable(true);
  EXPECT_EQ(Open("kim-koeln", kPerson, &out).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  access_.set_unavailable(false);
  EXPECT_EQ(Count("cases"), 0);
  // Every refusal is on the audit trail.
  std::vector<audit::AuditRecord> denied = AuditOf("cases");
  EXPECT_GE(denied.size(), 5u);
  for (const auto& r : denied) EXPECT_NE(r.outcome, audit::Outcome::kAllowed);
}

// A case makes its owner CASE_OWNER of the person: only for a person
// already in the agency's remit, and only in the agency's own
// municipality; the person's case moves between towns by transfer.
TEST_P(CaseServiceTest, OpenCaseNeedsStandingAndTheOwnMunicipality) {
  v1::Case out;
  grpc::Status stranger = Open("kim-bonn", kPerson, &out);
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(stranger), "NO_RELATION");
  grpc::Status nobody = Open("kim-bonn", "persons/p-nobody", &out);
  EXPECT_EQ(nobody.error_code(), stranger.error_code());
  EXPECT_EQ(nobody.error_message(), stranger.error_message());

  access_.Grant(kKimBonn, type::v1::DATA_CATEGORY_CORE_IDENTITY);
  v1::Case koeln;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &koeln).ok());
  grpc::Status elsewhere = Open("kim-bonn", kPerson, &out);
  EXPECT_EQ(elsewhere.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(elsewhere), "CASE_OPEN_ELSEWHERE");
  EXPECT_EQ(MetadataOf(FromGrpcStatus(elsewhere), "municipality_code"),
            "05315000");
  EXPECT_NE(elsewhere.error_message().find("TransferCase"), std::string::npos);
  // Another person of Bonn's is no business of Köln's case.
  ASSERT_TRUE(Open("kim-bonn", kOtherPerson, &out).ok());
  EXPECT_EQ(Count("cases"), 2);

  // Handed over to Bonn, the case is Bonn's; Köln may not open another.
  grpc::ClientContext context;
  Prepare(&context);
  v1::TransferCaseRequest transfer;
  transfer.set_name(koeln.name());
  transfer.set_etag(koeln.etag());
  transfer.set_new_owner_agency(kKimBonn);
  transfer.set_reason("moved to Bonn");
  v1::Case moved;
  grpc::Status handed =
      As("kim-koeln")->TransferCase(&context, transfer, &moved);
  ASSERT_TRUE(handed.ok()) << handed.error_message();
  grpc::Status back = Open("kim-koeln", kPerson, &out);
  EXPECT_EQ(Reason(back), "CASE_OPEN_ELSEWHERE");
  EXPECT_EQ(MetadataOf(FromGrpcStatus(back), "municipality_code"), "05314000");
  EXPECT_EQ(Count("cases"), 2);
}

// The caller's agency record is cached between calls: the suspension still
// refuses the very next call.
TEST_P(CaseServiceTest, AnAgencySuspendedBetweenTwoCallsIsRefusedOnTheSecond) {
  v1::Case out;
  grpc::Status first = Open("kim-koeln", kPerson, &out);
  ASSERT_TRUE(first.ok()) << first.error_message();
  ASSERT_TRUE(
      service_
          ->ApplyEvent(AgencyEvent("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE,
                                   "05315000", true, "susp-2"))
          .ok());
  v1::Case again;
  grpc::Status s = Open("kim-koeln", kPerson, &again);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "AGENCY_SUSPENDED");
}

TEST_P(CaseServiceTest, SuspendedAgencyIsRefused) {
  v1::Case out;
  ASSERT_TRUE(
      service_
          ->ApplyEvent(AgencyEvent("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE,
                                   "05315000", true, "susp-1"))
          .ok());
  grpc::Status s = Open("kim-koeln", kPerson, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "AGENCY_SUSPENDED");
}

TEST_P(CaseServiceTest, StateChangesEtagsAndClose) {
  v1::Case c;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &c).ok());
  auto change = [&](const v1::Case& from, v1::CaseState to, v1::Case* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ChangeCaseStateRequest req;
    req.set_name(from.name());
    req.set_etag(from.etag());
    req.set_state(to);
    return As("kim-koeln")->ChangeCaseState(&context, req, out);
  };
  v1::Case assessed, active, out;
  grpc::Status skip = change(c, v1::CASE_STATE_ACTIVE, &out);
  EXPECT_EQ(skip.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(skip), "TRANSITION_NOT_ALLOWED");
  ASSERT_TRUE(change(c, v1::CASE_STATE_ASSESSMENT, &assessed).ok());
  grpc::Status stale = change(c, v1::CASE_STATE_ACTIVE, &out);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Reason(stale), "ETAG_MISMATCH");
  ASSERT_TRUE(change(assessed, v1::CASE_STATE_ACTIVE, &active).ok());
  EXPECT_EQ(active.state(), v1::CASE_STATE_ACTIVE);
  EXPECT_EQ(change(active, v1::CASE_STATE_CLOSED, &out).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A step open: closing is refused unless open steps are cancelled.
  v1::Step step;
  ASSERT_TRUE(
      Refer("kim-koeln", c.name(), v1::STEP_KIND_COUNSELLING, kCaritas, &step)
          .ok());
  grpc::ClientContext gc;
  Prepare(&gc);
  v1::GetCaseRequest get;
  get.set_name(c.name());
  ASSERT_TRUE(As("kim-koeln")->GetCase(&gc, get, &active).ok());
  auto close = [&](bool cancel, const std::string& comment, v1::Case* o) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CloseCaseRequest req;
    req.set_name(active.name());
    req.set_etag(active.etag());
    req.set_closing_reason(v1::CASE_CLOSING_REASON_OTHER);
    req.set_closing_comment(comment);
    req.set_cancel_open_steps(cancel);
    return As("kim-koeln")->CloseCase(&context, req, o);
  };
  EXPECT_EQ(ViolatedFields(close(true, "", &out)),
            std::set<std::string>{"closing_comment"});
  grpc::Status open_steps = close(false, "umgezogen", &out);
  EXPECT_EQ(Reason(open_steps), "OPEN_STEPS");
  v1::Case closed;
  ASSERT_TRUE(close(true, "umgezogen", &closed).ok());
  EXPECT_EQ(closed.state(), v1::CASE_STATE_CLOSED);
  EXPECT_TRUE(closed.has_close_time());
  v1::Step cancelled;
  ASSERT_TRUE(GetStep("kim-koeln", step.name(), &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::STEP_STATE_CANCELLED);
  EXPECT_EQ(cancelled.cancel_reason(), v1::STEP_CANCEL_REASON_CASE_CLOSED);
  // Closed: no more steps; a new case may be opened.
  EXPECT_EQ(Reason(Refer("kim-koeln", c.name(), v1::STEP_KIND_COUNSELLING,
                         kCaritas, &step)),
            "CASE_CLOSED");
  v1::Case fresh;
  EXPECT_TRUE(Open("kim-koeln", kPerson, &fresh).ok());
}

TEST_P(CaseServiceTest, UpdateAndTransferCase) {
  v1::Case c, updated, out;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &c).ok());
  grpc::ClientContext uc;
  Prepare(&uc);
  v1::UpdateCaseRequest up;
  *up.mutable_case_record() = c;
  up.mutable_case_record()->set_responsible_actor("cm-7");
  up.mutable_update_mask()->add_paths("responsible_actor");
  ASSERT_TRUE(As("kim-koeln")->UpdateCase(&uc, up, &updated).ok());
  EXPECT_EQ(updated.responsible_actor(), "cm-7");
  EXPECT_NE(updated.etag(), c.etag());

  auto transfer = [&](const std::string& to, v1::Case* o) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::TransferCaseRequest req;
    req.set_name(updated.name());
    req.set_etag(updated.etag());
    req.set_new_owner_agency(to);
    req.set_reason("moved to Bonn");
    return As("kim-koeln")->TransferCase(&context, req, o);
  };
  EXPECT_EQ(Reason(transfer(kJobcenter, &out)), "WRONG_LEGAL_DOMAIN");
  EXPECT_EQ(transfer("agencies/nowhere", &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::Case moved;
  ASSERT_TRUE(transfer(kKimBonn, &moved).ok());
  EXPECT_EQ(moved.owner_agency(), kKimBonn);
  EXPECT_EQ(moved.municipality_code(), "05314000");
  ASSERT_EQ(moved.transfers_size(), 1);
  EXPECT_EQ(moved.transfers(0).from_agency(), kKim);
  // The previous owner no longer participates.
  grpc::ClientContext gc;
  Prepare(&gc);
  v1::GetCaseRequest get;
  get.set_name(c.name());
  EXPECT_EQ(Reason(As("kim-koeln")->GetCase(&gc, get, &out)), "NO_RELATION");
}

TEST_P(CaseServiceTest, PlanVersionsKeepEarlierOnes) {
  v1::Case c;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &c).ok());
  grpc::ClientContext gc;
  Prepare(&gc);
  v1::GetIntegrationPlanRequest get;
  get.set_name(c.name() + "/plan");
  v1::IntegrationPlan v1plan;
  ASSERT_TRUE(As("kim-koeln")->GetIntegrationPlan(&gc, get, &v1plan).ok());
  EXPECT_EQ(v1plan.version(), 1);

  auto update = [&](const v1::IntegrationPlan& base, v1::IntegrationPlan plan,
                    v1::IntegrationPlan* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::UpdateIntegrationPlanRequest req;
    plan.set_name(base.name());
    plan.set_etag(base.etag());
    *req.mutable_plan() = plan;
    req.mutable_update_mask()->add_paths("goals");
    req.mutable_update_mask()->add_paths("summary");
    return As("kim-koeln")->UpdateIntegrationPlan(&context, req, out);
  };
  v1::IntegrationPlan next;
  v1::Goal* g = next.add_goals();
  g->set_life_area(v1::LIFE_AREA_LANGUAGE);
  g->set_description("B1 bis Sommer");
  g->set_status(v1::GOAL_STATUS_OPEN);
  g->mutable_target_date()->set_year(2000);  // before the case: refused
  g->mutable_target_date()->set_month(1);
  g->mutable_target_date()->set_day(1);
  next.set_summary("Sprache zuerst");
  v1::IntegrationPlan v2;
  grpc::Status early = update(v1plan, next, &v2);
  EXPECT_EQ(ViolatedFields(early),
            std::set<std::string>{"plan.goals[0].target_date"});
  g->mutable_target_date()->set_year(2099);
  ASSERT_TRUE(update(v1plan, next, &v2).ok());
  EXPECT_EQ(v2.version(), 2);
  ASSERT_EQ(v2.goals_size(), 1);
  EXPECT_FALSE(v2.goals(0).goal_id().empty());
  // Stale etag (version 1's) is ABORTED.
  EXPECT_EQ(update(v1plan, next, &v2).error_code(), grpc::StatusCode::ABORTED);

  // A step serving the goal keeps it from being removed.
  grpc::ClientContext sc;
  Prepare(&sc);
  v1::CreateStepRequest cs;
  cs.set_parent(c.name());
  cs.set_request_id("s-goal");
  cs.mutable_step()->set_kind(v1::STEP_KIND_INTEGRATION_COURSE);
  cs.mutable_step()->set_receiving_agency(kVhs);
  cs.mutable_step()->set_goal_id(v2.goals(0).goal_id());
  v1::Step step;
  ASSERT_TRUE(As("kim-koeln")->CreateStep(&sc, cs, &step).ok());
  v1::IntegrationPlan empty, v3;
  EXPECT_EQ(Reason(update(v2, empty, &v3)), "GOAL_IN_USE");

  grpc::ClientContext lc;
  Prepare(&lc);
  v1::ListIntegrationPlanVersionsRequest list;
  list.set_name(c.name() + "/plan");
  v1::ListIntegrationPlanVersionsResponse versions;
  ASSERT_TRUE(
      As("kim-koeln")->ListIntegrationPlanVersions(&lc, list, &versions).ok());
  ASSERT_EQ(versions.plans_size(), 2);
  EXPECT_EQ(versions.plans(0).version(), 2);
  EXPECT_EQ(versions.plans(1).version(), 1);
  // The receiver (a participant now) may read the plan.
  grpc::ClientContext rc;
  Prepare(&rc);
  get.set_version(1);
  v1::IntegrationPlan old;
  ASSERT_TRUE(As("vhs-koeln")->GetIntegrationPlan(&rc, get, &old).ok());
  EXPECT_EQ(old.version(), 1);
}

TEST_P(CaseServiceTest, HealthGoalsAreDeniedDirectly) {
  v1::Case c;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &c).ok());
  grpc::ClientContext gc;
  Prepare(&gc);
  v1::GetIntegrationPlanRequest get;
  get.set_name(c.name() + "/plan");
  v1::IntegrationPlan base;
  ASSERT_TRUE(As("kim-koeln")->GetIntegrationPlan(&gc, get, &base).ok());
  grpc::ClientContext uc;
  Prepare(&uc);
  v1::UpdateIntegrationPlanRequest req;
  *req.mutable_plan() = base;
  v1::Goal* g = req.mutable_plan()->add_goals();
  g->set_life_area(v1::LIFE_AREA_HEALTH);
  g->set_description("Therapieplatz");
  g->set_status(v1::GOAL_STATUS_OPEN);
  req.mutable_update_mask()->add_paths("goals");
  v1::IntegrationPlan v2;
  ASSERT_TRUE(As("kim-koeln")->UpdateIntegrationPlan(&uc, req, &v2).ok());
  grpc::ClientContext gc2;
  Prepare(&gc2);
  v1::IntegrationPlan out;
  grpc::Status denied = As("kim-koeln")->GetIntegrationPlan(&gc2, get, &out);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "NO_LEGAL_BASIS");
  access_.Grant(kKim, type::v1::DATA_CATEGORY_HEALTH);
  grpc::ClientContext gc3;
  Prepare(&gc3);
  EXPECT_TRUE(As("kim-koeln")->GetIntegrationPlan(&gc3, get, &out).ok());
}

TEST_P(CaseServiceTest, NotesArePrivateToTheWriter) {
  v1::Case c;
  ASSERT_TRUE(Open("kim-koeln", kPerson, &c).ok());
  v1::Step step;
  ASSERT_TRUE(Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &step)
                  .ok());
  auto create = [&](const std::string& as, const std::string& parent,
                    const std::string& text, v1::Note* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::CreateNoteRequest req;
    req.set_parent(parent);
    req.set_request_id(absl::StrCat("note-", ++counter_));
    req.mutable_note()->set_text(text);
    return As(as)->CreateNote(&context, req, out);
  };
  v1::Note mine, theirs, out;
  ASSERT_TRUE(create("kim-koeln", c.name(), "Erstgespräch\nok", &mine).ok());
  ASSERT_TRUE(create("vhs-koeln", step.name(), "Einstufung A2", &theirs).ok());
  EXPECT_EQ(
      create("kim-koeln", c.name(), std::string(10001, 'x'), &out).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("jobcenter-koeln", c.name(), "x", &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  grpc::ClientContext gc;
  Prepare(&gc);
  v1::GetNoteRequest get;
  get.set_name(theirs.name());
  grpc::Status priv = As("kim-koeln")->GetNote(&gc, get, &out);
  EXPECT_EQ(priv.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(priv), "PRIVATE_TO_WRITER");

  grpc::ClientContext lc;
  Prepare(&lc);
  v1::ListNotesRequest list;
  list.set_parent(c.name());
  v1::ListNotesResponse notes;
  ASSERT_TRUE(As("kim-koeln")->ListNotes(&lc, list, &notes).ok());
  ASSERT_EQ(notes.notes_size(), 1);
  EXPECT_EQ(notes.notes(0).name(), mine.name());

  grpc::ClientContext uc;
  Prepare(&uc);
  v1::UpdateNoteRequest up;
  *up.mutable_note() = mine;
  up.mutable_note()->set_text("geändert");
  up.mutable_update_mask()->add_paths("text");
  v1::Note changed;
  ASSERT_TRUE(As("kim-koeln")->UpdateNote(&uc, up, &changed).ok());
  EXPECT_EQ(changed.text(), "geändert");
  grpc::ClientContext dc;
  Prepare(&dc);
  v1::DeleteNoteRequest del;
  del.set_name(mine.name());
  del.set_etag(mine.etag());  // stale
  google::protobuf::Empty empty;
  EXPECT_EQ(As("kim-koeln")->DeleteNote(&dc, del, &empty).error_code(),
            grpc::StatusCode::ABORTED);
  grpc::ClientContext dc2;
  Prepare(&dc2);
  del.set_etag(changed.etag());
  ASSERT_TRUE(As("kim-koeln")->DeleteNote(&dc2, del, &empty).ok());
  EXPECT_EQ(Count("notes"), 1);
  // The audit trail knows a note was written, not what.
  std::vector<audit::AuditRecord> trail = AuditOf(mine.name());
  ASSERT_FALSE(trail.empty());
  EXPECT_EQ(trail.front().data_categories,
            std::vector<std::string>{"PRIVATE_NOTES"});
}

TEST_P(CaseServiceTest, WaitingTimeStatistics) {
  for (const char* person : {kPerson, kOtherPerson}) {
    v1::Case c;
    ASSERT_TRUE(Open("kim-koeln", person, &c).ok());
    v1::Step s, accepted;
    ASSERT_TRUE(
        Refer("kim-koeln", c.name(), v1::STEP_KIND_INTEGRATION_COURSE, kVhs, &s)
            .ok());
    ASSERT_TRUE(Accept("vhs-koeln", s, &accepted).ok());
    ASSERT_TRUE(
        Refer("kim-koeln", c.name(), v1::STEP_KIND_COUNSELLING, kCaritas, &s)
            .ok());
  }
  v1::Case third;
  access_.AddPerson("persons/p-cem");
  ASSERT_TRUE(Open("kim-koeln", "persons/p-cem", &third).ok());
  v1::Step lone;
  ASSERT_TRUE(Refer("kim-koeln", third.name(), v1::STEP_KIND_JOB_PLACEMENT,
                    kJobcenter, &lone)
                  .ok());
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  auto ask = [&](const std::string& as, v1::WaitingTimeStatistics* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetWaitingTimeStatisticsRequest req;
    req.set_municipality_code("05315000");
    req.mutable_period_start()->set_year(today.year());
    req.mutable_period_start()->set_month(1);
    req.mutable_period_start()->set_day(1);
    req.mutable_period_end()->set_year(today.year());
    req.mutable_period_end()->set_month(12);
    req.mutable_period_end()->set_day(31);
    req.add_groupings(v1::WAITING_TIME_GROUPING_STEP_KIND_AND_AGENCY);
    return As(as)->GetWaitingTimeStatistics(&context, req, out);
  };
  v1::WaitingTimeStatistics stats;
  ASSERT_TRUE(ask("kim-koeln", &stats).ok());
  EXPECT_EQ(stats.suppression_threshold(), 2);
  ASSERT_EQ(stats.rows_size(), 3);
  // Ordered by kind: integration course (1), job placement (3),
  // counselling (6).
  EXPECT_EQ(stats.rows(0).step_kind(), v1::STEP_KIND_INTEGRATION_COURSE);
  EXPECT_EQ(stats.rows(0).referral_count(), 2);
  EXPECT_EQ(stats.rows(0).referral_to_acceptance().count(), 2);
  EXPECT_FALSE(stats.rows(0).suppressed());
  EXPECT_EQ(stats.rows(1).step_kind(), v1::STEP_KIND_JOB_PLACEMENT);
  EXPECT_TRUE(stats.rows(1).suppressed());  // one step only
  EXPECT_EQ(stats.rows(1).referral_count(), 0);
  // Another agency only sees rows about itself.
  v1::WaitingTimeStatistics own;
  ASSERT_TRUE(ask("vhs-koeln", &own).ok());
  ASSERT_EQ(own.rows_size(), 1);
  EXPECT_EQ(own.rows(0).receiving_agency(), kVhs);
  // Bad period.
  grpc::ClientContext context;
  Prepare(&context);
  v1::GetWaitingTimeStatisticsRequest bad;
  bad.set_municipality_code("0531");
  bad.mutable_period_start()->set_year(2026);
  bad.mutable_period_start()->set_month(5);
  bad.mutable_period_start()->set_day(1);
  bad.mutable_period_end()->set_year(2026);
  bad.mutable_period_end()->set_month(4);
  bad.mutable_period_end()->set_day(1);
  EXPECT_EQ(
      ViolatedFields(
          As("kim-koeln")->GetWaitingTimeStatistics(&context, bad, &stats)),
      (std::set<std::string>{"municipality_code", "period_end"}));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CaseServiceTest);

}  // namespace
}  // namespace lotse::cases
