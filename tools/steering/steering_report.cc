#include "tools/steering/steering_report.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

namespace lotse::steering {
namespace {

namespace cv1 = ::lotse::cases::v1;
namespace kv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;

std::string MonthOf(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d", day.year(), day.month());
}

std::string DayText(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

double Days(const google::protobuf::Duration& d) {
  return (static_cast<double>(d.seconds()) + d.nanos() / 1e9) / 86400.0;
}

lotse::type::v1::Date ToDate(absl::CivilDay d) {
  lotse::type::v1::Date out;
  out.set_year(static_cast<int>(d.year()));
  out.set_month(d.month());
  out.set_day(d.day());
  return out;
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  absl::Status status = FromGrpcStatus(s);
  return absl::Status(status.code(),
                      absl::StrCat(what, ": ", status.message()));
}

void Prepare(const CollectOptions& o, grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(o.deadline));
  context->AddMetadata(server::kActorMetadataKey, o.actor);
  context->AddMetadata(server::kPurposeMetadataKey, o.purpose);
}

// --- rendering helpers ---

std::string Html(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"},
                                    {"<", "&lt;"},
                                    {">", "&gt;"},
                                    {"\"", "&quot;"},
                                    {"'", "&#39;"}});
}

std::string Json(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

const char* const kPalette[] = {"#1f5f8b", "#d9822b", "#3c8d40", "#a23b72",
                                "#6b5b95", "#8c6d1f", "#2a9d8f", "#c44536",
                                "#4a4e69", "#7f8c8d"};
const char* Colour(size_t i) {
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

std::string KindLabel(const std::string& kind) {
  static const auto* labels = new std::map<std::string, std::string>{
      {"INTEGRATION_COURSE", "Integrationskurs"},
      {"VOCATIONAL_LANGUAGE_COURSE", "Berufssprachkurs"},
      {"JOB_PLACEMENT", "Arbeitsvermittlung"},
      {"APPRENTICESHIP_PLACEMENT", "Ausbildungsvermittlung"},
      {"QUALIFICATION_RECOGNITION", "Anerkennung"},
      {"COUNSELLING", "Beratung"},
      {"RESIDENCE_PROCEDURE", "Aufenthaltsrechtliches Verfahren"},
      {"HOUSING_SUPPORT", "Wohnen"},
      {"SCHOOL_ENROLMENT", "Schule"},
      {"YOUTH_WELFARE", "Jugendhilfe"},
      {"SOCIAL_BENEFITS", "Sozialleistungen"},
      {"HEALTH_SERVICE", "Gesundheit"},
      {"FAMILY_SUPPORT", "Familie"},
      {"OTHER", "Sonstiges"}};
  auto it = labels->find(kind);
  return it == labels->end() ? kind : it->second;
}

std::string AgencyLabel(const std::string& agency) {
  return absl::StartsWith(agency, "agencies/") ? agency.substr(9) : agency;
}

bool Drawn(const WaitingCell& c) { return !c.suppressed && c.started > 0; }

std::vector<std::string> Kinds(const SteeringReport& r) {
  std::vector<std::string> kinds;
  for (const WaitingSeries& s : r.waiting) {
    if (std::find(kinds.begin(), kinds.end(), s.step_kind) == kinds.end()) {
      kinds.push_back(s.step_kind);
    }
  }
  return kinds;
}

std::set<std::string> Providers(const SteeringReport& r) {
  std::set<std::string> providers;
  for (const CourseUse& c : r.courses) providers.insert(c.provider);
  return providers;
}

// Series of integration-course steps at course providers: referral to the
// first lesson.
std::vector<const WaitingSeries*> CourseSeries(const SteeringReport& r) {
  const std::set<std::string> providers = Providers(r);
  std::vector<const WaitingSeries*> out;
  for (const WaitingSeries& s : r.waiting) {
    if (s.step_kind == "INTEGRATION_COURSE" && providers.count(s.agency)) {
      out.push_back(&s);
    }
  }
  return out;
}

// A y axis from 0 to `top` days over `height` px, with gridlines.
std::string YAxis(double top, double x0, double y0, double width, double height,
                  const char* unit) {
  std::string out;
  for (int i = 0; i <= 4; ++i) {
    const double v = top * i / 4;
    const double y = y0 + height - height * i / 4;
    absl::StrAppend(&out, "<line class=\"grid\" x1=\"", Num(x0), "\" y1=\"",
                    Num(y), "\" x2=\"", Num(x0 + width), "\" y2=\"", Num(y),
                    "\"/><text class=\"tick\" x=\"", Num(x0 - 6), "\" y=\"",
                    Num(y + 4), "\" text-anchor=\"end\">", Num(v), "</text>");
  }
  absl::StrAppend(&out, "<text class=\"unit\" x=\"", Num(x0 - 40), "\" y=\"",
                  Num(y0 - 8), "\">", unit, "</text>");
  return out;
}

double NiceTop(double max) {
  if (max <= 0) return 10;
  for (double step : {10.0, 20.0, 40.0, 60.0, 100.0, 150.0, 200.0, 300.0, 400.0,
                      600.0, 1000.0}) {
    if (max <= step) return step;
  }
  return max;
}

std::string Legend(const std::vector<std::string>& names, double x, double y) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    const double ly = y + 18.0 * i;
    absl::StrAppend(&out, "<rect class=\"legend\" x=\"", Num(x), "\" y=\"",
                    Num(ly), "\" width=\"12\" height=\"12\" fill=\"", Colour(i),
                    "\"/><text x=\"", Num(x + 18), "\" y=\"", Num(ly + 10),
                    "\">", Html(names[i]), "</text>");
  }
  return out;
}

// Bar chart of median waiting days per month, one bar per agency.
std::string WaitingChart(const SteeringReport& r, const std::string& kind) {
  std::vector<const WaitingSeries*> series;
  for (const WaitingSeries& s : r.waiting) {
    if (s.step_kind == kind) series.push_back(&s);
  }
  double max = 0;
  for (const WaitingSeries* s : series) {
    for (const WaitingCell& c : s->months) {
      if (Drawn(c)) max = std::max(max, c.p90_days);
    }
  }
  const double top = NiceTop(max);
  const double x0 = 60, y0 = 20, height = 220;
  const double group = std::max(60.0, 18.0 * (series.size() + 1));
  const double width = group * std::max<size_t>(1, r.months.size());
  const double legend_x = x0 + width + 20;
  const double svg_width = legend_x + 220;
  const double svg_height =
      std::max(y0 + height + 40, y0 + 18.0 * series.size() + 10);
  const std::string id = absl::StrCat("waiting-", kind);
  std::string out = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"", id,
      "\" data-marks=\"", ExpectedMarks(r, id), "\" width=\"", Num(svg_width),
      "\" height=\"", Num(svg_height), "\" viewBox=\"0 0 ", Num(svg_width), " ",
      Num(svg_height), "\" role=\"img\" aria-label=\"", Html(KindLabel(kind)),
      ": Wartezeit bis Beginn\">");
  absl::StrAppend(&out, YAxis(top, x0, y0, width, height, "Tage"));
  const double bar = group / (series.size() + 1);
  for (size_t m = 0; m < r.months.size(); ++m) {
    const double gx = x0 + group * m;
    absl::StrAppend(&out, "<text class=\"tick\" x=\"", Num(gx + group / 2),
                    "\" y=\"", Num(y0 + height + 16),
                    "\" text-anchor=\"middle\">", r.months[m], "</text>");
    for (size_t k = 0; k < series.size(); ++k) {
      if (m >= series[k]->months.size()) continue;
      const WaitingCell& c = series[k]->months[m];
      if (!Drawn(c)) continue;
      const double x = gx + bar / 2 + bar * k;
      const double h = height * c.median_days / top;
      const double p90y = y0 + height - height * c.p90_days / top;
      absl::StrAppend(
          &out, "<rect class=\"bar\" x=\"", Num(x), "\" y=\"",
          Num(y0 + height - h), "\" width=\"", Num(bar * 0.9), "\" height=\"",
          Num(h), "\" fill=\"", Colour(k), "\"><title>",
          Html(AgencyLabel(series[k]->agency)), " ", r.months[m], ": Median ",
          Num(c.median_days), " Tage, 90 % ", Num(c.p90_days), " Tage (",
          c.started, " von ", c.referrals,
          " begonnen)</title></rect><line class=\"p90\" x1=\"", Num(x),
          "\" y1=\"", Num(p90y), "\" x2=\"", Num(x + bar * 0.9), "\" y2=\"",
          Num(p90y), "\" stroke=\"#222\" stroke-width=\"2\"/>");
    }
  }
  std::vector<std::string> names;
  for (const WaitingSeries* s : series) names.push_back(AgencyLabel(s->agency));
  absl::StrAppend(&out, Legend(names, legend_x, y0), "</svg>");
  return out;
}

// Line chart: referral to first lesson per provider and month.
std::string CourseChart(const SteeringReport& r) {
  const std::vector<const WaitingSeries*> series = CourseSeries(r);
  double max = 0;
  for (const WaitingSeries* s : series) {
    for (const WaitingCell& c : s->months) {
      if (Drawn(c)) max = std::max(max, c.median_days);
    }
  }
  const double top = NiceTop(max);
  const double x0 = 60, y0 = 20, height = 200;
  const double step = 70;
  const double width = step * std::max<size_t>(1, r.months.size());
  const double legend_x = x0 + width + 20;
  const double svg_width = legend_x + 240;
  const double svg_height = y0 + height + 40;
  std::string out = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"course-start\" "
      "data-marks=\"",
      ExpectedMarks(r, "course-start"), "\" width=\"", Num(svg_width),
      "\" height=\"", Num(svg_height), "\" viewBox=\"0 0 ", Num(svg_width), " ",
      Num(svg_height),
      "\" role=\"img\" aria-label=\"Zeit bis Kursbeginn je Kurstr&#228;ger\">");
  absl::StrAppend(&out, YAxis(top, x0, y0, width, height, "Tage"));
  for (size_t m = 0; m < r.months.size(); ++m) {
    absl::StrAppend(&out, "<text class=\"tick\" x=\"",
                    Num(x0 + step * m + step / 2), "\" y=\"",
                    Num(y0 + height + 16), "\" text-anchor=\"middle\">",
                    r.months[m], "</text>");
  }
  for (size_t k = 0; k < series.size(); ++k) {
    std::vector<std::string> points;
    std::string circles;
    for (size_t m = 0; m < series[k]->months.size() && m < r.months.size();
         ++m) {
      const WaitingCell& c = series[k]->months[m];
      if (!Drawn(c)) continue;
      const double x = x0 + step * m + step / 2;
      const double y = y0 + height - height * c.median_days / top;
      points.push_back(absl::StrCat(Num(x), ",", Num(y)));
      absl::StrAppend(&circles, "<circle class=\"point\" cx=\"", Num(x),
                      "\" cy=\"", Num(y), "\" r=\"4\" fill=\"", Colour(k),
                      "\"><title>", Html(AgencyLabel(series[k]->agency)), " ",
                      r.months[m], ": Median ", Num(c.median_days),
                      " Tage</title></circle>");
    }
    if (points.size() > 1) {
      absl::StrAppend(&out, "<polyline fill=\"none\" stroke=\"", Colour(k),
                      "\" stroke-width=\"2\" points=\"",
                      absl::StrJoin(points, " "), "\"/>");
    }
    absl::StrAppend(&out, circles);
  }
  std::vector<std::string> names;
  for (const WaitingSeries* s : series) names.push_back(AgencyLabel(s->agency));
  absl::StrAppend(&out, Legend(names, legend_x, y0), "</svg>");
  return out;
}

// Horizontal bars: booked seats of capacity per course, and the waitlist.
std::string SeatsChart(const SteeringReport& r) {
  const double x0 = 330, y0 = 10, row = 22, scale = 12;
  int max = 1;
  for (const CourseUse& c : r.courses) {
    max = std::max({max, c.capacity, c.booked + c.waitlist});
  }
  const double svg_width = x0 + scale * max + 140;
  const double svg_height = y0 + row * r.courses.size() + 30;
  std::string out = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"seats\" "
      "data-marks=\"",
      ExpectedMarks(r, "seats"), "\" width=\"", Num(svg_width), "\" height=\"",
      Num(svg_height), "\" viewBox=\"0 0 ", Num(svg_width), " ",
      Num(svg_height),
      "\" role=\"img\" aria-label=\"Platzbelegung und Wartelisten\">");
  for (size_t i = 0; i < r.courses.size(); ++i) {
    const CourseUse& c = r.courses[i];
    const double y = y0 + row * i;
    absl::StrAppend(
        &out, "<text x=\"", Num(x0 - 8), "\" y=\"", Num(y + 14),
        "\" text-anchor=\"end\">", Html(c.start_date), " ",
        Html(c.title.substr(0, 40)), "</text><rect class=\"capacity\" x=\"",
        Num(x0), "\" y=\"", Num(y + 3), "\" width=\"", Num(scale * c.capacity),
        "\" height=\"14\" fill=\"#e4e8ee\"/><rect class=\"bar\" x=\"", Num(x0),
        "\" y=\"", Num(y + 3), "\" width=\"", Num(scale * c.booked),
        "\" height=\"14\" fill=\"",
        c.booked >= c.capacity ? "#c44536" : "#1f5f8b", "\"><title>", c.booked,
        " von ", c.capacity, " Plätzen belegt</title></rect>");
    if (c.waitlist > 0) {
      absl::StrAppend(&out, "<rect class=\"wait\" x=\"",
                      Num(x0 + scale * c.capacity), "\" y=\"", Num(y + 6),
                      "\" width=\"", Num(scale * c.waitlist),
                      "\" height=\"8\" fill=\"#d9822b\"><title>", c.waitlist,
                      " auf der Warteliste</title></rect>");
    }
    absl::StrAppend(
        &out, "<text class=\"tick\" x=\"",
        Num(x0 + scale * std::max(c.capacity, c.booked + c.waitlist) + 6),
        "\" y=\"", Num(y + 14), "\">", c.booked, "/", c.capacity,
        c.waitlist > 0 ? absl::StrCat(" +", c.waitlist) : "", "</text>");
  }
  absl::StrAppend(&out, "</svg>");
  return out;
}

struct Outcome {
  const char* label;
  const char* colour;
  int PlacementMonth::*count;
};
const Outcome kOutcomes[] = {
    {"eingestellt", "#3c8d40", &PlacementMonth::hired},
    {"offen", "#1f5f8b", &PlacementMonth::open},
    {"abgelehnt", "#c44536", &PlacementMonth::rejected},
    {"zurückgezogen", "#8c8c8c", &PlacementMonth::withdrawn},
};

// Stacked bars: the placements proposed each month by outcome.
std::string PlacementsChart(const SteeringReport& r) {
  int max = 1;
  for (const PlacementMonth& p : r.placements) {
    if (!p.suppressed) max = std::max(max, p.proposed);
  }
  const double top = NiceTop(max);
  const double x0 = 60, y0 = 20, height = 200, step = 70;
  const double width = step * std::max<size_t>(1, r.months.size());
  const double legend_x = x0 + width + 20;
  const double svg_width = legend_x + 160;
  const double svg_height = y0 + height + 40;
  std::string out = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"placements\" "
      "data-marks=\"",
      ExpectedMarks(r, "placements"), "\" width=\"", Num(svg_width),
      "\" height=\"", Num(svg_height), "\" viewBox=\"0 0 ", Num(svg_width), " ",
      Num(svg_height),
      "\" role=\"img\" aria-label=\"Vermittlungen nach Ergebnis\">");
  absl::StrAppend(&out, YAxis(top, x0, y0, width, height, "Anzahl"));
  for (size_t m = 0; m < r.placements.size() && m < r.months.size(); ++m) {
    const PlacementMonth& p = r.placements[m];
    const double x = x0 + step * m + step * 0.2;
    absl::StrAppend(&out, "<text class=\"tick\" x=\"",
                    Num(x0 + step * m + step / 2), "\" y=\"",
                    Num(y0 + height + 16), "\" text-anchor=\"middle\">",
                    r.months[m], "</text>");
    if (p.suppressed) continue;
    double base = y0 + height;
    for (const Outcome& o : kOutcomes) {
      const int n = p.*(o.count);
      if (n <= 0) continue;
      const double h = height * n / top;
      base -= h;
      absl::StrAppend(&out, "<rect class=\"bar\" x=\"", Num(x), "\" y=\"",
                      Num(base), "\" width=\"", Num(step * 0.6), "\" height=\"",
                      Num(h), "\" fill=\"", o.colour, "\"><title>", r.months[m],
                      ": ", n, " ", o.label, "</title></rect>");
    }
  }
  std::vector<std::string> names;
  for (const Outcome& o : kOutcomes) names.push_back(o.label);
  absl::StrAppend(&out, "<g>");
  for (size_t i = 0; i < names.size(); ++i) {
    const double ly = y0 + 18.0 * i;
    absl::StrAppend(&out, "<rect class=\"legend\" x=\"", Num(legend_x),
                    "\" y=\"", Num(ly), "\" width=\"12\" height=\"12\" fill=\"",
                    kOutcomes[i].colour, "\"/><text x=\"", Num(legend_x + 18),
                    "\" y=\"", Num(ly + 10), "\">", Html(names[i]), "</text>");
  }
  absl::StrAppend(&out, "</g></svg>");
  return out;
}

constexpr char kStyle[] = R"(
body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
h3{font-size:1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
svg{display:block;margin:0.5em 0;font-size:11px}
svg .grid{stroke:#ddd}svg .tick{fill:#555}
.note{color:#555;font-size:0.9em}
.suppressed{color:#999}
@media print{body{margin:0}section{break-inside:avoid}}
)";

}  // namespace

std::vector<std::string> ChartIds(const SteeringReport& report) {
  std::vector<std::string> ids;
  for (const std::string& kind : Kinds(report)) {
    ids.push_back(absl::StrCat("waiting-", kind));
  }
  ids.push_back("course-start");
  ids.push_back("seats");
  ids.push_back("placements");
  return ids;
}

int ExpectedMarks(const SteeringReport& report, const std::string& chart_id) {
  int n = 0;
  if (absl::StartsWith(chart_id, "waiting-")) {
    const std::string kind = chart_id.substr(8);
    for (const WaitingSeries& s : report.waiting) {
      if (s.step_kind != kind) continue;
      for (size_t m = 0; m < s.months.size() && m < report.months.size(); ++m) {
        n += Drawn(s.months[m]) ? 1 : 0;
      }
    }
  } else if (chart_id == "course-start") {
    for (const WaitingSeries* s : CourseSeries(report)) {
      for (size_t m = 0; m < s->months.size() && m < report.months.size();
           ++m) {
        n += Drawn(s->months[m]) ? 1 : 0;
      }
    }
  } else if (chart_id == "seats") {
    for (const CourseUse& c : report.courses) n += 1 + (c.waitlist > 0);
  } else if (chart_id == "placements") {
    for (size_t m = 0; m < report.placements.size() && m < report.months.size();
         ++m) {
      if (report.placements[m].suppressed) continue;
      for (const Outcome& o : kOutcomes)
        n += report.placements[m].*(o.count) > 0;
    }
  }
  return n;
}

std::string RenderSteeringHtml(const SteeringReport& r) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
      "<title>Steuerungsbericht ",
      Html(r.municipality_code), " ", DayText(r.from), " bis ", DayText(r.to),
      "</title><style>", kStyle,
      "</style></head><body>\n<h1>Steuerungsbericht "
      "Integrationsmanagement</h1>\n<p>Gemeinde (AGS) <b>",
      Html(r.municipality_code), "</b>, Zeitraum ", DayText(r.from), " bis ",
      DayText(r.to), ", erstellt ",
      absl::FormatTime("%Y-%m-%d %H:%M UTC", r.generated, absl::UTCTimeZone()),
      ".</p>\n<p class=\"note\">Nur Summen und Verteilungen, keine "
      "personenbezogenen Daten. Gruppen mit weniger als ",
      r.suppression_threshold,
      " Überweisungen sind unterdrückt (–). Wartezeit: von der Überweisung "
      "bis zum Beginn der Leistung; Monat = Monat der Überweisung; Balken = "
      "Median, Strich = 90. Perzentil.</p>\n");

  absl::StrAppend(&out,
                  "<h2>Wartezeiten nach Art des Schritts und Stelle</h2>\n");
  for (const std::string& kind : Kinds(r)) {
    absl::StrAppend(&out, "<section><h3>", Html(KindLabel(kind)), "</h3>\n",
                    WaitingChart(r, kind),
                    "\n<table><tr><th>Stelle</th><th>Monat</th><th>"
                    "Überweisungen</th><th>begonnen</th><th>Median "
                    "(Tage)</th><th>90 % (Tage)</th><th>jetzt "
                    "überfällig</th></tr>\n");
    for (const WaitingSeries& s : r.waiting) {
      if (s.step_kind != kind) continue;
      for (size_t m = 0; m < s.months.size(); ++m) {
        const WaitingCell& c = s.months[m];
        absl::StrAppend(
            &out, "<tr", c.suppressed ? " class=\"suppressed\"" : "", "><td>",
            Html(AgencyLabel(s.agency)), "</td><td>", c.month, "</td>");
        if (c.suppressed) {
          absl::StrAppend(&out, "<td>–</td><td>–</td><td>–</td><td>–</td>");
        } else {
          absl::StrAppend(&out, "<td>", c.referrals, "</td><td>", c.started,
                          "</td><td>", c.started > 0 ? Num(c.median_days) : "–",
                          "</td><td>", c.started > 0 ? Num(c.p90_days) : "–",
                          "</td>");
        }
        absl::StrAppend(&out, "<td>", m == 0 ? absl::StrCat(s.overdue_now) : "",
                        "</td></tr>\n");
      }
    }
    absl::StrAppend(&out, "</table></section>\n");
  }

  absl::StrAppend(
      &out,
      "<h2>Zeit bis zum Kursbeginn</h2>\n<section><p class=\"note\">Von der "
      "Überweisung an den Kursträger bis zur ersten Unterrichtsstunde, "
      "Median je Kursträger und Monat der Überweisung.</p>\n",
      CourseChart(r), "</section>\n");

  absl::StrAppend(
      &out,
      "<h2>Platzbelegung und Wartelisten</h2>\n<section><p class=\"note\">"
      "Kurse mit Beginn im Zeitraum: belegte Plätze von der Kapazität "
      "(rot = voll), orange = Warteliste. Stand: Erstellung des Berichts."
      "</p>\n",
      SeatsChart(r),
      "\n<table><tr><th>Kurs</th><th>Träger</th><th>Beginn</th><th>Status"
      "</th><th>Plätze</th><th>belegt</th><th>Warteliste</th></tr>\n");
  for (const CourseUse& c : r.courses) {
    absl::StrAppend(&out, "<tr><td>", Html(c.title), "</td><td>",
                    Html(AgencyLabel(c.provider)), "</td><td>",
                    Html(c.start_date), "</td><td>", Html(c.state), "</td><td>",
                    c.capacity, "</td><td>", c.booked, "</td><td>", c.waitlist,
                    "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table></section>\n");

  absl::StrAppend(
      &out,
      "<h2>Vermittlungen in Arbeit nach Ergebnis</h2>\n<section><p "
      "class=\"note\">Vorschläge an Stellen in der Gemeinde, nach Monat des "
      "Vorschlags, mit ihrem heutigen Stand.</p>\n",
      PlacementsChart(r),
      "\n<table><tr><th>Monat</th><th>vorgeschlagen</th><th>offen</th><th>"
      "eingestellt</th><th>abgelehnt</th><th>zurückgezogen</th></tr>\n");
  for (const PlacementMonth& p : r.placements) {
    if (p.suppressed) {
      absl::StrAppend(&out, "<tr class=\"suppressed\"><td>", p.month,
                      "</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–"
                      "</td></tr>\n");
      continue;
    }
    absl::StrAppend(&out, "<tr><td>", p.month, "</td><td>", p.proposed,
                    "</td><td>", p.open, "</td><td>", p.hired, "</td><td>",
                    p.rejected, "</td><td>", p.withdrawn, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table></section>\n</body></html>\n");
  return out;
}

std::string RenderSteeringJson(const SteeringReport& r) {
  std::string out = absl::StrCat(
      "{\"municipality_code\":", Json(r.municipality_code),
      ",\"from\":", Json(DayText(r.from)), ",\"to\":", Json(DayText(r.to)),
      ",\"generated\":",
      Json(absl::FormatTime(absl::RFC3339_sec, r.generated,
                            absl::UTCTimeZone())),
      ",\"suppression_threshold\":", r.suppression_threshold, ",\"months\":[");
  for (size_t i = 0; i < r.months.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", Json(r.months[i]));
  }
  absl::StrAppend(&out, "],\"waiting\":[");
  for (size_t i = 0; i < r.waiting.size(); ++i) {
    const WaitingSeries& s = r.waiting[i];
    absl::StrAppend(&out, i ? "," : "", "{\"step_kind\":", Json(s.step_kind),
                    ",\"agency\":", Json(s.agency),
                    ",\"overdue_now\":", s.overdue_now, ",\"months\":[");
    for (size_t m = 0; m < s.months.size(); ++m) {
      const WaitingCell& c = s.months[m];
      absl::StrAppend(&out, m ? "," : "", "{\"month\":", Json(c.month),
                      ",\"suppressed\":", c.suppressed ? "true" : "false",
                      ",\"referrals\":", c.referrals,
                      ",\"started\":", c.started,
                      ",\"median_days\":", Num(c.median_days),
                      ",\"p90_days\":", Num(c.p90_days), "}");
    }
    absl::StrAppend(&out, "]}");
  }
  absl::StrAppend(&out, "],\"courses\":[");
  for (size_t i = 0; i < r.courses.size(); ++i) {
    const CourseUse& c = r.courses[i];
    absl::StrAppend(
        &out, i ? "," : "", "{\"course\":", Json(c.course),
        ",\"title\":", Json(c.title), ",\"provider\":", Json(c.provider),
        ",\"start_date\":", Json(c.start_date), ",\"state\":", Json(c.state),
        ",\"capacity\":", c.capacity, ",\"booked\":", c.booked,
        ",\"waitlist\":", c.waitlist, "}");
  }
  absl::StrAppend(&out, "],\"placements\":[");
  for (size_t i = 0; i < r.placements.size(); ++i) {
    const PlacementMonth& p = r.placements[i];
    absl::StrAppend(&out, i ? "," : "", "{\"month\":", Json(p.month),
                    ",\"suppressed\":", p.suppressed ? "true" : "false",
                    ",\"proposed\":", p.proposed, ",\"open\":", p.open,
                    ",\"hired\":", p.hired, ",\"rejected\":", p.rejected,
                    ",\"withdrawn\":", p.withdrawn, "}");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
}

absl::StatusOr<SteeringReport> CollectSteeringReport(const CollectOptions& o) {
  if (o.to < o.from) {
    return absl::InvalidArgumentError("--to must not be before --from");
  }
  if (o.to > absl::CivilDay(o.from.year() + 3, o.from.month(), o.from.day())) {
    return absl::InvalidArgumentError("the period may span at most 3 years");
  }
  SteeringReport r;
  r.municipality_code = o.municipality_code;
  r.from = o.from;
  r.to = o.to;
  r.generated = absl::Now();
  auto cases = cv1::CasesService::NewStub(o.cases);
  auto courses = kv1::CoursesService::NewStub(o.courses);
  auto placement = pv1::PlacementService::NewStub(o.placement);

  // Waiting times, one call per month of referral.
  std::map<std::pair<int, std::string>, WaitingSeries> series;
  const absl::CivilMonth first(o.from), last(o.to);
  for (absl::CivilMonth m = first; m <= last; ++m) {
    const std::string month = MonthOf(absl::CivilDay(m));
    r.months.push_back(month);
    cv1::GetWaitingTimeStatisticsRequest req;
    req.set_municipality_code(o.municipality_code);
    *req.mutable_period_start() = ToDate(std::max(absl::CivilDay(m), o.from));
    *req.mutable_period_end() =
        ToDate(std::min(absl::CivilDay(m + 1) - 1, o.to));
    req.add_groupings(cv1::WAITING_TIME_GROUPING_STEP_KIND_AND_AGENCY);
    cv1::WaitingTimeStatistics stats;
    grpc::ClientContext context;
    Prepare(o, &context);
    grpc::Status s = cases->GetWaitingTimeStatistics(&context, req, &stats);
    if (!s.ok()) return FromGrpc(s, "waiting-time statistics");
    r.suppression_threshold = stats.suppression_threshold();
    for (const cv1::WaitingTimeRow& row : stats.rows()) {
      if (row.step_kind() == cv1::STEP_KIND_UNSPECIFIED ||
          row.receiving_agency().empty()) {
        continue;
      }
      WaitingSeries& ws = series[{row.step_kind(), row.receiving_agency()}];
      ws.step_kind = std::string(
          absl::StripPrefix(cv1::StepKind_Name(row.step_kind()), "STEP_KIND_"));
      ws.agency = row.receiving_agency();
      ws.overdue_now = std::max(ws.overdue_now, row.overdue_count());
      WaitingCell cell;
      cell.month = month;
      cell.suppressed = row.suppressed();
      cell.referrals = row.referral_count();
      cell.started = row.referral_to_start().count();
      if (cell.started > 0) {
        cell.median_days = Days(row.referral_to_start().median());
        cell.p90_days = Days(row.referral_to_start().p90());
      }
      ws.months.resize(r.months.size() - 1);
      ws.months.push_back(cell);
    }

    pv1::GetPlacementStatisticsRequest preq;
    preq.set_municipality_code(o.municipality_code);
    *preq.mutable_period_start() = req.period_start();
    *preq.mutable_period_end() = req.period_end();
    pv1::PlacementStatistics pstats;
    grpc::ClientContext pcontext;
    Prepare(o, &pcontext);
    s = placement->GetPlacementStatistics(&pcontext, preq, &pstats);
    if (!s.ok()) return FromGrpc(s, "placement statistics");
    PlacementMonth pm;
    pm.month = month;
    pm.suppressed = true;
    for (const pv1::PlacementOutcomeRow& row : pstats.rows()) {
      if (!row.proposing_agency().empty()) continue;
      pm.suppressed = row.suppressed();
      pm.proposed = row.proposed_count();
      pm.open = row.open_count();
      pm.hired = row.hired_count();
      pm.rejected = row.rejected_count();
      pm.withdrawn = row.withdrawn_count();
    }
    r.placements.push_back(pm);
  }
  for (auto& [key, ws] : series) {
    // Months without a row for the group: no referrals.
    for (size_t m = 0; m < r.months.size(); ++m) {
      if (m >= ws.months.size()) ws.months.emplace_back();
      if (ws.months[m].month.empty()) ws.months[m].month = r.months[m];
    }
    r.waiting.push_back(std::move(ws));
  }

  // The course catalogue of the municipality.
  std::string token;
  do {
    kv1::ListCoursesRequest req;
    req.set_page_size(500);
    req.set_page_token(token);
    req.set_municipality_code(o.municipality_code);
    kv1::ListCoursesResponse resp;
    grpc::ClientContext context;
    Prepare(o, &context);
    grpc::Status s = courses->ListCourses(&context, req, &resp);
    if (!s.ok()) return FromGrpc(s, "course catalogue");
    for (const kv1::Course& c : resp.courses()) {
      const auto& d = c.schedule().start_date();
      const absl::CivilDay start(d.year(), d.month(), d.day());
      if (start < o.from || start > o.to) continue;
      if (c.state() == kv1::COURSE_STATE_CANCELLED) continue;
      CourseUse use;
      use.course = c.name();
      use.title = c.title();
      use.provider = c.provider_agency();
      use.start_date = DayText(start);
      use.state = std::string(
          absl::StripPrefix(kv1::CourseState_Name(c.state()), "COURSE_STATE_"));
      use.capacity = c.capacity();
      use.booked = c.booked_seats();
      use.waitlist = c.waitlist_length();
      r.courses.push_back(std::move(use));
    }
    token = resp.next_page_token();
  } while (!token.empty());
  std::stable_sort(r.courses.begin(), r.courses.end(),
                   [](const CourseUse& a, const CourseUse& b) {
                     return a.start_date < b.start_date;
                   });
  return r;
}

}  // namespace lotse::steering
