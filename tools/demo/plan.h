// The demo municipality as data: an invented town (Lindenbrück, AGS
// 05978044) with its agencies, newcomers with realistic names of the main
// origin countries, and for some of them a case whose service chain plays
// out over the past months — steps referred, accepted, started, done, some
// declined or overdue; integration courses with full classes and
// waitlists; job offers and placements with their outcomes.
//
// A plan is a pure function of its options: the same seed gives the same
// persons, names, dates and request ids, on any machine. Times are minutes
// after the start of the history (midnight UTC, `history_days` before the
// day of loading); an event whose time lies after "now" has not happened
// yet, so a loader skips it — that is how cases end up at every stage.
// Course start dates and due dates are days after the start of the history
// and may lie in the future.
//
// Nothing here talks to a service; tools/seed_demo.cc loads a plan through
// the public API.
#ifndef LOTSE_TOOLS_DEMO_PLAN_H_
#define LOTSE_TOOLS_DEMO_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "lotse/cases/v1/case.pb.h"
#include "lotse/cases/v1/step.pb.h"
#include "lotse/courses/v1/course.pb.h"
#include "lotse/placement/v1/placement.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"

namespace lotse::demo {

// The invented municipality and its key (AGS: NRW, Regierungsbezirk
// Arnsberg, Kreis Unna; no real municipality has this key).
inline constexpr char kMunicipalityName[] = "Lindenbrück";
inline constexpr char kMunicipalityCode[] = "05978044";

struct Agency {
  const char* id;  // also the CN of its dev client certificate
  const char* display_name;
  type::v1::LegalDomain domain;
  const char* municipality_code;  // empty for federal agencies
};

// The agencies of the demo municipality, in the order tools/dev-pki.sh
// lists them: the municipal integration management (the case owner), the
// immigration office, Jobcenter, employment agency, the BAMF regional
// office, three course providers and two welfare organisations.
const std::vector<Agency>& Agencies();

// Agency ids by role, for the plan and the loader.
inline constexpr char kKim[] = "kim-lindenbrueck";
inline constexpr char kImmigrationOffice[] = "abh-lindenbrueck";
inline constexpr char kJobcenter[] = "jobcenter-lindenbrueck";
inline constexpr char kEmploymentAgency[] = "aa-lindenbrueck";
inline constexpr char kBamf[] = "bamf-dortmund";

struct PlanOptions {
  uint64_t seed = 17;
  int persons = 2400;        // registered newcomers
  int cases = 600;           // of them with a case (the first `cases`)
  int history_days = 200;    // how far back the history reaches
  int near_duplicates = 24;  // extra registrations spelled differently
};

// One step of a service chain. Times in minutes after the history start;
// -1 means it never happens (a decline ends the step).
struct StepPlan {
  cases::v1::StepKind kind = cases::v1::STEP_KIND_UNSPECIFIED;
  std::string agency;  // receiving agency id
  std::string description;
  int64_t refer = -1;
  int64_t accept = -1;
  int64_t decline = -1;
  int64_t start = -1;
  int64_t done = -1;
  cases::v1::StepOutcome outcome = cases::v1::STEP_OUTCOME_ACHIEVED;
  int due_day = -1;  // due date, days after the history start; -1 none
};

struct CoursePlan {
  int index = 0;
  std::string provider;  // agency id
  std::string title;
  courses::v1::CourseKind kind = courses::v1::COURSE_KIND_INTEGRATION_GENERAL;
  int64_t publish = 0;  // minutes
  int start_day = 0;    // first lesson, days after the history start
  int capacity = 0;
  int booked = 0;      // seats the plan books (<= capacity)
  int waitlisted = 0;  // waitlist entries the plan adds
};

struct OfferPlan {
  int index = 0;
  std::string publisher;  // agency id
  std::string title;
  std::string employer;
  std::string occupation_code;  // KldB 2010, five digits
  type::v1::CefrLevel level = type::v1::CEFR_LEVEL_A2;
  int positions = 1;
  int64_t publish = 0;
  int start_day = 0;
};

struct PlacementPlan {
  int offer = 0;  // index into Plan::offers
  int64_t propose = -1;
  int64_t applied = -1;
  int64_t interview = -1;
  int64_t hired = -1;
  int64_t rejected = -1;   // by the employer
  int64_t withdrawn = -1;  // by the candidate
};

struct PersonPlan {
  int index = 0;
  std::string key;  // "lb-00042": prefix of every request id for the person
  std::string given_names;
  std::string family_names;
  int birth_year = 0, birth_month = 0, birth_day = 0;  // 0: unknown part
  std::string nationality;                             // ISO 3166-1 alpha-2
  int64_t registered = 0;                              // minutes
  // Index of the person this one is a second registration of (a
  // transliteration variant), or -1.
  int duplicate_of = -1;

  bool has_case = false;
  int64_t case_opened = -1;
  int64_t case_closed = -1;
  cases::v1::CaseClosingReason closing_reason =
      cases::v1::CASE_CLOSING_REASON_UNSPECIFIED;
  std::vector<StepPlan> steps;

  // Residence status recorded by the immigration office (when its step
  // starts); permits work when true.
  int64_t residence = -1;
  bool work_permitted = false;
  // Admission by BAMF (when its step starts) and the course booking by the
  // provider (when its step is accepted): a seat in `course`, or a place on
  // its waitlist.
  int64_t admission = -1;
  int course = -1;
  bool waitlisted = false;
  int64_t booking = -1;
  // The Jobcenter's candidate profile (when its step starts) and the
  // placements proposed to offers.
  int64_t profile = -1;
  type::v1::CefrLevel language = type::v1::CEFR_LEVEL_A1;
  std::vector<PlacementPlan> placements;
};

struct Plan {
  PlanOptions options;
  std::vector<PersonPlan> persons;
  std::vector<CoursePlan> courses;
  std::vector<OfferPlan> offers;
};

// The plan for `options`. Deterministic.
Plan MakePlan(const PlanOptions& options);

// Index of the person the README's guided tour follows: a Syrian woman
// whose chain shows every kind of step state.
int TourPerson(const Plan& plan);

}  // namespace lotse::demo

#endif  // LOTSE_TOOLS_DEMO_PLAN_H_
