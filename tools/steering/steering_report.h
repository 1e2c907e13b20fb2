// The steering report: what a municipality's steering staff need to see
// where newcomers wait — waiting times from referral to start per step kind
// and receiving agency (median and 90th percentile, by month), the time
// from referral to the start of an integration course per provider, the
// seat use and waitlists of the courses in the municipality, and how the
// job placements proposed each month ended.
//
// Three parts, usable on their own:
//   CollectSteeringReport  reads the figures from running services over
//                          gRPC (aggregates only: the cases service's
//                          waiting-time statistics and the placement
//                          service's outcome statistics, small groups
//                          suppressed, and the course catalogue's seat
//                          counts; no personal data is read);
//   RenderSteeringHtml     one self-contained, printable HTML page with
//                          inline SVG charts (no scripts, fonts or style
//                          sheets from elsewhere);
//   RenderSteeringJson     the same figures as JSON, for scripts.
// The renderers are pure functions of a SteeringReport.
#ifndef LOTSE_TOOLS_STEERING_STEERING_REPORT_H_
#define LOTSE_TOOLS_STEERING_STEERING_REPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace lotse::steering {

// Waiting times of one (step kind, receiving agency) group in one month
// (steps referred in that month).
struct WaitingCell {
  std::string month;        // "2026-06"
  bool suppressed = false;  // group below the suppression threshold
  int referrals = 0;
  int started = 0;         // steps of them started so far
  double median_days = 0;  // referral to start; 0 when started == 0
  double p90_days = 0;
};

struct WaitingSeries {
  std::string step_kind;  // "INTEGRATION_COURSE"
  std::string agency;     // "agencies/vhs-lindenbrueck"
  int overdue_now = 0;    // open steps past their due date at report time
  std::vector<WaitingCell> months;  // one per report month, in order
};

// Seat use of one course (from the catalogue).
struct CourseUse {
  std::string course;  // "courses/…"
  std::string title;
  std::string provider;    // "agencies/…"
  std::string start_date;  // "2026-07-01"
  std::string state;       // "PLANNED", "RUNNING", …
  int capacity = 0;
  int booked = 0;
  int waitlist = 0;
};

// Outcomes of the placements proposed in one month (all agencies), as the
// placement service counts them now.
struct PlacementMonth {
  std::string month;
  bool suppressed = false;
  int proposed = 0, open = 0, hired = 0, rejected = 0, withdrawn = 0;
};

struct SteeringReport {
  std::string municipality_code;
  absl::CivilDay from, to;
  absl::Time generated;
  int suppression_threshold = 0;
  std::vector<std::string> months;         // "2026-01" … covering [from, to]
  std::vector<WaitingSeries> waiting;      // by step kind, then agency
  std::vector<CourseUse> courses;          // starting in [from, to]
  std::vector<PlacementMonth> placements;  // one per month
};

// Where and as whom to collect. The channels carry the caller's client
// certificate; a KOMMUNE agency of the municipality (or ADMINISTRATION)
// sees all rows, any other agency only rows about itself.
struct CollectOptions {
  std::shared_ptr<grpc::Channel> cases;
  std::shared_ptr<grpc::Channel> courses;
  std::shared_ptr<grpc::Channel> placement;
  std::string actor = "steering-report";
  std::string purpose = "strategic-steering";
  std::string municipality_code;                // AGS, eight digits
  absl::CivilDay from, to;                      // inclusive
  absl::Duration deadline = absl::Seconds(30);  // per call
};

// Reads the figures for [from, to]: per calendar month one waiting-time
// statistics call (grouped by step kind and agency) and one placement
// statistics call, and the course catalogue of the municipality.
// INVALID_ARGUMENT when `to` is before `from` or the period is longer than
// three years; otherwise the first failing call's status (with the service's
// message).
absl::StatusOr<SteeringReport> CollectSteeringReport(
    const CollectOptions& options);

// The report as one HTML page (UTF-8). Charts, each an <svg> with
// data-chart="<id>" and data-marks="<n>": per step kind a bar chart of
// median waiting days (one <rect class="bar"> per agency and month with
// started steps, a <line class="p90"> for its 90th percentile); the
// integration-course providers' waiting times as a line chart (one
// <circle class="point"> per provider and month with started steps); and
// the courses' seat use (one <rect class="bar"> per course, booked seats,
// and one <rect class="wait"> per course with a waitlist); and the
// placements by outcome (a stacked bar per month that is not suppressed,
// one <rect class="bar"> per outcome with a count above zero). Tables
// repeat every figure for printing and screen readers.
std::string RenderSteeringHtml(const SteeringReport& report);

// The report as one JSON object: municipality_code, from, to, generated,
// suppression_threshold, months, waiting[], courses[], placements[] with
// the fields of the structs above (snake_case).
std::string RenderSteeringJson(const SteeringReport& report);

// The number of marks RenderSteeringHtml draws in chart `chart_id`,
// computed from the report's figures (for tests that check the page).
int ExpectedMarks(const SteeringReport& report, const std::string& chart_id);

// The ids of the charts RenderSteeringHtml draws, in page order.
std::vector<std::string> ChartIds(const SteeringReport& report);

}  // namespace lotse::steering

#endif  // LOTSE_TOOLS_STEERING_STEERING_REPORT_H_
