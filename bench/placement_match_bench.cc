// In-memory matching latency of the placement service:
// MatchIndex::RankOffers for one candidate against 100 000 open offers and
// MatchIndex::RankCandidates for one offer against 100 000 candidates,
// single-threaded, in this process, without RPC or database. The
// end-to-end figure over RPC (target p99 <= 10 ms) is lotse_placement_bench;
// this one shows how much of that budget the ranking itself takes.
//
// A baseline is measured in the same run: one pass that reads one field
// of 100 000 structs of the size of a compact offer, and one copy of them.
// A ranking can hardly be faster than the pass; the ratio is what to quote.
//
//   lotse_placement_match_bench                         (100 000 each)
//   lotse_placement_match_bench --offers=20000 --queries=200
//
// Synthetic data (deterministic from --seed): ~1 300 KldB codes in 37 real
// main groups, popularity skewed (a few occupations have many offers, as
// in warehouse, care and cleaning); ~60 postal codes of the geo table
// (Köln/Bonn/Ruhr and large cities) with matching municipality codes;
// a skill vocabulary of 500, skewed; levels A1..C1 (20 % of offers require
// none); 5 % of offers require recognition. Candidates: 60 % permitted,
// 20 % needs approval, 10 % unknown, 10 % not permitted; half with a
// certified level, 1-3 experiences near popular codes, 3-12 skills, 0-3
// preferred places (postal code with 10-50 km, or a municipality).
//
// Output: plain lines, "name [wall|cpu]: p50=.. p90=.. p99=.. max=..
// (n=..)" in microseconds, and the ratios to the baseline. [cpu] is the
// thread's CPU time, which other load on the machine hardly changes; on a
// shared machine quote it, with the load average, next to [wall].
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/geo/geo.h"
#include "services/placement/domain/facts.h"
#include "services/placement/domain/match_index.h"
#include "services/placement/domain/matching.h"

ABSL_FLAG(int, offers, 100000, "open offers in the index");
ABSL_FLAG(int, candidates, 100000, "active candidates in the index");
ABSL_FLAG(int, queries, 500, "rankings measured per mode");
ABSL_FLAG(int, limit, 1000, "RankOptions.limit (best results kept)");
ABSL_FLAG(int, seed, 1, "seed of the synthetic data and queries");

namespace lotse::placement {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kToday = 20513;  // 2026-03-01

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start)
      .count();
}

// CPU time of this thread, in microseconds: unlike wall time it does not
// grow when other processes take the cores, so it is the figure to compare
// between runs on a shared machine.
double ThreadCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 +
         static_cast<double>(ts.tv_nsec) / 1e3;
}

// Wall and CPU time of each measured call.
struct Samples {
  std::vector<double> wall, cpu;
};

struct Percentiles {
  double p50, p90, p99, max;
};

Percentiles Summarise(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) {
    const size_t i = std::min(
        micros.size() - 1,
        static_cast<size_t>(std::ceil(q * static_cast<double>(micros.size()))) -
            1);
    return micros[i];
  };
  return {at(0.50), at(0.90), at(0.99), micros.back()};
}

void Print(const std::string& name, const std::vector<double>& micros) {
  const Percentiles p = Summarise(micros);
  std::printf("%s: p50=%.0f p90=%.0f p99=%.0f max=%.0f us (n=%zu)\n",
              name.c_str(), p.p50, p.p90, p.p99, p.max, micros.size());
}

void Print(const std::string& name, const Samples& samples) {
  Print(name + " [wall]", samples.wall);
  Print(name + " [cpu]", samples.cpu);
}

// Skewed choice of 0..n-1: index ~ n * u^skew, so low indexes are common.
int Skewed(std::mt19937& rng, int n, double skew) {
  const double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return std::min(n - 1, static_cast<int>(n * std::pow(u, skew)));
}

struct World {
  std::vector<std::string> codes;         // KldB, popular first
  std::vector<std::string> postal_codes;  // all in the geo table
  std::vector<std::string> skills;        // popular first
};

World MakeWorld(std::mt19937& rng) {
  World w;
  // Main groups of KldB 2010 that job centres see most.
  static const int kMainGroups[] = {11, 12, 21, 22, 24, 25, 26, 27, 28, 29,
                                    31, 32, 33, 34, 41, 43, 51, 52, 53, 54,
                                    61, 62, 63, 71, 72, 73, 81, 82, 83, 84,
                                    91, 92, 93, 94, 42, 23, 14};
  std::vector<int> seen;
  while (w.codes.size() < 1300) {
    const int main_group = kMainGroups[rng() % std::size(kMainGroups)];
    const int code = main_group * 1000 + static_cast<int>(rng() % 9 + 1) * 100 +
                     static_cast<int>(rng() % 10) * 10 +
                     static_cast<int>(rng() % 4 + 1);
    if (std::find(seen.begin(), seen.end(), code) != seen.end()) continue;
    seen.push_back(code);
    w.codes.push_back(absl::StrFormat("%05d", code));
  }
  static const char* const kAreas[] = {
      "506", "507", "508", "509", "510", "511", "501", "502", "503", "504",
      "514", "513", "515", "516", "517", "532", "531", "533", "535", "537",
      "538", "539", "520", "522", "523", "524", "525", "402", "404", "405",
      "406", "407", "408", "410", "414", "415", "477", "421", "426", "428",
      "450", "451", "452", "454", "460", "470", "471", "448", "441", "443",
      "458", "581", "481", "336", "101", "200", "603", "703", "801", "904"};
  for (const char* area : kAreas) {
    std::string code = absl::StrCat(area, "67");
    if (geo::PostalCodeCentre(code)) w.postal_codes.push_back(code);
  }
  for (int i = 0; i < 500; ++i) w.skills.push_back(absl::StrCat("skill ", i));
  return w;
}

// A random id as the service makes them: 26 characters of [a-z2-7].
std::string RandomId(std::mt19937& rng) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string id(26, ' ');
  for (char& c : id) c = kAlphabet[rng() % 32];
  return id;
}

std::string MunicipalityOf(const std::string& postal_code) {
  return absl::StrCat("05", postal_code.substr(0, 3), "000");
}

OfferFacts MakeOffer(std::mt19937& rng, const World& w, int i) {
  auto pick = [&rng](int n) { return static_cast<int>(rng() % n); };
  OfferFacts o;
  o.offer_id = RandomId(rng);
  o.kind = pick(5) == 0 ? v1::OFFER_KIND_APPRENTICESHIP : v1::OFFER_KIND_JOB;
  o.occupation_code = w.codes[Skewed(rng, w.codes.size(), 2.5)];
  o.postal_code = w.postal_codes[pick(w.postal_codes.size())];
  o.place_centre = geo::PostalCodeCentre(o.postal_code);
  o.municipality_code = MunicipalityOf(o.postal_code);
  static const HoursFacts kHours[] = {{38, 40, 0}, {20, 30, 0}, {10, 20, 6}};
  o.hours = kHours[pick(3)];
  if (pick(10) == 0) o.hours.day_periods = 1 << type::v1::DAY_PERIOD_NIGHT;
  o.start_day = kToday + pick(120);
  o.required_language_level =
      pick(5) == 0 ? type::v1::CEFR_LEVEL_UNSPECIFIED
                   : static_cast<type::v1::CefrLevel>(1 + pick(5));
  for (int k = pick(7); k > 0; --k) {
    o.required_skills.push_back(w.skills[Skewed(rng, w.skills.size(), 2.0)]);
  }
  if (pick(10) < 3) {
    std::string qualification = o.occupation_code;
    qualification[4] = static_cast<char>('1' + pick(4));
    o.required_qualification_codes.push_back(qualification);
  }
  o.recognition_required = pick(20) == 0;
  o.positions_open = 1 + pick(3);
  return o;
}

CandidateFacts MakeCandidate(std::mt19937& rng, const World& w, int i) {
  auto pick = [&rng](int n) { return static_cast<int>(rng() % n); };
  CandidateFacts c;
  c.person_id = RandomId(rng);
  if (pick(4) == 0) {
    c.wanted_kinds = {pick(2) ? v1::OFFER_KIND_JOB
                              : v1::OFFER_KIND_APPRENTICESHIP};
  }
  const int permission = pick(10);
  c.work_permission =
      permission < 6   ? type::v1::WORK_PERMISSION_PERMITTED
      : permission < 8 ? type::v1::WORK_PERMISSION_NEEDS_APPROVAL
      : permission < 9 ? type::v1::WORK_PERMISSION_UNSPECIFIED
                       : type::v1::WORK_PERMISSION_NOT_PERMITTED;
  if (pick(3) == 0) c.work_permission_valid_until_day = kToday + pick(700);
  if (pick(2)) {
    c.certified_language_level = static_cast<type::v1::CefrLevel>(1 + pick(5));
  }
  if (pick(5) < 4) {
    c.stated_language_level = static_cast<type::v1::CefrLevel>(1 + pick(5));
  }
  for (int k = 1 + pick(3); k > 0; --k) {
    c.experience.push_back(
        {w.codes[Skewed(rng, w.codes.size(), 2.5)], pick(120)});
  }
  for (int k = 3 + pick(10); k > 0; --k) {
    c.skills.push_back({w.skills[Skewed(rng, w.skills.size(), 2.0)],
                        static_cast<v1::SkillLevel>(pick(4))});
  }
  for (int k = pick(3); k > 0; --k) {
    c.qualifications.push_back(
        {w.codes[Skewed(rng, w.codes.size(), 2.5)],
         static_cast<v1::RecognitionState>(1 + pick(6))});
  }
  for (int k = pick(4); k > 0; --k) {
    PlaceFacts place;
    const std::string& postal = w.postal_codes[pick(w.postal_codes.size())];
    if (pick(3) == 0) {
      place.municipality_code = MunicipalityOf(postal);
    } else {
      place.postal_code = postal;
      place.centre = geo::PostalCodeCentre(postal);
      place.max_distance_km = 10 + pick(41);
    }
    c.preferred_places.push_back(place);
  }
  if (pick(3)) {
    static const HoursFacts kWanted[] = {{30, 40, 0}, {15, 30, 0}, {0, 20, 2}};
    c.preferred_hours = kWanted[pick(3)];
  }
  if (pick(2)) c.available_from_day = kToday + pick(90);
  return c;
}

// The baseline: a struct of the size of the index's compact offer.
struct Baseline {
  int32_t value;
  char rest[92];
};

void Run() {
  const int offer_count = absl::GetFlag(FLAGS_offers);
  const int candidate_count = absl::GetFlag(FLAGS_candidates);
  const int queries = std::max(1, absl::GetFlag(FLAGS_queries));
  std::mt19937 rng(absl::GetFlag(FLAGS_seed));
  const World world = MakeWorld(rng);
  std::printf("world: %zu occupation codes, %zu postal codes, %zu skills\n",
              world.codes.size(), world.postal_codes.size(),
              world.skills.size());

  std::vector<OfferFacts> offers;
  std::vector<CandidateFacts> candidates;
  for (int i = 0; i < offer_count; ++i) {
    offers.push_back(MakeOffer(rng, world, i));
  }
  for (int i = 0; i < candidate_count; ++i) {
    candidates.push_back(MakeCandidate(rng, world, i));
  }

  MatchIndex index;
  Clock::time_point start = Clock::now();
  for (const OfferFacts& o : offers) index.UpsertOffer(o);
  const double load_offers = MicrosSince(start);
  start = Clock::now();
  for (const CandidateFacts& c : candidates) index.UpsertCandidate(c);
  const double load_candidates = MicrosSince(start);
  std::printf("load: %zu offers in %.0f ms, %zu candidates in %.0f ms\n",
              index.offer_count(), load_offers / 1000, index.candidate_count(),
              load_candidates / 1000);

  // Baseline: read one field of each struct, and copy them all. Repeated
  // so that the figure is the steady one, like the rankings'.
  std::vector<Baseline> structs(std::max(offer_count, candidate_count));
  for (size_t i = 0; i < structs.size(); ++i) {
    structs[i].value = static_cast<int32_t>(i);
  }
  Samples scan_micros, copy_micros;
  int64_t checksum = 0;
  for (int q = 0; q < 200; ++q) {
    start = Clock::now();
    double cpu = ThreadCpuMicros();
    int64_t sum = 0;
    for (const Baseline& b : structs) sum += b.value;
    scan_micros.wall.push_back(MicrosSince(start));
    scan_micros.cpu.push_back(ThreadCpuMicros() - cpu);
    checksum += sum;
    start = Clock::now();
    cpu = ThreadCpuMicros();
    std::vector<Baseline> copy = structs;
    copy_micros.wall.push_back(MicrosSince(start));
    copy_micros.cpu.push_back(ThreadCpuMicros() - cpu);
    checksum += copy[q].value;
  }
  const double scan_p50 = Summarise(scan_micros.cpu).p50;
  Print(absl::StrFormat("baseline scan of %zu structs of %zu bytes",
                        structs.size(), sizeof(Baseline)),
        scan_micros);
  Print("baseline copy of them", copy_micros);

  RankOptions options;
  options.today = kToday;
  options.limit = absl::GetFlag(FLAGS_limit);

  // Query candidates: not NOT_PERMITTED ones, whose ranking is empty at
  // once without include_excluded (that case is measured separately).
  std::vector<const CandidateFacts*> askers;
  for (const CandidateFacts& c : candidates) {
    if (c.work_permission != type::v1::WORK_PERMISSION_NOT_PERMITTED) {
      askers.push_back(&c);
    }
  }
  auto measure_offers = [&](const std::string& name, const RankOptions& o) {
    Samples micros;
    size_t results = 0;
    for (int q = 0; q < queries; ++q) {
      const CandidateFacts& c = *askers[rng() % askers.size()];
      start = Clock::now();
      const double cpu = ThreadCpuMicros();
      const std::vector<RankedOffer> ranked = index.RankOffers(c, o);
      micros.wall.push_back(MicrosSince(start));
      micros.cpu.push_back(ThreadCpuMicros() - cpu);
      results += ranked.size();
    }
    Print(name, micros);
    std::printf("  mean results %.0f; cpu p50 / baseline scan cpu p50 = %.1f\n",
                static_cast<double>(results) / queries,
                Summarise(micros.cpu).p50 / scan_p50);
  };
  auto measure_candidates = [&](const std::string& name, const RankOptions& o) {
    Samples micros;
    size_t results = 0;
    for (int q = 0; q < queries; ++q) {
      const OfferFacts& offer = offers[rng() % offers.size()];
      start = Clock::now();
      const double cpu = ThreadCpuMicros();
      const std::vector<RankedCandidate> ranked =
          index.RankCandidates(offer, o, nullptr);
      micros.wall.push_back(MicrosSince(start));
      micros.cpu.push_back(ThreadCpuMicros() - cpu);
      results += ranked.size();
    }
    Print(name, micros);
    std::printf("  mean results %.0f; cpu p50 / baseline scan cpu p50 = %.1f\n",
                static_cast<double>(results) / queries,
                Summarise(micros.cpu).p50 / scan_p50);
  };

  // Warm-up, not measured.
  for (int q = 0; q < 20; ++q) {
    index.RankOffers(*askers[rng() % askers.size()], options);
  }
  measure_offers(absl::StrFormat("RankOffers, %d offers, limit %zu",
                                 offer_count, options.limit),
                 options);
  RankOptions small = options;
  small.limit = 100;
  measure_offers("RankOffers, limit 100", small);
  RankOptions everything = options;
  everything.include_excluded = true;
  measure_offers("RankOffers, include_excluded", everything);
  measure_candidates(absl::StrFormat("RankCandidates, %d candidates, limit %zu",
                                     candidate_count, options.limit),
                     options);
  measure_candidates("RankCandidates, include_excluded", everything);

  // What a page of MatchOffersForCandidate adds: Explain for 20 results.
  Samples explain_micros;
  for (int q = 0; q < queries; ++q) {
    const CandidateFacts& c = *askers[rng() % askers.size()];
    const std::vector<RankedOffer> ranked = index.RankOffers(c, small);
    start = Clock::now();
    const double cpu = ThreadCpuMicros();
    for (size_t k = 0; k < ranked.size() && k < 20; ++k) {
      const std::optional<OfferFacts> offer =
          index.GetOffer(ranked[k].offer_id);
      const MatchExplanation e = Explain(c, *offer, kToday);
      checksum += static_cast<int64_t>(e.factors.size());
    }
    explain_micros.wall.push_back(MicrosSince(start));
    explain_micros.cpu.push_back(ThreadCpuMicros() - cpu);
  }
  Print("GetOffer + Explain of 20 results", explain_micros);
  std::printf("(checksum %lld)\n", static_cast<long long>(checksum));
}

}  // namespace
}  // namespace lotse::placement

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  lotse::placement::Run();
  return 0;
}
