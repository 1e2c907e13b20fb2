// The placement service through a real mTLS server, on SQLite and
// PostgreSQL: offers, profiles, matching, placements, notices, events.
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/placement/service/placement_server_fixture.h"

namespace lotse::placement {
namespace {

using ::grpc::StatusCode;

class PlacementServiceTest : public PlacementServerTest {};

// --- offers ---

TEST_P(PlacementServiceTest, CreateOfferIsIdempotentAndChecksDomain) {
  v1::Offer first, again;
  ASSERT_TRUE(CreateOffer("aa-koeln", ValidOffer(), &first, "req-1").ok());
  EXPECT_EQ(first.state(), v1::OFFER_STATE_OPEN);
  EXPECT_EQ(first.positions_open(), 2);
  EXPECT_EQ(first.publishing_agency(), "agencies/aa-koeln");
  ASSERT_TRUE(CreateOffer("aa-koeln", ValidOffer(), &again, "req-1").ok());
  EXPECT_EQ(again.name(), first.name());
  v1::Offer changed = ValidOffer();
  changed.set_title("Anders");
  grpc::Status reused = CreateOffer("aa-koeln", changed, &again, "req-1");
  EXPECT_EQ(reused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(reused), "REQUEST_ID_REUSED");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_offers"), 1);

  grpc::Status wrong = CreateOffer("vhs-koeln", ValidOffer(), &again);
  EXPECT_EQ(wrong.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(wrong), "WRONG_LEGAL_DOMAIN");
  grpc::Status chamber_job = CreateOffer("ihk-koeln", ValidOffer(), &again);
  EXPECT_EQ(Reason(chamber_job), "WRONG_LEGAL_DOMAIN");
  EXPECT_TRUE(CreateOffer("ihk-koeln",
                          ValidOffer(v1::OFFER_KIND_APPRENTICESHIP), &again)
                  .ok());
  grpc::Status unknown = CreateOffer("caritas-koeln", ValidOffer(), &again);
  EXPECT_EQ(unknown.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown), "UNKNOWN_AGENCY");
}

TEST_P(PlacementServiceTest, BadOfferReportsEveryFieldAndStoresNothing) {
  v1::Offer bad;
  bad.set_title("");
  bad.set_occupation_code("51301");  // five digits, but no KldB 2010 type
  bad.set_positions_total(0);
  *bad.mutable_start_date() = InDays(-1);
  bad.mutable_place()->set_postal_code("5066");
  v1::Offer out;
  grpc::Status s = CreateOffer("aa-koeln", bad, &out, "bad id!");
  ASSERT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  const std::set<std::string> fields = ViolatedFields(s);
  for (const char* f :
       {"request_id", "offer.kind", "offer.title", "offer.occupation_code",
        "offer.employer_name", "offer.place.postal_code",
        "offer.place.locality", "offer.place.municipality_code",
        "offer.start_date", "offer.positions_total"}) {
    EXPECT_TRUE(fields.count(f)) << f;
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_offers"), 0);
}

TEST_P(PlacementServiceTest, GetListUpdateWithdrawOffer) {
  v1::Offer a = MustCreateOffer(ValidOffer());
  clock_->Advance(absl::Seconds(1));
  v1::Offer b = MustCreateOffer(ValidOffer(v1::OFFER_KIND_APPRENTICESHIP),
                                "jobcenter-koeln");
  EXPECT_EQ(GetOffer(a.name()).title(), a.title());

  v1::ListOffersRequest list;
  list.set_page_size(1);
  v1::ListOffersResponse page;
  auto ctx = Ctx();
  ASSERT_TRUE(As("kim-koeln")->ListOffers(ctx.get(), list, &page).ok());
  ASSERT_EQ(page.offers_size(), 1);
  EXPECT_EQ(page.offers(0).name(), b.name());  // newest first
  list.set_page_token(page.next_page_token());
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->ListOffers(ctx2.get(), list, &page).ok());
  ASSERT_EQ(page.offers_size(), 1);
  EXPECT_EQ(page.offers(0).name(), a.name());
  EXPECT_TRUE(page.next_page_token().empty());
  list.Clear();
  list.set_kind(v1::OFFER_KIND_JOB);
  list.set_occupation_code_prefix("513");
  auto ctx3 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->ListOffers(ctx3.get(), list, &page).ok());
  EXPECT_EQ(page.offers_size(), 1);

  v1::UpdateOfferRequest update;
  *update.mutable_offer() = a;
  update.mutable_offer()->set_title("Neu");
  update.mutable_update_mask()->add_paths("title");
  v1::Offer updated;
  auto ctx4 = Ctx();
  grpc::Status not_publisher =
      As("jobcenter-koeln")->UpdateOffer(ctx4.get(), update, &updated);
  EXPECT_EQ(Reason(not_publisher), "NOT_OFFER_PUBLISHER");
  auto ctx5 = Ctx();
  ASSERT_TRUE(As("aa-koeln")->UpdateOffer(ctx5.get(), update, &updated).ok());
  EXPECT_EQ(updated.title(), "Neu");
  auto ctx6 = Ctx();
  grpc::Status stale =
      As("aa-koeln")->UpdateOffer(ctx6.get(), update, &updated);
  EXPECT_EQ(stale.error_code(), StatusCode::ABORTED);
  EXPECT_EQ(Reason(stale), "ETAG_MISMATCH");
  update.mutable_update_mask()->add_paths("kind");
  auto ctx7 = Ctx();
  grpc::Status kind = As("aa-koeln")->UpdateOffer(ctx7.get(), update, &updated);
  EXPECT_EQ(kind.error_code(), StatusCode::INVALID_ARGUMENT);

  v1::WithdrawOfferRequest withdraw;
  withdraw.set_name(a.name());
  withdraw.set_etag(updated.etag());
  withdraw.set_reason("besetzt");
  v1::Offer withdrawn;
  auto ctx8 = Ctx();
  ASSERT_TRUE(
      As("aa-koeln")->WithdrawOffer(ctx8.get(), withdraw, &withdrawn).ok());
  EXPECT_EQ(withdrawn.state(), v1::OFFER_STATE_WITHDRAWN);
  withdraw.set_etag(withdrawn.etag());
  auto ctx9 = Ctx();
  EXPECT_EQ(
      Reason(As("aa-koeln")->WithdrawOffer(ctx9.get(), withdraw, &withdrawn)),
      "OFFER_NOT_OPEN");
}

// --- profiles ---

TEST_P(PlacementServiceTest, ProfilesNeedEmploymentAndWithholdLanguage) {
  const std::string person = NewPerson();
  v1::CandidateProfile profile = MustCreateProfile(person);
  EXPECT_EQ(profile.state(), v1::CANDIDATE_STATE_ACTIVE);
  EXPECT_EQ(profile.creating_agency(), "agencies/jobcenter-koeln");
  v1::CandidateProfile twice;
  grpc::Status again = CreateProfile("aa-koeln", person, &twice);
  EXPECT_EQ(again.error_code(), StatusCode::ALREADY_EXISTS);
  // A person identity does not know reads like one the caller has no
  // relation to.
  grpc::Status unknown = CreateProfile(
      "jobcenter-koeln", "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa", &twice);
  EXPECT_EQ(unknown.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown), "NO_RELATION");
  EXPECT_EQ(Reason(CreateProfile("kim-koeln", NewPerson(), &twice)),
            "WRONG_LEGAL_DOMAIN");

  v1::GetCandidateProfileRequest get;
  get.set_name(profile.name());
  v1::GetCandidateProfileResponse got;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->GetCandidateProfile(ctx.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().stated_language_level(),
            type::v1::CEFR_LEVEL_B1);
  EXPECT_TRUE(got.withheld().empty());
  // The employment agency may read EMPLOYMENT but not LANGUAGE.
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("aa-koeln")->GetCandidateProfile(ctx2.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().stated_language_level(),
            type::v1::CEFR_LEVEL_UNSPECIFIED);
  ASSERT_FALSE(got.withheld().empty());
  EXPECT_EQ(got.withheld(0).field(), "candidate_profile.stated_language_level");
  EXPECT_EQ(got.withheld(0).category(), type::v1::DATA_CATEGORY_LANGUAGE);
  // KOMMUNE may not read EMPLOYMENT: refused and audited as denied.
  auto ctx3 = Ctx();
  grpc::Status denied =
      As("kim-koeln")->GetCandidateProfile(ctx3.get(), get, &got);
  EXPECT_EQ(denied.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "NO_LEGAL_BASIS");
  bool denied_audited = false, read_audited = false;
  for (const audit::AuditRecord& r : AuditOf(person)) {
    if (r.agency_id == "kim-koeln" && r.outcome == audit::Outcome::kDenied) {
      denied_audited = true;
    }
    if (r.agency_id == "aa-koeln" &&
        r.operation ==
            "lotse.placement.v1.PlacementService/GetCandidateProfile") {
      read_audited = true;
    }
  }
  EXPECT_TRUE(denied_audited);
  EXPECT_TRUE(read_audited);
  // Identity down: fail closed.
  identity_->set_unavailable(true);
  auto ctx4 = Ctx();
  grpc::Status down =
      As("jobcenter-koeln")->GetCandidateProfile(ctx4.get(), get, &got);
  EXPECT_EQ(down.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(down), "CHECK_UNAVAILABLE");
  identity_->set_unavailable(false);

  v1::ListCandidateProfilesRequest list;
  v1::ListCandidateProfilesResponse listed;
  auto ctx5 = Ctx();
  ASSERT_TRUE(
      As("aa-koeln")->ListCandidateProfiles(ctx5.get(), list, &listed).ok());
  EXPECT_EQ(listed.candidate_profiles_size(), 1);
  EXPECT_FALSE(listed.withheld().empty());
  auto ctx6 = Ctx();
  ASSERT_TRUE(
      As("kim-koeln")->ListCandidateProfiles(ctx6.get(), list, &listed).ok());
  EXPECT_EQ(listed.candidate_profiles_size(), 0);
}

TEST_P(PlacementServiceTest, UpdateProfileAndChamberRecognition) {
  const std::string person = NewPerson();
  v1::CreateCandidateProfileRequest create;
  create.set_request_id("cp-1");
  create.mutable_candidate_profile()->set_person(person);
  v1::Qualification* q =
      create.mutable_candidate_profile()->add_qualifications();
  q->set_title("Bachelor of Nursing");
  q->set_country_code("UA");
  v1::CandidateProfile profile;
  auto ctx = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->CreateCandidateProfile(ctx.get(), create, &profile)
                  .ok());
  ASSERT_EQ(profile.qualifications_size(), 1);
  const std::string qid = profile.qualifications(0).qualification_id();
  EXPECT_FALSE(qid.empty());

  v1::SetQualificationRecognitionRequest set;
  set.set_name(profile.name());
  set.set_qualification_id(qid);
  set.set_recognition_state(v1::RECOGNITION_STATE_FULL);
  set.set_occupation_code("81302");
  v1::Qualification recognised;
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("ihk-koeln")
                  ->SetQualificationRecognition(ctx2.get(), set, &recognised)
                  .ok());
  EXPECT_EQ(recognised.recognition_state(), v1::RECOGNITION_STATE_FULL);
  EXPECT_EQ(recognised.recognition_agency(), "agencies/ihk-koeln");
  set.set_qualification_id("nope");
  auto ctx3 = Ctx();
  EXPECT_EQ(As("ihk-koeln")
                ->SetQualificationRecognition(ctx3.get(), set, &recognised)
                .error_code(),
            StatusCode::NOT_FOUND);

  v1::UpdateCandidateProfileRequest update;
  *update.mutable_candidate_profile() = profile;  // old etag
  update.mutable_candidate_profile()->set_state(v1::CANDIDATE_STATE_INACTIVE);
  update.mutable_update_mask()->add_paths("state");
  v1::CandidateProfile updated;
  auto ctx4 = Ctx();
  grpc::Status stale =
      As("jobcenter-koeln")
          ->UpdateCandidateProfile(ctx4.get(), update, &updated);
  EXPECT_EQ(stale.error_code(), StatusCode::ABORTED);
  v1::GetCandidateProfileRequest get;
  get.set_name(profile.name());
  v1::GetCandidateProfileResponse got;
  auto ctx5 = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->GetCandidateProfile(ctx5.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().qualifications(0).recognition_state(),
            v1::RECOGNITION_STATE_FULL);
  update.mutable_candidate_profile()->set_etag(got.candidate_profile().etag());
  auto ctx6 = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->UpdateCandidateProfile(ctx6.get(), update, &updated)
                  .ok());
  EXPECT_EQ(updated.state(), v1::CANDIDATE_STATE_INACTIVE);
  // Kept qualification ids keep their recognition.
  EXPECT_EQ(updated.qualifications(0).recognition_state(),
            v1::RECOGNITION_STATE_FULL);
  update.mutable_update_mask()->add_paths("creating_agency");
  auto ctx7 = Ctx();
  EXPECT_EQ(As("jobcenter-koeln")
                ->UpdateCandidateProfile(ctx7.get(), update, &updated)
                .error_code(),
            StatusCode::INVALID_ARGUMENT);
}

// --- placements ---

// A proposal names its case step exactly as the cases service issued it:
// today's lower-case ids and the mixed-case base64url ids of older cases.
TEST_P(PlacementServiceTest, ProposalTakesCaseStepNamesCasesIssued) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  int n = 0;
  auto propose = [&](const std::string& step, v1::Placement* out) {
    const std::string person = NewPerson();
    MustCreateProfile(person);
    v1::ProposePlacementRequest r;
    r.set_request_id(absl::StrCat("step-form-", ++n));
    r.mutable_placement()->set_offer(offer.name());
    r.mutable_placement()->set_candidate(
        absl::StrCat("candidates/", person.substr(8)));
    r.mutable_placement()->set_case_step(step);
    auto ctx = Ctx();
    return As("jobcenter-koeln")->ProposePlacement(ctx.get(), r, out);
  };
  for (const std::string step :
       {"cases/Xk3_9-AbQzR0w7UvT2sYnA/steps/q-RS_t0uVw1XyZ2a3B4c5D",
        "cases/abcdefghijklmnopqrstuvwxyz/steps/234567abcdefghijklmnopqrst"}) {
    v1::Placement out;
    grpc::Status s = propose(step, &out);
    ASSERT_TRUE(s.ok()) << step << ": " << s.error_message();
    EXPECT_EQ(out.case_step(), step);
  }
  for (const std::string step :
       {"cases/c1", "cases/c1/steps/", "cases/c 1/steps/s1",
        "cases/c1/steps/s1/notes/n1", "steps/s1"}) {
    v1::Placement out;
    grpc::Status s = propose(step, &out);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << step;
    EXPECT_EQ(ViolatedFields(s), std::set<std::string>{"placement.case_step"})
        << step;
  }
}

TEST_P(PlacementServiceTest, WorkPermissionOutcomesAtProposal) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string refused =
      NewPerson(type::v1::WORK_PERMISSION_NOT_PERMITTED);
  const std::string unknown = NewPerson(type::v1::WORK_PERMISSION_UNSPECIFIED);
  const std::string approval =
      NewPerson(type::v1::WORK_PERMISSION_NEEDS_APPROVAL);
  for (const std::string& p : {refused, unknown, approval}) {
    MustCreateProfile(p);
  }
  v1::Placement out;
  EXPECT_EQ(Reason(Propose("jobcenter-koeln", offer, refused, &out)),
            "WORK_PERMISSION_NOT_PERMITTED");
  EXPECT_EQ(Reason(Propose("jobcenter-koeln", offer, unknown, &out)),
            "WORK_PERMISSION_UNKNOWN");
  identity_->set_unavailable(true);
  grpc::Status down = Propose("jobcenter-koeln", offer, approval, &out);
  EXPECT_EQ(down.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(down), "CHECK_UNAVAILABLE");
  identity_->set_unavailable(false);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_placements"), 0);

  v1::Placement p = MustPropose(offer, approval);
  EXPECT_EQ(p.state(), v1::PLACEMENT_STATE_PROPOSED);
  EXPECT_EQ(p.work_permission(), type::v1::WORK_PERMISSION_NEEDS_APPROVAL);
  EXPECT_EQ(Propose("jobcenter-koeln", offer, approval, &out).error_code(),
            StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
  v1::Placement copy = p;
  EXPECT_EQ(Reason(Hire("jobcenter-koeln", &copy)), "WORK_APPROVAL_MISSING");
  ASSERT_TRUE(Hire("aa-koeln", &p, "ABH-2026-17").ok());  // the publisher
  EXPECT_EQ(p.state(), v1::PLACEMENT_STATE_HIRED);
  EXPECT_EQ(p.work_approval_reference(), "ABH-2026-17");
  EXPECT_EQ(GetOffer(offer.name()).positions_open(), 1);

  EXPECT_EQ(Propose("jobcenter-koeln", offer,
                    "persons/aaaaaaaaaaaaaaaaaaaaaaaaab", &out)
                .error_code(),
            StatusCode::NOT_FOUND);  // no candidate profile
  v1::Offer missing;
  missing.set_name("offers/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(Reason(Propose("jobcenter-koeln", missing, approval, &out)),
            "OFFER_NOT_FOUND");
  EXPECT_EQ(Reason(Propose("kim-koeln", offer, approval, &out)),
            "WRONG_LEGAL_DOMAIN");
}

// A proposal and a profile make the caller serve the person (identity then
// shows it their data): an agency without a relation to the person gets
// neither, whatever matching showed it, and nothing is stored.
TEST_P(PlacementServiceTest, AStrangerCannotProposeOrProfile) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string person = NewPerson(type::v1::WORK_PERMISSION_PERMITTED);
  MustCreateProfile(person);
  identity_->MakeStranger("agencies/aa-koeln");
  v1::Placement out;
  grpc::Status proposed = Propose("aa-koeln", offer, person, &out);
  EXPECT_EQ(proposed.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(proposed), "NO_RELATION");
  v1::CandidateProfile profile;
  grpc::Status profiled = CreateProfile("aa-koeln", NewPerson(), &profile);
  EXPECT_EQ(profiled.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(profiled), "NO_RELATION");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_placements"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_candidates"), 1);
  // The Jobcenter, whose customer the person is, proposes.
  EXPECT_TRUE(Propose("jobcenter-koeln", offer, person, &out).ok());
}

TEST_P(PlacementServiceTest, StateMachineRefusesIllegalTransitions) {
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_JOB, 100));
  auto transition = [&](const std::string& rpc, v1::Placement* p,
                        const std::string& as = "jobcenter-koeln") {
    auto ctx = Ctx();
    auto stub = As(as);
    if (rpc == "applied") {
      v1::MarkPlacementAppliedRequest r;
      r.set_name(p->name());
      r.set_etag(p->etag());
      return stub->MarkPlacementApplied(ctx.get(), r, p);
    }
    if (rpc == "interview") {
      v1::MarkPlacementInterviewRequest r;
      r.set_name(p->name());
      r.set_etag(p->etag());
      return stub->MarkPlacementInterview(ctx.get(), r, p);
    }
    if (rpc == "hired") return Hire(as, p);
    if (rpc == "rejected") {
      v1::RejectPlacementRequest r;
      r.set_name(p->name());
      r.set_etag(p->etag());
      r.set_reason(v1::PLACEMENT_END_REASON_EMPLOYER_DECLINED);
      return stub->RejectPlacement(ctx.get(), r, p);
    }
    v1::WithdrawPlacementRequest r;
    r.set_name(p->name());
    r.set_etag(p->etag());
    r.set_reason(v1::PLACEMENT_END_REASON_CANDIDATE_DECLINED);
    return stub->WithdrawPlacement(ctx.get(), r, p);
  };
  // One placement per starting state; every move not in the contract's
  // table is TRANSITION_NOT_ALLOWED.
  const std::map<std::string, std::set<std::string>> allowed = {
      {"proposed", {"applied", "rejected", "withdrawn"}},
      {"applied", {"interview", "hired", "rejected", "withdrawn"}},
      {"interview", {"hired", "rejected", "withdrawn"}},
      {"hired", {}},
      {"rejected", {}},
      {"withdrawn", {}}};
  const std::vector<std::string> moves = {"applied", "interview", "hired",
                                          "rejected", "withdrawn"};
  auto reach = [&](const std::string& state) {
    const std::string person = NewPerson();
    MustCreateProfile(person);
    v1::Placement p = MustPropose(offer, person);
    if (state == "proposed") return p;
    if (state == "rejected" || state == "withdrawn") {
      EXPECT_TRUE(transition(state, &p).ok());
      return p;
    }
    EXPECT_TRUE(transition("applied", &p).ok());
    if (state == "interview") {
      EXPECT_TRUE(transition("interview", &p).ok());
    }
    if (state == "hired") {
      EXPECT_TRUE(transition("hired", &p).ok());
    }
    return p;
  };
  for (const auto& [state, ok] : allowed) {
    for (const std::string& move : moves) {
      if (ok.count(move)) continue;
      v1::Placement p = reach(state);
      grpc::Status s = transition(move, &p);
      EXPECT_EQ(Reason(s), "TRANSITION_NOT_ALLOWED") << state << "->" << move;
    }
  }
  // Others may not move it; a stale etag is ABORTED.
  v1::Placement p = reach("proposed");
  v1::Placement stale = p;
  EXPECT_EQ(Reason(transition("applied", &p, "ihk-koeln")),
            "NOT_PLACEMENT_PARTY");
  ASSERT_TRUE(transition("applied", &p).ok());
  EXPECT_EQ(transition("rejected", &stale).error_code(), StatusCode::ABORTED);
  // The publisher may reject but not withdraw.
  EXPECT_EQ(Reason(transition("withdrawn", &p, "aa-koeln")),
            "NOT_PLACEMENT_PARTY");
  ASSERT_TRUE(transition("rejected", &p, "aa-koeln").ok());
  EXPECT_EQ(p.transitions_size(), 3);
  EXPECT_EQ(p.end_reason(), v1::PLACEMENT_END_REASON_EMPLOYER_DECLINED);

  auto changed = Emitted<v1::PlacementStateChanged>();
  ASSERT_FALSE(changed.empty());
  EXPECT_EQ(changed.back().to_state(), v1::PLACEMENT_STATE_REJECTED);
  EXPECT_EQ(changed.back().context().case_step(), "cases/c1/steps/s1");
  // The event names the publisher that rejected, next to the proposer.
  EXPECT_EQ(changed.back().context().acting_agency(), "agencies/aa-koeln");
  EXPECT_NE(changed.back().context().proposing_agency(), "agencies/aa-koeln");
  EXPECT_FALSE(Emitted<v1::PlacementProposed>().empty());
}

TEST_P(PlacementServiceTest, ConcurrentHiresNeverExceedPositions) {
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_JOB, 3));
  std::vector<v1::Placement> placements;
  for (int i = 0; i < 8; ++i) {
    const std::string person = NewPerson();
    MustCreateProfile(person);
    v1::Placement p = MustPropose(offer, person);
    ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
    placements.push_back(p);
  }
  std::vector<grpc::Status> results(placements.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < placements.size(); ++i) {
    threads.emplace_back(
        [&, i] { results[i] = Hire("jobcenter-koeln", &placements[i]); });
  }
  for (auto& t : threads) t.join();
  int hired = 0, full = 0;
  for (const grpc::Status& s : results) {
    if (s.ok()) ++hired;
    if (Reason(s) == "NO_OPEN_POSITIONS") ++full;
  }
  EXPECT_EQ(hired, 3);
  EXPECT_EQ(full, 5);
  v1::Offer after = GetOffer(offer.name());
  EXPECT_EQ(after.positions_open(), 0);
  EXPECT_EQ(after.state(), v1::OFFER_STATE_FILLED);
  EXPECT_EQ(Emitted<v1::PlacementHired>().size(), 3u);

  // Below the hires is refused; raising reopens.
  v1::UpdateOfferRequest update;
  *update.mutable_offer() = after;
  update.mutable_offer()->set_positions_total(2);
  update.mutable_update_mask()->add_paths("positions_total");
  v1::Offer updated;
  auto ctx = Ctx();
  EXPECT_EQ(Reason(As("aa-koeln")->UpdateOffer(ctx.get(), update, &updated)),
            "POSITIONS_BELOW_HIRES");
  update.mutable_offer()->set_positions_total(4);
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("aa-koeln")->UpdateOffer(ctx2.get(), update, &updated).ok());
  EXPECT_EQ(updated.state(), v1::OFFER_STATE_OPEN);
  EXPECT_EQ(updated.positions_open(), 1);

  // Withdrawing ends the open placements (OFFER_CLOSED).
  v1::WithdrawOfferRequest withdraw;
  withdraw.set_name(offer.name());
  withdraw.set_etag(updated.etag());
  withdraw.set_reason("Stelle entfallen");
  auto ctx3 = Ctx();
  ASSERT_TRUE(
      As("aa-koeln")->WithdrawOffer(ctx3.get(), withdraw, &updated).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_placements WHERE state = 6"),
            5);
  int closed = 0;
  for (const auto& e : Emitted<v1::PlacementStateChanged>()) {
    if (e.end_reason() == v1::PLACEMENT_END_REASON_OFFER_CLOSED) ++closed;
  }
  EXPECT_EQ(closed, 5);
}

TEST_P(PlacementServiceTest, ApprenticeshipHireNotifiesImmigrationOffice) {
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_APPRENTICESHIP),
                                    "jobcenter-koeln");
  const std::string person = NewPerson();
  MustCreateProfile(person);
  v1::Placement p = MustPropose(offer, person);
  ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
  ASSERT_TRUE(Hire("jobcenter-koeln", &p).ok());
  EXPECT_TRUE(p.training_toleration_relevant());
  auto hired = Emitted<v1::PlacementHired>();
  ASSERT_EQ(hired.size(), 1u);
  EXPECT_TRUE(hired[0].training_toleration_relevant());
  EXPECT_EQ(hired[0].immigration_office(), "agencies/abh-koeln");
  EXPECT_EQ(hired[0].context().person(), person);

  v1::ListTrainingTolerationNoticesRequest list;
  list.set_unacknowledged_only(true);
  v1::ListTrainingTolerationNoticesResponse notices;
  auto ctx = Ctx();
  EXPECT_EQ(
      Reason(As("jobcenter-koeln")
                 ->ListTrainingTolerationNotices(ctx.get(), list, &notices)),
      "WRONG_LEGAL_DOMAIN");
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("abh-koeln")
                  ->ListTrainingTolerationNotices(ctx2.get(), list, &notices)
                  .ok());
  ASSERT_EQ(notices.notices_size(), 1);
  const v1::TrainingTolerationNotice n = notices.notices(0);
  EXPECT_EQ(n.name(), hired[0].training_toleration_notice());
  EXPECT_EQ(n.training_duration_months(), 36);
  EXPECT_EQ(n.chamber_agency(), "agencies/ihk-koeln");

  v1::AcknowledgeTrainingTolerationNoticeRequest ack;
  ack.set_name(n.name());
  ack.set_etag(n.etag());
  v1::TrainingTolerationNotice acked;
  auto ctx3 = Ctx();
  ASSERT_TRUE(As("abh-koeln")
                  ->AcknowledgeTrainingTolerationNotice(ctx3.get(), ack, &acked)
                  .ok());
  EXPECT_TRUE(acked.acknowledged());
  auto ctx4 = Ctx();
  EXPECT_EQ(As("abh-koeln")
                ->AcknowledgeTrainingTolerationNotice(ctx4.get(), ack, &acked)
                .error_code(),
            StatusCode::ABORTED);
  auto ctx5 = Ctx();
  ASSERT_TRUE(As("abh-koeln")
                  ->ListTrainingTolerationNotices(ctx5.get(), list, &notices)
                  .ok());
  EXPECT_EQ(notices.notices_size(), 0);
}

TEST_P(PlacementServiceTest, GetAndListPlacementsNeedEmployment) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string person = NewPerson();
  MustCreateProfile(person);
  v1::Placement p = MustPropose(offer, person);
  v1::GetPlacementRequest get;
  get.set_name(p.name());
  v1::Placement got;
  auto ctx = Ctx();
  ASSERT_TRUE(As("aa-koeln")->GetPlacement(ctx.get(), get, &got).ok());
  EXPECT_EQ(got.etag(), p.etag());
  auto ctx2 = Ctx();
  EXPECT_EQ(As("kim-koeln")->GetPlacement(ctx2.get(), get, &got).error_code(),
            StatusCode::PERMISSION_DENIED);
  v1::ListPlacementsRequest list;
  list.set_offer(offer.name());
  v1::ListPlacementsResponse listed;
  auto ctx3 = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->ListPlacements(ctx3.get(), list, &listed).ok());
  EXPECT_EQ(listed.placements_size(), 1);
  auto ctx4 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->ListPlacements(ctx4.get(), list, &listed).ok());
  EXPECT_EQ(listed.placements_size(), 0);
}

// --- matching and consumed events ---

TEST_P(PlacementServiceTest, CourseResultRaisesLevelAndChangesMatching) {
  v1::Offer b2 = ValidOffer();
  b2.set_required_language_level(type::v1::CEFR_LEVEL_B2);
  v1::Offer offer = MustCreateOffer(b2);
  const std::string person = NewPerson();
  // A result before the profile exists is kept.
  ASSERT_TRUE(ResultEvent(person, type::v1::CEFR_LEVEL_A2).ok());
  MustCreateProfile(person, type::v1::CEFR_LEVEL_A1);

  v1::MatchOffersForCandidateRequest match;
  match.set_candidate(absl::StrCat("candidates/", person.substr(8)));
  match.set_include_excluded(true);
  v1::MatchOffersForCandidateResponse matched;
  auto ctx = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->MatchOffersForCandidate(ctx.get(), match, &matched)
                  .ok());
  ASSERT_EQ(matched.matches_size(), 1);
  EXPECT_EQ(matched.matches(0).eligibility(), v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(matched.facts().language_level(), type::v1::CEFR_LEVEL_A2);
  EXPECT_EQ(matched.facts().language_level_source(),
            v1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT);

  ASSERT_TRUE(ResultEvent(person, type::v1::CEFR_LEVEL_B2).ok());
  ASSERT_TRUE(ResultEvent(person, type::v1::CEFR_LEVEL_A1).ok());  // no lower
  ASSERT_TRUE(ResultEvent(person, type::v1::CEFR_LEVEL_C2, false).ok());
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->MatchOffersForCandidate(ctx2.get(), match, &matched)
                  .ok());
  ASSERT_EQ(matched.matches_size(), 1);
  EXPECT_EQ(matched.matches(0).eligibility(), v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_EQ(matched.facts().language_level(), type::v1::CEFR_LEVEL_B2);
  EXPECT_GT(matched.matches(0).score(), 0);

  // Without LANGUAGE access the level is withheld and not used.
  auto ctx3 = Ctx();
  ASSERT_TRUE(As("aa-koeln")
                  ->MatchOffersForCandidate(ctx3.get(), match, &matched)
                  .ok());
  ASSERT_EQ(matched.matches_size(), 1);
  EXPECT_EQ(matched.matches(0).eligibility(), v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_EQ(matched.facts().language_level(), type::v1::CEFR_LEVEL_UNSPECIFIED);
  EXPECT_FALSE(matched.withheld().empty());

  // Candidates for the offer: one audit record per returned candidate.
  v1::MatchCandidatesForOfferRequest by_offer;
  by_offer.set_offer(offer.name());
  v1::MatchCandidatesForOfferResponse candidates;
  auto ctx4 = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->MatchCandidatesForOffer(ctx4.get(), by_offer, &candidates)
                  .ok());
  ASSERT_EQ(candidates.matches_size(), 1);
  EXPECT_EQ(candidates.matches(0).candidate().person(), person);
  int match_reads = 0;
  for (const audit::AuditRecord& r : AuditOf(person)) {
    if (r.operation ==
        "lotse.placement.v1.PlacementService/MatchCandidatesForOffer") {
      ++match_reads;
    }
  }
  EXPECT_EQ(match_reads, 1);
  // KOMMUNE may read no candidate's EMPLOYMENT: nothing comes back.
  auto ctx5 = Ctx();
  ASSERT_TRUE(As("kim-koeln")
                  ->MatchCandidatesForOffer(ctx5.get(), by_offer, &candidates)
                  .ok());
  EXPECT_EQ(candidates.matches_size(), 0);
}

TEST_P(PlacementServiceTest, MatchPagesExpire) {
  for (int i = 0; i < 3; ++i) MustCreateOffer(ValidOffer());
  const std::string person = NewPerson();
  MustCreateProfile(person);
  v1::MatchOffersForCandidateRequest match;
  match.set_candidate(absl::StrCat("candidates/", person.substr(8)));
  match.set_page_size(2);
  v1::MatchOffersForCandidateResponse page;
  auto ctx = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->MatchOffersForCandidate(ctx.get(), match, &page)
                  .ok());
  EXPECT_EQ(page.matches_size(), 2);
  ASSERT_FALSE(page.next_page_token().empty());
  match.set_page_token(page.next_page_token());
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")
                  ->MatchOffersForCandidate(ctx2.get(), match, &page)
                  .ok());
  EXPECT_EQ(page.matches_size(), 1);
  clock_->Advance(absl::Minutes(11));
  auto ctx3 = Ctx();
  grpc::Status expired =
      As("jobcenter-koeln")->MatchOffersForCandidate(ctx3.get(), match, &page);
  EXPECT_EQ(expired.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(expired), "PAGE_TOKEN_EXPIRED");
  match.set_page_size(-1);
  match.clear_page_token();
  auto ctx4 = Ctx();
  EXPECT_EQ(As("jobcenter-koeln")
                ->MatchOffersForCandidate(ctx4.get(), match, &page)
                .error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_P(PlacementServiceTest, MergeMovesProfileAndPlacements) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string merged = NewPerson();
  const std::string survivor = NewPerson();
  v1::CandidateProfile profile = MustCreateProfile(merged);
  v1::Placement p = MustPropose(offer, merged);
  identity::v1::PersonMerged event;
  event.set_merged(merged);
  event.set_survivor(survivor);
  ASSERT_TRUE(Deliver(event, "identity").ok());

  v1::GetCandidateProfileRequest get;
  get.set_name(absl::StrCat("candidates/", survivor.substr(8)));
  v1::GetCandidateProfileResponse got;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->GetCandidateProfile(ctx.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().person(), survivor);
  // The old name leads to the survivor's profile.
  get.set_name(profile.name());
  auto ctx2 = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->GetCandidateProfile(ctx2.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().person(), survivor);
  v1::GetPlacementRequest gp;
  gp.set_name(p.name());
  v1::Placement moved;
  auto ctx3 = Ctx();
  ASSERT_TRUE(As("jobcenter-koeln")->GetPlacement(ctx3.get(), gp, &moved).ok());
  EXPECT_EQ(moved.person(), survivor);

  // Both with a profile: the survivor's stays, the merged one is inactive.
  const std::string a = NewPerson();
  const std::string b = NewPerson();
  v1::CandidateProfile pa = MustCreateProfile(a);
  MustCreateProfile(b);
  event.set_merged(a);
  event.set_survivor(b);
  ASSERT_TRUE(Deliver(event, "identity").ok());
  get.set_name(pa.name());
  auto ctx4 = Ctx();
  ASSERT_TRUE(
      As("jobcenter-koeln")->GetCandidateProfile(ctx4.get(), get, &got).ok());
  EXPECT_EQ(got.candidate_profile().state(), v1::CANDIDATE_STATE_INACTIVE);
}

TEST_P(PlacementServiceTest, ProposeIsIdempotentByRequestId) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string person = NewPerson();
  MustCreateProfile(person);
  v1::Placement first, again;
  ASSERT_TRUE(Propose("jobcenter-koeln", offer, person, &first, "same").ok());
  ASSERT_TRUE(Propose("jobcenter-koeln", offer, person, &again, "same").ok());
  EXPECT_EQ(again.name(), first.name());
  EXPECT_EQ(again.etag(), first.etag());
  EXPECT_EQ(Emitted<v1::PlacementProposed>().size(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_placements"), 1);

  // The same id for another proposal is refused and stores nothing.
  v1::Offer other = MustCreateOffer(ValidOffer());
  v1::Placement reused;
  grpc::Status s = Propose("jobcenter-koeln", other, person, &reused, "same");
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(s), "REQUEST_ID_REUSED");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_placements"), 1);
}

TEST_P(PlacementServiceTest, InterviewKeepsItsTimeAndEveryTransition) {
  v1::Offer offer = MustCreateOffer(ValidOffer());
  const std::string person = NewPerson();
  MustCreateProfile(person);
  v1::Placement p = MustPropose(offer, person);
  ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
  v1::MarkPlacementInterviewRequest r;
  r.set_name(p.name());
  r.set_etag(p.etag());
  r.mutable_interview_time()->set_seconds(
      absl::ToUnixSeconds(clock_->Now() + absl::Hours(72)));
  auto ctx = Ctx();
  ASSERT_TRUE(As("aa-koeln")->MarkPlacementInterview(ctx.get(), r, &p).ok());
  EXPECT_EQ(p.state(), v1::PLACEMENT_STATE_INTERVIEW);
  EXPECT_EQ(p.interview_time().seconds(), r.interview_time().seconds());
  ASSERT_EQ(p.transitions_size(), 3);
  EXPECT_EQ(p.transitions(2).from_state(), v1::PLACEMENT_STATE_APPLIED);
  EXPECT_EQ(p.transitions(2).to_state(), v1::PLACEMENT_STATE_INTERVIEW);
  EXPECT_EQ(p.transitions(2).agency(), "agencies/aa-koeln");
  EXPECT_EQ(p.transitions(2).actor(), "cw-1");
}

TEST_P(PlacementServiceTest, WithoutARecordingOfficeEveryLocalOfficeIsTold) {
  // A second immigration office in the same municipality, and one elsewhere.
  ASSERT_TRUE(RegisterAgency("abh-koeln-sued",
                             type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE)
                  .ok());
  v1::Offer offer = MustCreateOffer(ValidOffer(v1::OFFER_KIND_APPRENTICESHIP),
                                    "jobcenter-koeln");
  const std::string person = NewPerson();
  identity_->SetResidence(person, type::v1::WORK_PERMISSION_PERMITTED,
                          /*recording_agency=*/"");
  MustCreateProfile(person);
  v1::Placement p = MustPropose(offer, person);
  ASSERT_TRUE(Apply("jobcenter-koeln", &p).ok());
  ASSERT_TRUE(Hire("jobcenter-koeln", &p).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_notices"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM placement_notices WHERE "
                  "office LIKE '%abh-koeln-sued'"),
            1);
}

// Two service instances on one database (replicas on one PostgreSQL): what
// one writes, the other's matching sees.
TEST_P(PlacementServiceTest, AnotherInstanceMatchesWhatThisOneWrote) {
  PlacementOptions options;
  options.identity = identity_;
  options.clock = [clock = clock_] { return clock->Now(); };
  PlacementServiceImpl other(runtime_, options);

  const std::string person = NewPerson();
  MustCreateProfile(person);
  server::RequestContext rc;
  rc.caller = {"jobcenter-koeln", "JOBCENTER"};
  rc.actor = "cw-2";
  rc.purpose = "job-placement";
  rc.deadline = absl::Now() + absl::Seconds(30);
  v1::MatchOffersForCandidateRequest match;
  match.set_candidate(absl::StrCat("candidates/", person.substr(8)));
  v1::MatchOffersForCandidateResponse before;
  ASSERT_TRUE(other.DoMatchOffersForCandidate(rc, match, &before).ok());
  EXPECT_EQ(before.matches_size(), 0);

  // Written through this test's server, not through `other`.
  v1::Offer offer = MustCreateOffer(ValidOffer());
  v1::MatchOffersForCandidateResponse after;
  ASSERT_TRUE(other.DoMatchOffersForCandidate(rc, match, &after).ok());
  ASSERT_EQ(after.matches_size(), 1);
  EXPECT_EQ(after.matches(0).offer().name(), offer.name());

  // A withdrawal through the server removes it from `other`'s ranking too.
  v1::WithdrawOfferRequest withdraw;
  withdraw.set_name(offer.name());
  withdraw.set_etag(offer.etag());
  withdraw.set_reason("filled elsewhere");
  v1::Offer withdrawn;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("aa-koeln")->WithdrawOffer(ctx.get(), withdraw, &withdrawn).ok());
  v1::MatchOffersForCandidateResponse gone;
  ASSERT_TRUE(other.DoMatchOffersForCandidate(rc, match, &gone).ok());
  EXPECT_EQ(gone.matches_size(), 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PlacementServiceTest);

}  // namespace
}  // namespace lotse::placement
