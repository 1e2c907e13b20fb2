// The steering report's renderers on fixed figures: every chart draws one
// mark per figure it shows (and none for suppressed or empty groups), the
// page is self-contained, text is escaped, and the JSON carries the same
// figures.
#include "tools/steering/steering_report.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lotse::steering {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

// The part of `html` from the chart's <svg> to its </svg>.
std::string Chart(const std::string& html, const std::string& id) {
  const size_t start = html.find(absl::StrCat("data-chart=\"", id, "\""));
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</svg>", start) - start);
}

WaitingCell Cell(const char* month, int referrals, int started, double median,
                 double p90, bool suppressed = false) {
  WaitingCell c;
  c.month = month;
  c.referrals = referrals;
  c.started = started;
  c.median_days = median;
  c.p90_days = p90;
  c.suppressed = suppressed;
  return c;
}

SteeringReport Fixed() {
  SteeringReport r;
  r.municipality_code = "05978044";
  r.from = absl::CivilDay(2026, 5, 1);
  r.to = absl::CivilDay(2026, 7, 31);
  r.generated = absl::FromUnixSeconds(1785000000);
  r.suppression_threshold = 5;
  r.months = {"2026-05", "2026-06", "2026-07"};
  WaitingSeries abh{"RESIDENCE_PROCEDURE", "agencies/abh-lindenbrueck", 3, {}};
  abh.months = {Cell("2026-05", 20, 18, 12.5, 30),
                Cell("2026-06", 22, 10, 9, 25),
                Cell("2026-07", 25, 0, 0, 0)};  // nothing started yet
  WaitingSeries vhs{"INTEGRATION_COURSE", "agencies/vhs-lindenbrueck", 0, {}};
  vhs.months = {Cell("2026-05", 9, 9, 40, 70),
                Cell("2026-06", 0, 0, 0, 0, true),
                Cell("2026-07", 7, 2, 35, 60)};
  WaitingSeries bamf{"INTEGRATION_COURSE", "agencies/bamf-dortmund", 1, {}};
  bamf.months = {Cell("2026-05", 12, 12, 8, 14), Cell("2026-06", 11, 11, 9, 15),
                 Cell("2026-07", 10, 4, 7, 12)};
  r.waiting = {abh, vhs, bamf};
  CourseUse full{"courses/a",
                 "Integrationskurs <VHS> & Co",
                 "agencies/vhs-lindenbrueck",
                 "2026-06-01",
                 "RUNNING",
                 20,
                 20,
                 4};
  CourseUse open{"courses/b",
                 "Integrationskurs 2",
                 "agencies/vhs-lindenbrueck",
                 "2026-07-15",
                 "PLANNED",
                 18,
                 11,
                 0};
  r.courses = {full, open};
  PlacementMonth may{"2026-05", false, 12, 3, 5, 4, 0};
  PlacementMonth june{"2026-06", true, 0, 0, 0, 0, 0};
  PlacementMonth july{"2026-07", false, 6, 6, 0, 0, 0};
  r.placements = {may, june, july};
  return r;
}

TEST(SteeringReportTest, ChartsDrawOneMarkPerShownFigure) {
  const SteeringReport r = Fixed();
  const std::string html = RenderSteeringHtml(r);
  const std::vector<std::string> ids = ChartIds(r);
  ASSERT_EQ(ids,
            (std::vector<std::string>{"waiting-RESIDENCE_PROCEDURE",
                                      "waiting-INTEGRATION_COURSE",
                                      "course-start", "seats", "placements"}));
  // Residence: two months with started steps; the third has none.
  EXPECT_EQ(ExpectedMarks(r, ids[0]), 2);
  // Integration course: vhs 2 (June suppressed) + BAMF 3.
  EXPECT_EQ(ExpectedMarks(r, ids[1]), 5);
  // Course start: only the provider (BAMF offers no course).
  EXPECT_EQ(ExpectedMarks(r, "course-start"), 2);
  // Seats: one bar per course and one waitlist bar.
  EXPECT_EQ(ExpectedMarks(r, "seats"), 3);
  // Placements: May hired/open/rejected (no withdrawn), June suppressed,
  // July open only.
  EXPECT_EQ(ExpectedMarks(r, "placements"), 4);
  for (const std::string& id : ids) {
    const std::string chart = Chart(html, id);
    ASSERT_FALSE(chart.empty()) << id;
    const int marks = Count(chart, "class=\"bar\"") +
                      Count(chart, "class=\"wait\"") +
                      Count(chart, "class=\"point\"");
    EXPECT_EQ(marks, ExpectedMarks(r, id)) << id;
    EXPECT_NE(chart.find(absl::StrCat("data-marks=\"", marks, "\"")),
              std::string::npos)
        << id;
  }
  EXPECT_EQ(Count(Chart(html, ids[1]), "class=\"p90\""), 5);
}

TEST(SteeringReportTest, PageIsSelfContainedAndEscaped) {
  const std::string html = RenderSteeringHtml(Fixed());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // The only URL is the SVG namespace name, which is never fetched.
  EXPECT_EQ(Count(html, "http"), Count(html, "http://www.w3.org/2000/svg"));
  EXPECT_NE(html.find("Integrationskurs &lt;VHS&gt; &amp; Co"),
            std::string::npos);
  EXPECT_EQ(html.find("<VHS>"), std::string::npos);
  EXPECT_NE(html.find("@media print"), std::string::npos);
  EXPECT_NE(html.find("05978044"), std::string::npos);
}

TEST(SteeringReportTest, JsonCarriesTheFigures) {
  const std::string json = RenderSteeringJson(Fixed());
  EXPECT_NE(json.find("\"municipality_code\":\"05978044\""), std::string::npos);
  EXPECT_NE(json.find("\"from\":\"2026-05-01\",\"to\":\"2026-07-31\""),
            std::string::npos);
  EXPECT_NE(json.find("\"months\":[\"2026-05\",\"2026-06\",\"2026-07\"]"),
            std::string::npos);
  EXPECT_NE(json.find("{\"month\":\"2026-05\",\"suppressed\":false,"
                      "\"referrals\":20,\"started\":18,\"median_days\":12.5,"
                      "\"p90_days\":30.0}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"suppressed\":true"), std::string::npos);
  EXPECT_NE(json.find("\"title\":\"Integrationskurs <VHS> & Co\""),
            std::string::npos);
  EXPECT_NE(json.find("\"capacity\":20,\"booked\":20,\"waitlist\":4"),
            std::string::npos);
  EXPECT_EQ(Count(json, "\"step_kind\""), 3);
  EXPECT_NE(json.find("{\"month\":\"2026-05\",\"suppressed\":false,"
                      "\"proposed\":12,\"open\":3,\"hired\":5,"
                      "\"rejected\":4,\"withdrawn\":0}"),
            std::string::npos)
      << json;
}

TEST(SteeringReportTest, EmptyReportStillRenders) {
  SteeringReport r;
  r.municipality_code = "05978044";
  r.from = r.to = absl::CivilDay(2026, 1, 1);
  r.months = {"2026-01"};
  const std::string html = RenderSteeringHtml(r);
  EXPECT_EQ(ChartIds(r),
            (std::vector<std::string>{"course-start", "seats", "placements"}));
  EXPECT_NE(html.find("data-chart=\"seats\" data-marks=\"0\""),
            std::string::npos);
  EXPECT_NE(RenderSteeringJson(r).find(
                "\"waiting\":[],\"courses\":[],\"placements\":[]"),
            std::string::npos);
}

}  // namespace
}  // namespace lotse::steering
