#include "tools/demo/load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

namespace lotse::demo {
namespace {

namespace iv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace kv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;
namespace lt = ::lotse::type::v1;

constexpr int64_t kDay = 24 * 60;

// The stubs of one agency.
struct AgencyStubs {
  std::unique_ptr<iv1::IdentityService::Stub> identity;
  std::unique_ptr<cv1::CasesService::Stub> cases;
  std::unique_ptr<kv1::CoursesService::Stub> courses;
  std::unique_ptr<pv1::PlacementService::Stub> placement;
};

class Loader {
 public:
  Loader(const Plan& plan, const LoadTargets& targets, absl::Time now)
      : plan_(plan),
        targets_(targets),
        now_(now),
        start_(absl::FromCivil(
            absl::CivilDay(absl::ToCivilDay(now, absl::UTCTimeZone())) -
                plan.options.history_days,
            absl::UTCTimeZone())),
        now_minute_((now - start_) / absl::Minutes(1)) {}

  absl::Status Connect() {
    for (const Agency& a : Agencies()) {
      auto creds = server::ClientCredentialsFromDir(targets_.tls_dir, a.id);
      if (!creds.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("no client certificate for ", a.id, ": ",
                         creds.status().message()));
      }
      AgencyStubs& s = stubs_[a.id];
      s.identity = iv1::IdentityService::NewStub(
          grpc::CreateChannel(targets_.identity, *creds));
      s.cases = cv1::CasesService::NewStub(
          grpc::CreateChannel(targets_.cases, *creds));
      s.courses = kv1::CoursesService::NewStub(
          grpc::CreateChannel(targets_.courses, *creds));
      s.placement = pv1::PlacementService::NewStub(
          grpc::CreateChannel(targets_.placement, *creds));
    }
    return absl::OkStatus();
  }

  // True when the case manager already has cases: loaded before.
  absl::StatusOr<bool> AlreadyLoaded() {
    cv1::ListCasesRequest list;
    list.set_page_size(1);
    cv1::ListCasesResponse listed;
    grpc::Status s = Call("case-management", now_minute_, [&](auto* c) {
      return stubs_.at(kKim).cases->ListCases(c, list, &listed);
    });
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot list the demo cases: ", s.error_message()));
    }
    return listed.cases_size() > 0;
  }

  LoadResult Run() {
    const absl::Time began = absl::Now();
    CreateCourses();
    CreateOffers();
    std::atomic<int> next{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < std::max(1, targets_.threads); ++t) {
      workers.emplace_back([&] {
        for (int i = next++; i < static_cast<int>(plan_.persons.size());
             i = next++) {
          LoadPerson(plan_.persons[i]);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    std::stable_sort(hires_.begin(), hires_.end(),
                     [](const Hire& a, const Hire& b) { return a.at < b.at; });
    for (const Hire& h : hires_) {
      MovePlacement(*h.person, h.pl, h.placement.get(), h.at, "hired");
    }
    JoinWaitlists();
    StartCourses();
    result_.calls = calls_;
    result_.failures = failures_;
    result_.took = absl::Now() - began;
    const int tour = TourPerson(plan_);
    if (tour >= 0) {
      result_.tour_person = person_names_[tour];
      result_.tour_case = case_names_[tour];
    }
    return result_;
  }

 private:
  using Rpc = std::function<grpc::Status(grpc::ClientContext*)>;

  bool Happened(int64_t minute) const {
    return minute >= 0 && minute < now_minute_;
  }
  absl::Time At(int64_t minute) const {
    return std::min(start_ + absl::Minutes(minute), now_ - absl::Seconds(1));
  }
  lt::Date DateOfDay(int64_t day) const {
    const absl::CivilDay d =
        absl::ToCivilDay(start_, absl::UTCTimeZone()) + day;
    lt::Date out;
    out.set_year(static_cast<int>(d.year()));
    out.set_month(d.month());
    out.set_day(d.day());
    return out;
  }

  // One call at the plan's `minute`. Retried while the answer is one that
  // event delivery between the services will change soon: a just
  // registered agency or a just created relation not known everywhere yet
  // (UNAVAILABLE, PERMISSION_DENIED, NOT_FOUND), for up to 10 s. A call
  // refused for an agency's limit (RESOURCE_EXHAUSTED) is retried after the
  // delay its RetryInfo names, as every well-behaved client does.
  grpc::Status Call(const char* purpose, int64_t minute, const Rpc& rpc) {
    const std::string at =
        absl::FormatTime(absl::RFC3339_full, At(minute), absl::UTCTimeZone());
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    absl::Duration backoff = absl::Milliseconds(20);
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
      context.AddMetadata(server::kActorMetadataKey, "demo-seed");
      context.AddMetadata(server::kPurposeMetadataKey, purpose);
      context.AddMetadata(server::kDevTimeMetadataKey, at);
      grpc::Status status = rpc(&context);
      ++calls_;
      const auto code = status.error_code();
      if (code == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          absl::Now() <= give_up) {
        const std::optional<absl::Duration> delay =
            RetryDelayOf(FromGrpcStatus(status));
        if (delay.has_value()) {
          absl::SleepFor(std::min(*delay, absl::Seconds(1)));
          continue;
        }
      }
      if ((code != grpc::StatusCode::UNAVAILABLE &&
           code != grpc::StatusCode::PERMISSION_DENIED &&
           code != grpc::StatusCode::NOT_FOUND) ||
          absl::Now() > give_up) {
        return status;
      }
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(100));
    }
  }

  // Counts a failed call and says why on stderr (ids only, never names).
  bool Check(const grpc::Status& status, const std::string& what) {
    if (status.ok()) return true;
    ++failures_;
    if (failures_ <= 60) {
      std::fprintf(
          stderr, "demo: %s: %s (%s)\n", what.c_str(),
          status.error_message().c_str(),
          ReasonOf(FromGrpcStatus(status)).value_or("no reason").c_str());
    }
    return false;
  }

  void CreateCourses() {
    course_names_.resize(plan_.courses.size());
    for (const CoursePlan& c : plan_.courses) {
      if (!Happened(c.publish)) continue;
      kv1::CreateCourseRequest req;
      req.set_request_id(absl::StrCat("lb-course-", c.index));
      kv1::Course* course = req.mutable_course();
      course->set_title(c.title);
      course->set_kind(c.kind);
      course->set_target_level(lt::CEFR_LEVEL_B1);
      course->mutable_place()->set_street("Marktplatz");
      course->mutable_place()->set_house_number(absl::StrCat(1 + c.index % 9));
      course->mutable_place()->set_postal_code("59199");
      course->mutable_place()->set_locality(kMunicipalityName);
      course->mutable_place()->set_municipality_code(kMunicipalityCode);
      *course->mutable_schedule()->mutable_start_date() =
          DateOfDay(c.start_day);
      for (auto d : {lt::DAY_OF_WEEK_MONDAY, lt::DAY_OF_WEEK_TUESDAY,
                     lt::DAY_OF_WEEK_WEDNESDAY, lt::DAY_OF_WEEK_THURSDAY}) {
        course->mutable_schedule()->add_weekdays(d);
      }
      course->mutable_schedule()->set_day_period(
          c.index % 2 == 0 ? lt::DAY_PERIOD_MORNING : lt::DAY_PERIOD_AFTERNOON);
      course->mutable_schedule()->set_units_per_week(20);
      course->mutable_schedule()->set_total_units(700);
      course->set_capacity(c.capacity);
      kv1::Course out;
      grpc::Status s = Call("course-placement", c.publish, [&](auto* ctx) {
        return stubs_.at(c.provider).courses->CreateCourse(ctx, req, &out);
      });
      if (Check(s, absl::StrCat("course ", c.index))) {
        course_names_[c.index] = out.name();
        ++result_.courses;
      }
    }
  }

  void CreateOffers() {
    offer_names_.resize(plan_.offers.size());
    for (const OfferPlan& o : plan_.offers) {
      if (!Happened(o.publish)) continue;
      pv1::CreateOfferRequest req;
      req.set_request_id(absl::StrCat("lb-offer-", o.index));
      pv1::Offer* offer = req.mutable_offer();
      offer->set_kind(pv1::OFFER_KIND_JOB);
      offer->set_title(o.title);
      offer->set_occupation_code(o.occupation_code);
      offer->set_employer_name(o.employer);
      offer->mutable_place()->set_postal_code("59199");
      offer->mutable_place()->set_locality(kMunicipalityName);
      offer->mutable_place()->set_municipality_code(kMunicipalityCode);
      offer->mutable_hours()->set_min_hours_per_week(20);
      offer->mutable_hours()->set_max_hours_per_week(40);
      *offer->mutable_start_date() = DateOfDay(o.start_day);
      offer->set_required_language_level(o.level);
      offer->set_positions_total(o.positions);
      pv1::Offer out;
      grpc::Status s = Call("job-placement", o.publish, [&](auto* ctx) {
        return stubs_.at(o.publisher).placement->CreateOffer(ctx, req, &out);
      });
      if (Check(s, absl::StrCat("offer ", o.index))) {
        offer_names_[o.index] = out.name();
        ++result_.offers;
      }
    }
  }

  // One timed action of a person's history.
  struct Action {
    int64_t at;
    int order;                  // ties: the order the actions were added in
    std::function<bool()> run;  // false: stop this person's history
  };

  void LoadPerson(const PersonPlan& p) {
    if (!Happened(p.registered)) return;
    // Registration by the case manager.
    iv1::CreatePersonRequest create;
    create.set_request_id(absl::StrCat(p.key, "-person"));
    iv1::PersonName* name = create.mutable_person()->add_names();
    name->set_given_names(p.given_names);
    name->set_family_names(p.family_names);
    name->set_script("Latn");
    name->set_kind(iv1::NAME_KIND_CURRENT);
    auto* birth = create.mutable_person()->mutable_birth_date();
    birth->set_year(p.birth_year);
    birth->set_month(p.birth_month);
    birth->set_day(p.birth_day);
    create.mutable_person()->add_nationality_codes(p.nationality);
    // The demo's persons are distinct people whose names may coincide, or
    // deliberate second registrations: the clerk registers them anyway.
    create.set_confirm_new_person(true);
    iv1::Person person;
    grpc::Status s = Call("case-management", p.registered, [&](auto* c) {
      return stubs_.at(kKim).identity->CreatePerson(c, create, &person);
    });
    if (!Check(s, absl::StrCat(p.key, " person"))) return;
    {
      absl::MutexLock lock(&mu_);
      person_names_[p.index] = person.name();
      ++result_.persons;
    }
    if (!p.has_case || !Happened(p.case_opened)) return;

    cv1::OpenCaseRequest open;
    open.set_request_id(absl::StrCat(p.key, "-case"));
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor(
        absl::StrCat("fallmanagerin-", 1 + p.index % 6));
    cv1::Case opened;
    s = Call("case-management", p.case_opened, [&](auto* c) {
      return stubs_.at(kKim).cases->OpenCase(c, open, &opened);
    });
    if (!Check(s, absl::StrCat(p.key, " case"))) return;
    {
      absl::MutexLock lock(&mu_);
      case_names_[p.index] = opened.name();
      ++result_.cases;
    }

    std::vector<Action> actions;
    auto add = [&](int64_t at, std::function<bool()> run) {
      if (Happened(at)) {
        actions.push_back(
            {at, static_cast<int>(actions.size()), std::move(run)});
      }
    };
    std::vector<cv1::Step> steps(p.steps.size());
    for (size_t j = 0; j < p.steps.size(); ++j) {
      add(p.steps[j].refer, [&, j] { return Refer(p, opened, j, &steps[j]); });
      add(p.steps[j].accept, [&, j] {
        return Transition(p, j, &steps[j], p.steps[j].accept, "accept");
      });
      add(p.steps[j].decline, [&, j] {
        return Transition(p, j, &steps[j], p.steps[j].decline, "decline");
      });
      add(p.steps[j].start, [&, j] {
        return Transition(p, j, &steps[j], p.steps[j].start, "start");
      });
      add(p.steps[j].done, [&, j] {
        return Transition(p, j, &steps[j], p.steps[j].done, "complete");
      });
    }
    add(p.residence, [&] { return RecordResidence(p, person.name()); });
    std::string entitlement;
    add(p.admission, [&] { return Admit(p, person.name(), &entitlement); });
    add(p.booking, [&] {
      if (p.course < 0 || course_names_[p.course].empty()) return true;
      if (p.waitlisted) {
        absl::MutexLock lock(&mu_);
        waitlist_.push_back({p.index, person.name(), p.booking});
        return true;
      }
      return Book(p, person.name());
    });
    std::string profile;
    add(p.profile, [&] { return Profile(p, person.name(), &profile); });
    for (const PlacementPlan& pl : p.placements) {
      auto placement = std::make_shared<pv1::Placement>();
      add(pl.propose, [&, placement, pl] {
        return Propose(p, pl, profile, placement.get());
      });
      for (auto [at, what] :
           {std::pair{pl.applied, "applied"},
            std::pair{pl.interview, "interview"}, std::pair{pl.hired, "hired"},
            std::pair{pl.rejected, "rejected"},
            std::pair{pl.withdrawn, "withdrawn"}}) {
        if (std::string(what) == "hired") {
          // Hires fill offers, which other persons' proposals must find
          // open: they run after every person's history, in time order.
          add(at, [&, placement, pl, at = at] {
            absl::MutexLock lock(&mu_);
            hires_.push_back({&p, pl, placement, at});
            return true;
          });
          continue;
        }
        add(at, [&, placement, pl, at = at, what = what] {
          return MovePlacement(p, pl, placement.get(), at, what);
        });
      }
    }
    add(p.case_closed, [&] {
      cv1::Case current;
      cv1::GetCaseRequest get;
      get.set_name(opened.name());
      grpc::Status st = Call("case-management", p.case_closed, [&](auto* c) {
        return stubs_.at(kKim).cases->GetCase(c, get, &current);
      });
      if (!Check(st, absl::StrCat(p.key, " get case"))) return false;
      cv1::CloseCaseRequest close;
      close.set_name(opened.name());
      close.set_etag(current.etag());
      close.set_closing_reason(p.closing_reason);
      close.set_cancel_open_steps(true);
      cv1::Case closed;
      st = Call("case-management", p.case_closed, [&](auto* c) {
        return stubs_.at(kKim).cases->CloseCase(c, close, &closed);
      });
      Check(st, absl::StrCat(p.key, " close case"));
      return false;  // nothing happens in a closed case
    });
    std::stable_sort(
        actions.begin(), actions.end(),
        [](const Action& a, const Action& b) { return a.at < b.at; });
    for (Action& a : actions) {
      if (!a.run()) break;
    }
  }

  // The case manager refers step `j` of the plan.
  bool Refer(const PersonPlan& p, const cv1::Case& opened, size_t j,
             cv1::Step* step) {
    const StepPlan& sp = p.steps[j];
    cv1::CreateStepRequest req;
    req.set_parent(opened.name());
    req.set_request_id(absl::StrCat(p.key, "-step-", j));
    req.mutable_step()->set_kind(sp.kind);
    req.mutable_step()->set_receiving_agency(
        absl::StrCat("agencies/", sp.agency));
    req.mutable_step()->set_description(sp.description);
    if (sp.due_day >= 0) {
      *req.mutable_step()->mutable_due_date() = DateOfDay(sp.due_day);
    }
    grpc::Status st = Call("case-management", sp.refer, [&](auto* c) {
      return stubs_.at(kKim).cases->CreateStep(c, req, step);
    });
    if (!Check(st, absl::StrCat(p.key, " step ", j))) return false;
    absl::MutexLock lock(&mu_);
    ++result_.steps;
    return true;
  }

  // Accept, decline, start or complete `step` as its receiving agency,
  // re-reading it once when its etag went stale (events from other
  // services update steps too).
  bool Transition(const PersonPlan& p, size_t j, cv1::Step* step, int64_t at,
                  const char* what) {
    if (step->name().empty()) return true;  // the referral failed
    const StepPlan& sp = p.steps[j];
    cv1::CasesService::Stub& stub = *stubs_.at(sp.agency).cases;
    const char* purpose = "case-management";
    const std::string w = what;
    const cv1::StepState target = w == "accept"    ? cv1::STEP_STATE_ACCEPTED
                                  : w == "decline" ? cv1::STEP_STATE_DECLINED
                                  : w == "start"   ? cv1::STEP_STATE_IN_PROGRESS
                                                   : cv1::STEP_STATE_DONE;
    grpc::Status st;
    for (int attempt = 0; attempt < 4; ++attempt) {
      // Events from other services move steps too (a course start, a
      // hire): a step already where the plan would take it is fine.
      if (step->state() == target || (target != cv1::STEP_STATE_DECLINED &&
                                      step->state() == cv1::STEP_STATE_DONE)) {
        return true;
      }
      cv1::Step out;
      st = Call(purpose, at, [&](auto* c) {
        if (w == "accept") {
          cv1::AcceptStepRequest r;
          r.set_name(step->name());
          r.set_etag(step->etag());
          return stub.AcceptStep(c, r, &out);
        }
        if (w == "decline") {
          cv1::DeclineStepRequest r;
          r.set_name(step->name());
          r.set_etag(step->etag());
          r.set_reason(cv1::STEP_DECLINE_REASON_NO_CAPACITY);
          return stub.DeclineStep(c, r, &out);
        }
        if (w == "start") {
          cv1::StartStepRequest r;
          r.set_name(step->name());
          r.set_etag(step->etag());
          return stub.StartStep(c, r, &out);
        }
        cv1::CompleteStepRequest r;
        r.set_name(step->name());
        r.set_etag(step->etag());
        r.set_outcome(sp.outcome);
        return stub.CompleteStep(c, r, &out);
      });
      if (st.ok()) {
        *step = std::move(out);
        return true;
      }
      if (st.error_code() != grpc::StatusCode::ABORTED &&
          st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
        break;
      }
      cv1::GetStepRequest get;
      get.set_name(step->name());
      cv1::Step current;
      grpc::Status g = Call(
          purpose, at, [&](auto* c) { return stub.GetStep(c, get, &current); });
      if (!g.ok()) break;
      if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
          current.state() == step->state()) {
        break;  // refused for another reason than a concurrent change
      }
      *step = std::move(current);
    }
    Check(st, absl::StrCat(p.key, " step ", j, " ", what));
    return true;  // the rest of the history may still happen
  }

  bool RecordResidence(const PersonPlan& p, const std::string& person) {
    iv1::RecordResidenceStatusRequest req;
    req.set_parent(person);
    req.set_request_id(absl::StrCat(p.key, "-residence"));
    iv1::ResidenceStatus* rs = req.mutable_residence_status();
    const int64_t day = p.residence / kDay;
    if (p.nationality == "UA") {
      rs->set_title_kind(iv1::RESIDENCE_TITLE_KIND_TEMPORARY_PROTECTION);
      rs->set_legal_basis("§ 24 AufenthG");
    } else if (p.work_permitted) {
      rs->set_title_kind(iv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
      rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
    } else {
      rs->set_title_kind(iv1::RESIDENCE_TITLE_KIND_ARRIVAL_CERTIFICATE);
      rs->set_legal_basis("§ 63a AsylG");
    }
    *rs->mutable_valid_from() = DateOfDay(day);
    *rs->mutable_valid_until() = DateOfDay(day + 3 * 365);
    rs->set_work_permission(p.work_permitted
                                ? lt::WORK_PERMISSION_PERMITTED
                                : lt::WORK_PERMISSION_NOT_PERMITTED);
    iv1::ResidenceStatus out;
    grpc::Status st = Call("residence-status", p.residence, [&](auto* c) {
      return stubs_.at(kImmigrationOffice)
          .identity->RecordResidenceStatus(c, req, &out);
    });
    Check(st, absl::StrCat(p.key, " residence"));
    return true;
  }

  bool Admit(const PersonPlan& p, const std::string& person,
             std::string* entitlement) {
    kv1::RecordEntitlementRequest req;
    req.set_request_id(absl::StrCat(p.key, "-admission"));
    kv1::Entitlement* e = req.mutable_entitlement();
    e->set_person(person);
    e->set_kind(kv1::ENTITLEMENT_KIND_ADMISSION);
    e->add_course_kinds(kv1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(700);
    const int64_t day = p.admission / kDay;
    *e->mutable_valid_from() = DateOfDay(day);
    *e->mutable_valid_until() = DateOfDay(day + 2 * 365);
    e->set_legal_basis("§ 44 AufenthG");
    kv1::Entitlement out;
    grpc::Status st = Call("course-placement", p.admission, [&](auto* c) {
      return stubs_.at(kBamf).courses->RecordEntitlement(c, req, &out);
    });
    if (Check(st, absl::StrCat(p.key, " admission"))) *entitlement = out.name();
    return true;
  }

  bool Book(const PersonPlan& p, const std::string& person) {
    const CoursePlan& c = plan_.courses[p.course];
    kv1::CreateBookingRequest req;
    req.set_parent(course_names_[p.course]);
    req.set_request_id(absl::StrCat(p.key, "-booking"));
    req.mutable_booking()->set_person(person);
    req.set_confirm(true);
    kv1::Booking out;
    grpc::Status st = Call("course-placement", p.booking, [&](auto* ctx) {
      return stubs_.at(c.provider).courses->CreateBooking(ctx, req, &out);
    });
    if (Check(st, absl::StrCat(p.key, " booking"))) {
      absl::MutexLock lock(&mu_);
      ++result_.bookings;
    }
    return true;
  }

  bool Profile(const PersonPlan& p, const std::string& person,
               std::string* profile) {
    const std::string agency = JobAgency(p);
    pv1::CreateCandidateProfileRequest req;
    req.set_request_id(absl::StrCat(p.key, "-profile"));
    pv1::CandidateProfile* cp = req.mutable_candidate_profile();
    cp->set_person(person);
    pv1::PreferredPlace* place = cp->add_preferred_places();
    place->set_municipality_code(kMunicipalityCode);
    place->set_max_distance_km(30);
    cp->mutable_preferred_hours()->set_min_hours_per_week(20);
    cp->mutable_preferred_hours()->set_max_hours_per_week(40);
    cp->set_stated_language_level(p.language);
    pv1::CandidateProfile out;
    grpc::Status st = Call("job-placement", p.profile, [&](auto* c) {
      return stubs_.at(agency).placement->CreateCandidateProfile(c, req, &out);
    });
    if (Check(st, absl::StrCat(p.key, " profile"))) *profile = out.name();
    return true;
  }

  static std::string JobAgency(const PersonPlan& p) {
    for (const StepPlan& s : p.steps) {
      if (s.kind == cv1::STEP_KIND_JOB_PLACEMENT) return s.agency;
    }
    return kJobcenter;
  }

  bool Propose(const PersonPlan& p, const PlacementPlan& pl,
               const std::string& profile, pv1::Placement* out) {
    if (profile.empty() || offer_names_[pl.offer].empty()) return true;
    pv1::ProposePlacementRequest req;
    req.set_request_id(absl::StrCat(p.key, "-placement-", pl.offer));
    req.mutable_placement()->set_offer(offer_names_[pl.offer]);
    req.mutable_placement()->set_candidate(profile);
    grpc::Status st = Call("job-placement", pl.propose, [&](auto* c) {
      return stubs_.at(JobAgency(p)).placement->ProposePlacement(c, req, out);
    });
    if (Check(st, absl::StrCat(p.key, " placement"))) {
      absl::MutexLock lock(&mu_);
      ++result_.placements;
    }
    return true;
  }

  bool MovePlacement(const PersonPlan& p, const PlacementPlan& pl,
                     pv1::Placement* placement, int64_t at,
                     const std::string& what) {
    if (placement->name().empty()) return true;
    pv1::PlacementService::Stub& stub = *stubs_.at(JobAgency(p)).placement;
    pv1::Placement out;
    grpc::Status st;
    for (int attempt = 0; attempt < 3; ++attempt) {
      st = Call("job-placement", at, [&](auto* c) {
        if (what == "applied") {
          pv1::MarkPlacementAppliedRequest r;
          r.set_name(placement->name());
          r.set_etag(placement->etag());
          return stub.MarkPlacementApplied(c, r, &out);
        }
        if (what == "interview") {
          pv1::MarkPlacementInterviewRequest r;
          r.set_name(placement->name());
          r.set_etag(placement->etag());
          return stub.MarkPlacementInterview(c, r, &out);
        }
        if (what == "hired") {
          pv1::MarkPlacementHiredRequest r;
          r.set_name(placement->name());
          r.set_etag(placement->etag());
          *r.mutable_start_date() = DateOfDay(at / kDay + 14);
          return stub.MarkPlacementHired(c, r, &out);
        }
        if (what == "rejected") {
          pv1::RejectPlacementRequest r;
          r.set_name(placement->name());
          r.set_etag(placement->etag());
          r.set_reason(pv1::PLACEMENT_END_REASON_EMPLOYER_DECLINED);
          return stub.RejectPlacement(c, r, &out);
        }
        pv1::WithdrawPlacementRequest r;
        r.set_name(placement->name());
        r.set_etag(placement->etag());
        r.set_reason(pv1::PLACEMENT_END_REASON_CANDIDATE_DECLINED);
        return stub.WithdrawPlacement(c, r, &out);
      });
      // A stale etag: the placement changed meanwhile (events); re-read.
      if (st.error_code() != grpc::StatusCode::ABORTED) break;
      pv1::GetPlacementRequest get;
      get.set_name(placement->name());
      if (!Call("job-placement", at, [&](auto* c) {
             return stub.GetPlacement(c, get, placement);
           }).ok()) {
        break;
      }
    }
    if (Check(st, absl::StrCat(p.key, " placement ", pl.offer, " ", what))) {
      *placement = std::move(out);
    }
    return true;
  }

  void JoinWaitlists() {
    std::sort(waitlist_.begin(), waitlist_.end(),
              [](const Waiting& a, const Waiting& b) { return a.at < b.at; });
    for (const Waiting& w : waitlist_) {
      const PersonPlan& p = plan_.persons[w.person];
      const CoursePlan& c = plan_.courses[p.course];
      kv1::JoinWaitlistRequest req;
      req.set_parent(course_names_[p.course]);
      req.set_request_id(absl::StrCat(p.key, "-waitlist"));
      req.mutable_waitlist_entry()->set_person(w.name);
      kv1::WaitlistEntry out;
      grpc::Status st = Call("course-placement", w.at, [&](auto* ctx) {
        return stubs_.at(c.provider).courses->JoinWaitlist(ctx, req, &out);
      });
      if (Check(st, absl::StrCat(p.key, " waitlist"))) {
        ++result_.waitlist_entries;
      }
    }
  }

  // Courses whose first lesson has passed have started.
  void StartCourses() {
    for (const CoursePlan& c : plan_.courses) {
      const int64_t at = c.start_day * kDay + 8 * 60;
      if (course_names_[c.index].empty() || !Happened(at)) continue;
      kv1::GetCourseRequest get;
      get.set_name(course_names_[c.index]);
      kv1::Course course;
      grpc::Status st = Call("course-placement", at, [&](auto* ctx) {
        return stubs_.at(c.provider).courses->GetCourse(ctx, get, &course);
      });
      if (!Check(st, absl::StrCat("course ", c.index))) continue;
      if (course.state() != kv1::COURSE_STATE_PLANNED) continue;
      kv1::StartCourseRequest start;
      start.set_name(course.name());
      start.set_etag(course.etag());
      kv1::Course out;
      st = Call("course-placement", at, [&](auto* ctx) {
        return stubs_.at(c.provider).courses->StartCourse(ctx, start, &out);
      });
      Check(st, absl::StrCat("course ", c.index, " start"));
    }
  }

  struct Hire {
    const PersonPlan* person;
    PlacementPlan pl;
    std::shared_ptr<pv1::Placement> placement;
    int64_t at;
  };

  struct Waiting {
    int person;
    std::string name;
    int64_t at;
  };

  const Plan& plan_;
  const LoadTargets targets_;
  const absl::Time now_;
  const absl::Time start_;
  const int64_t now_minute_;
  std::map<std::string, AgencyStubs> stubs_;  // filled before any thread
  std::vector<std::string> course_names_, offer_names_;
  std::atomic<int> calls_{0}, failures_{0};
  absl::Mutex mu_;
  // Written under mu_ while the person threads run.
  std::map<int, std::string> person_names_, case_names_;
  std::vector<Waiting> waitlist_;
  std::vector<Hire> hires_;
  LoadResult result_;  // counters taken under mu_ while threads run
};

}  // namespace

absl::StatusOr<LoadResult> LoadPlan(const Plan& plan,
                                    const LoadTargets& targets,
                                    absl::Time now) {
  Loader loader(plan, targets, now);
  if (absl::Status s = loader.Connect(); !s.ok()) return s;
  absl::StatusOr<bool> loaded = loader.AlreadyLoaded();
  if (!loaded.ok()) return loaded.status();
  if (*loaded) {
    LoadResult result;
    result.already_loaded = true;
    return result;
  }
  return loader.Run();
}

}  // namespace lotse::demo
