#include "tools/demo/plan.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

namespace lotse::demo {
namespace {

using cases::v1::StepKind;
namespace lt = ::lotse::type::v1;

constexpr int64_t kDay = 24 * 60;

// splitmix64: a tiny generator whose output is fixed by its definition, so
// plans are the same with every standard library (std:: distributions are
// not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  int Int(int lo, int hi) {
    return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  // True with probability `percent` / 100.
  bool Chance(int percent) { return Int(0, 99) < percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Next() % v.size()];
  }

 private:
  uint64_t state_;
};

// Spellings of one name as different papers and offices transliterate it.
using Variants = std::vector<std::string>;

struct Origin {
  const char* code;
  int weight;  // share of the demo's newcomers, percent
  std::vector<Variants> female, male, family;
  int year_only_percent;  // papers that state only the year of birth
};

const std::vector<Origin>& Origins() {
  static const auto* origins = new std::vector<Origin>{
      {"SY",
       30,
       {{"Fatima", "Fatma"},
        {"Aisha", "Aischa", "Aysha"},
        {"Amina"},
        {"Rasha"},
        {"Nour", "Noor", "Nur"},
        {"Hiba"},
        {"Rania"},
        {"Lina"},
        {"Yasmin", "Jasmin"}},
       {{"Mohammed", "Muhammad", "Mohamad"},
        {"Ahmad", "Ahmed"},
        {"Omar", "Umar"},
        {"Khaled", "Khalid", "Chalid"},
        {"Hussein", "Husain", "Hussain"},
        {"Yusuf", "Youssef", "Jusuf"},
        {"Ali"},
        {"Bilal"}},
       {{"Al-Hassan", "Alhasan", "El-Hassan"},
        {"Haddad"},
        {"Khalil", "Chalil"},
        {"Ibrahim"},
        {"Hamdan"},
        {"Al-Ahmad", "Alahmad"},
        {"Darwish", "Darwisch"},
        {"Al-Masri", "Almasri"},
        {"Saleh", "Salih"},
        {"Othman", "Osman", "Usman"},
        {"Nasser", "Nasir"},
        {"Kurdi"}},
       10},
      {"UA",
       22,
       {{"Olena", "Elena", "Olena"},
        {"Iryna", "Irina"},
        {"Tetiana", "Tatjana", "Tatiana"},
        {"Nataliia", "Natalia", "Natalija"},
        {"Yuliia", "Julija", "Yulia"},
        {"Viktoriia", "Viktoria"},
        {"Oksana"},
        {"Svitlana", "Swetlana"}},
       {{"Oleksandr", "Alexander", "Oleksander"},
        {"Andrii", "Andriy", "Andrej"},
        {"Serhii", "Sergej", "Serhiy"},
        {"Dmytro", "Dmitri", "Dmytro"},
        {"Mykola", "Nikolai"},
        {"Volodymyr", "Wolodymyr"}},
       {{"Kovalenko", "Kowalenko"},
        {"Shevchenko", "Schewtschenko"},
        {"Bondarenko"},
        {"Tkachenko", "Tkatschenko"},
        {"Kravchenko", "Krawtschenko"},
        {"Melnyk", "Melnik"},
        {"Boiko", "Boyko", "Bojko"},
        {"Koval", "Kowal"},
        {"Oliinyk", "Olijnyk"},
        {"Polishchuk", "Polischtschuk"}},
       0},
      {"AF",
       16,
       {{"Zahra", "Sahra"},
        {"Maryam", "Mariam"},
        {"Fereshta", "Freshta"},
        {"Shabnam", "Schabnam"},
        {"Parwin", "Parween"},
        {"Nilofar", "Nilufar"}},
       {{"Mohammad", "Mohammed", "Muhammad"},
        {"Ali Reza", "Alireza"},
        {"Hamid"},
        {"Farid"},
        {"Jawad", "Dschawad"},
        {"Mustafa"},
        {"Sayed", "Said"}},
       {{"Rahimi"},
        {"Ahmadi"},
        {"Hakimi"},
        {"Karimi"},
        {"Sultani"},
        {"Hussaini", "Husseini", "Hosseini"},
        {"Noori", "Nuri"},
        {"Amiri"},
        {"Mohammadi"},
        {"Haidari", "Haydari", "Heidari"}},
       45},
      {"TR",
       12,
       {{"Ayşe", "Ayse"}, {"Emine"}, {"Zeynep"}, {"Elif"}, {"Fatma"}},
       {{"Mehmet", "Mehmed"},
        {"Mustafa"},
        {"Hüseyin", "Huseyin", "Hüssein"},
        {"Murat"},
        {"Emre"}},
       {{"Yılmaz", "Yilmaz"},
        {"Kaya"},
        {"Demir"},
        {"Şahin", "Sahin"},
        {"Çelik", "Celik"},
        {"Öztürk", "Ozturk", "Oeztuerk"},
        {"Aydın", "Aydin"},
        {"Arslan"}},
       5},
      {"IQ",
       12,
       {{"Zainab", "Zaynab", "Sainab"},
        {"Noor", "Nour"},
        {"Huda"},
        {"Shaima", "Schaima"}},
       {{"Haider", "Haidar"},
        {"Mustafa"},
        {"Ali"},
        {"Karrar"},
        {"Ameer", "Amir"},
        {"Hassan", "Hasan"}},
       {{"Al-Jubouri", "Aljuburi", "Al-Dschuburi"},
        {"Al-Obaidi", "Alobaidi"},
        {"Kadhim", "Kazim"},
        {"Jassim", "Jasim", "Dschasim"},
        {"Abdullah", "Abdallah"},
        {"Mahmoud", "Mahmud"}},
       20},
      {"ER",
       8,
       {{"Semhar"}, {"Helen"}, {"Senait", "Senayt"}, {"Saba"}, {"Luwam"}},
       {{"Tesfay", "Tesfaye"},
        {"Yonas", "Yohannes", "Johannes"},
        {"Mebrahtu"},
        {"Filmon"},
        {"Merhawi"}},
       {{"Gebremedhin", "Ghebremedhin"},
        {"Tekle"},
        {"Haile"},
        {"Berhane"},
        {"Kidane"},
        {"Tesfamariam"},
        {"Ghebreyesus", "Gebreyesus"},
        {"Mehari"},
        {"Woldu"}},
       60},
  };
  return *origins;
}

struct CourseProvider {
  const char* id;
  const char* title;
  int interval_days;
  int capacity_lo, capacity_hi;
};

const std::vector<CourseProvider>& Providers() {
  static const auto* providers = new std::vector<CourseProvider>{
      {"vhs-lindenbrueck", "Integrationskurs VHS", 35, 18, 22},
      {"sprachinstitut-lindenbrueck",
       "Integrationskurs Sprachinstitut am Markt", 42, 14, 18},
      {"bildungswerk-lindenbrueck", "Integrationskurs Bildungswerk", 49, 12,
       16},
  };
  return *providers;
}

const std::vector<const char*>& Welfare() {
  static const auto* welfare =
      new std::vector<const char*>{"awo-lindenbrueck", "diakonie-lindenbrueck"};
  return *welfare;
}

// Minute of a working day (08:00..15:59) on `day`.
int64_t WorkTime(Rng& rng, int64_t day) {
  return day * kDay + rng.Int(8 * 60, 16 * 60 - 1);
}

// The day of minute `t`.
int64_t DayOf(int64_t t) { return t / kDay; }

// Waiting days from referral to acceptance and to start, per receiving
// agency: the differences the steering report is meant to show.
struct Waits {
  int accept_lo, accept_hi, start_lo, start_hi, done_lo, done_hi;
};
Waits WaitsOf(const std::string& agency) {
  if (agency == kImmigrationOffice) return {2, 20, 5, 45, 10, 40};
  if (agency == kBamf) return {3, 14, 5, 25, 1, 5};
  if (agency == kJobcenter) return {1, 10, 5, 30, 30, 120};
  if (agency == kEmploymentAgency) return {2, 14, 10, 40, 30, 120};
  if (agency == "awo-lindenbrueck") return {1, 5, 2, 12, 20, 60};
  if (agency == "diakonie-lindenbrueck") return {2, 9, 4, 20, 20, 60};
  return {1, 7, 14, 90, 150, 240};  // course providers
}

// Fills the times of `step` from its referral on: accepted (or declined),
// started and done after the agency's usual waits.
void PlayStep(Rng& rng, StepPlan& step, int decline_percent) {
  const Waits w = WaitsOf(step.agency);
  const int64_t refer_day = DayOf(step.refer);
  step.due_day = static_cast<int>(refer_day) + w.start_hi / 2 + 14;
  if (rng.Chance(decline_percent)) {
    step.decline = WorkTime(rng, refer_day + rng.Int(1, w.accept_hi));
    return;
  }
  // One in eight steps waits far longer than usual: the overdue ones.
  const int stretch = rng.Chance(12) ? 3 : 1;
  step.accept = WorkTime(rng, refer_day + rng.Int(w.accept_lo, w.accept_hi));
  const int64_t start_day =
      std::max<int64_t>(DayOf(step.accept),
                        refer_day + stretch * rng.Int(w.start_lo, w.start_hi));
  // Never before the acceptance, even on the same day.
  step.start = std::max(WorkTime(rng, start_day), step.accept + 30);
  step.done = WorkTime(rng, start_day + rng.Int(w.done_lo, w.done_hi));
  const int o = rng.Int(0, 9);
  step.outcome = o < 7   ? cases::v1::STEP_OUTCOME_ACHIEVED
                 : o < 9 ? cases::v1::STEP_OUTCOME_PARTIALLY_ACHIEVED
                         : cases::v1::STEP_OUTCOME_NOT_ACHIEVED;
}

StepPlan Refer(Rng& rng, StepKind kind, std::string agency,
               std::string description, int64_t day) {
  StepPlan step;
  step.kind = kind;
  step.agency = std::move(agency);
  step.description = std::move(description);
  step.refer = WorkTime(rng, day);
  return step;
}

void MakeCourses(Plan& plan) {
  Rng rng(plan.options.seed * 31 + 7);
  const int days = plan.options.history_days;
  for (const CourseProvider& p : Providers()) {
    int n = 0;
    for (int start = rng.Int(0, p.interval_days); start < days + 90;
         start += p.interval_days + rng.Int(-4, 4)) {
      CoursePlan c;
      c.index = static_cast<int>(plan.courses.size());
      c.provider = p.id;
      ++n;
      char title[160];
      std::snprintf(title, sizeof title, "%s %d (%s)", p.title, n,
                    n % 2 == 0 ? "Nachmittag" : "Vormittag");
      c.title = title;
      c.start_day = start;
      c.capacity = rng.Int(p.capacity_lo, p.capacity_hi);
      // Published six to eight weeks before the first lesson, but never
      // before the history starts.
      c.publish = WorkTime(rng, std::max(0, start - rng.Int(42, 56)));
      plan.courses.push_back(std::move(c));
    }
  }
}

void MakeOffers(Plan& plan) {
  struct Job {
    const char* title;
    const char* employer;
    const char* code;
    lt::CefrLevel level;
  };
  static const std::vector<Job> jobs = {
      {"Lagerhelfer (m/w/d)", "Logistikzentrum Lindenbrück GmbH", "51311",
       lt::CEFR_LEVEL_A1},
      {"Fachkraft Lagerlogistik (m/w/d)", "Logistikzentrum Lindenbrück GmbH",
       "51312", lt::CEFR_LEVEL_B1},
      {"Küchenhilfe (m/w/d)", "Gasthaus Zur Linde", "29301", lt::CEFR_LEVEL_A2},
      {"Reinigungskraft (m/w/d)", "Glanzwerk Gebäudedienste", "54101",
       lt::CEFR_LEVEL_A1},
      {"Pflegehelfer (m/w/d)", "Seniorenzentrum Am Auenpark", "81301",
       lt::CEFR_LEVEL_B1},
      {"Berufskraftfahrer (m/w/d)", "Spedition Westfalenring", "52122",
       lt::CEFR_LEVEL_A2},
      {"Produktionshelfer (m/w/d)", "Kunststofftechnik Lindenbrück", "22101",
       lt::CEFR_LEVEL_A2},
      {"Verkäufer (m/w/d)", "Markthalle Lindenbrück", "62102",
       lt::CEFR_LEVEL_B1},
      {"Elektroniker (m/w/d)", "Stadtwerke Lindenbrück", "26212",
       lt::CEFR_LEVEL_B1},
      {"Kassierer (m/w/d)", "Markthalle Lindenbrück", "62182",
       lt::CEFR_LEVEL_A2},
  };
  Rng rng(plan.options.seed * 131 + 3);
  for (int i = 0; i < 30; ++i) {
    const Job& job = jobs[i % jobs.size()];
    OfferPlan o;
    o.index = i;
    o.publisher = i % 3 == 0 ? kEmploymentAgency : kJobcenter;
    o.title = job.title;
    if (i >= static_cast<int>(jobs.size())) {
      o.title += i < 2 * static_cast<int>(jobs.size()) ? " – Frühschicht"
                                                       : " – Teilzeit";
    }
    o.employer = job.employer;
    o.occupation_code = job.code;
    o.level = job.level;
    o.positions = rng.Int(1, 4);
    o.publish = WorkTime(rng, rng.Int(0, plan.options.history_days - 20));
    o.start_day = static_cast<int>(DayOf(o.publish)) + rng.Int(30, 60);
    plan.offers.push_back(std::move(o));
  }
}

// The service chain of a person with a case: residence procedure at the
// immigration office, admission by BAMF and an integration course,
// migration counselling for some, job placement for those who may work.
void MakeChain(Rng& rng, PersonPlan& p, const PlanOptions& options) {
  const int64_t open_day = DayOf(p.case_opened);
  // Residence procedure: everyone.
  StepPlan residence =
      Refer(rng, cases::v1::STEP_KIND_RESIDENCE_PROCEDURE, kImmigrationOffice,
            "Aufenthaltstitel klären", open_day);
  PlayStep(rng, residence, 2);
  if (residence.start >= 0) p.residence = residence.start;
  p.work_permitted = p.nationality == "UA" || rng.Chance(70);
  p.steps.push_back(residence);

  // Integration course: BAMF admission first, then the provider.
  if (rng.Chance(85)) {
    StepPlan admission =
        Refer(rng, cases::v1::STEP_KIND_INTEGRATION_COURSE, kBamf,
              "Zulassung zum Integrationskurs", open_day + rng.Int(0, 3));
    PlayStep(rng, admission, 3);
    p.steps.push_back(admission);
    if (admission.start >= 0) {
      p.admission = admission.start;
      const auto& providers = Providers();
      StepPlan course = Refer(
          rng, cases::v1::STEP_KIND_INTEGRATION_COURSE,
          providers[rng.Int(0, static_cast<int>(providers.size()) - 1)].id,
          "Integrationskurs bis B1", DayOf(admission.start) + rng.Int(1, 5));
      // Times after the acceptance follow the course the plan finds.
      PlayStep(rng, course, 0);
      p.booking = std::max(course.accept, admission.start + 1);
      p.steps.push_back(course);
    }
  }
  // Counselling at a welfare organisation.
  if (rng.Chance(45)) {
    StepPlan counselling =
        Refer(rng, cases::v1::STEP_KIND_COUNSELLING,
              Welfare()[rng.Int(0, static_cast<int>(Welfare().size()) - 1)],
              "Migrationsberatung", open_day + rng.Int(1, 20));
    PlayStep(rng, counselling, 8);
    p.steps.push_back(counselling);
  }
  // Job placement for those who may work, once the immigration office has
  // recorded it.
  if (p.work_permitted && p.residence >= 0 && rng.Chance(70)) {
    const bool jobcenter = rng.Chance(75);
    StepPlan job = Refer(
        rng, cases::v1::STEP_KIND_JOB_PLACEMENT,
        jobcenter ? kJobcenter : kEmploymentAgency, "Vermittlung in Arbeit",
        std::max(open_day + rng.Int(14, 60), DayOf(p.residence) + 1));
    PlayStep(rng, job, 5);
    if (job.start >= 0) p.profile = job.start;
    p.steps.push_back(job);
  }
  // Some older cases are closed.
  const int64_t last = p.steps.back().refer;
  if (open_day < options.history_days - 90 && rng.Chance(12)) {
    p.case_closed = WorkTime(rng, DayOf(last) + rng.Int(60, 90));
    const int r = rng.Int(0, 2);
    p.closing_reason = r == 0   ? cases::v1::CASE_CLOSING_REASON_MOVED_AWAY
                       : r == 1 ? cases::v1::CASE_CLOSING_REASON_NO_CONTACT
                                : cases::v1::CASE_CLOSING_REASON_GOALS_REACHED;
  }
}

// Books each person who reached a course step into the first course of the
// provider that starts at least a week after the booking and has a seat
// left; when the next course that would do is full, the person joins its
// waitlist instead. Then moves the step's start to the first lesson.
void AssignCourses(Plan& plan) {
  std::vector<int> order;
  for (const PersonPlan& p : plan.persons) {
    if (p.booking >= 0) order.push_back(p.index);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return plan.persons[a].booking < plan.persons[b].booking;
  });
  for (int i : order) {
    PersonPlan& p = plan.persons[i];
    StepPlan* step = nullptr;
    for (StepPlan& s : p.steps) {
      if (s.kind == cases::v1::STEP_KIND_INTEGRATION_COURSE &&
          s.agency != kBamf) {
        step = &s;
      }
    }
    const int64_t day = DayOf(p.booking);
    CoursePlan* seat = nullptr;
    CoursePlan* waitlist = nullptr;
    for (CoursePlan& c : plan.courses) {
      if (c.provider != step->agency || c.start_day < day + 7 ||
          c.publish > p.booking) {
        continue;
      }
      if (c.booked < c.capacity) {
        seat = &c;
        break;
      }
      if (waitlist == nullptr) waitlist = &c;
    }
    if (seat == nullptr && waitlist == nullptr) {
      // Nothing published yet: the provider has accepted, the person
      // waits for the next course.
      step->start = step->done = -1;
      p.booking = -1;
      continue;
    }
    if (seat == nullptr ||
        (waitlist != nullptr && waitlist->index < seat->index &&
         waitlist->start_day < seat->start_day - 30)) {
      // Full, and the next free seat is far off: wait for a freed seat —
      // unless the case is closed by then.
      if (p.case_closed >= 0) {
        step->start = step->done = -1;
        p.booking = -1;
        continue;
      }
      p.course = waitlist->index;
      p.waitlisted = true;
      ++waitlist->waitlisted;
      step->start = step->done = -1;
      continue;
    }
    p.course = seat->index;
    ++seat->booked;
    step->start = seat->start_day * kDay + 8 * 60 + (i % 60);
    step->done = -1;  // integration courses last longer than the history
  }
}

// Proposals of candidates to offers, with outcomes. Played in time order:
// hires never exceed an offer's positions, no proposal is made to an offer
// that is filled, and once an offer is filled the service closes its open
// placements, so nothing more happens to them.
void AssignPlacements(Plan& plan) {
  Rng rng(plan.options.seed * 977 + 11);
  struct Proposal {
    int person;
    PlacementPlan pl;
  };
  std::vector<Proposal> proposals;
  for (PersonPlan& p : plan.persons) {
    if (p.profile < 0) continue;
    const int n = rng.Int(0, 3);
    int64_t t = p.profile + rng.Int(2, 20) * kDay;
    std::vector<int> used;
    for (int k = 0; k < n; ++k, t += rng.Int(5, 25) * kDay) {
      std::vector<int> open;
      for (const OfferPlan& o : plan.offers) {
        if (o.publish < t && o.start_day * kDay > t &&
            std::find(used.begin(), used.end(), o.index) == used.end() &&
            (p.language >= o.level || rng.Chance(10))) {
          open.push_back(o.index);
        }
      }
      if (open.empty()) continue;
      PlacementPlan pl;
      pl.offer = rng.Pick(open);
      used.push_back(pl.offer);
      pl.propose = WorkTime(rng, DayOf(t));
      pl.applied = WorkTime(rng, DayOf(pl.propose) + rng.Int(1, 7));
      const int r = rng.Int(0, 9);
      if (r < 3) {
        pl.rejected = WorkTime(rng, DayOf(pl.applied) + rng.Int(5, 20));
      } else if (r < 4) {
        pl.withdrawn = WorkTime(rng, DayOf(pl.applied) + rng.Int(2, 10));
      } else {
        pl.interview = WorkTime(rng, DayOf(pl.applied) + rng.Int(3, 14));
        if (r < 8) {
          pl.hired = WorkTime(rng, DayOf(pl.interview) + rng.Int(2, 10));
        } else if (r < 9) {
          pl.rejected = WorkTime(rng, DayOf(pl.interview) + rng.Int(2, 10));
        }
      }
      proposals.push_back({p.index, pl});
      if (pl.hired >= 0) break;
    }
  }
  std::stable_sort(proposals.begin(), proposals.end(),
                   [](const Proposal& a, const Proposal& b) {
                     return a.pl.propose < b.pl.propose;
                   });
  // Hires in the order they happen, up to the positions.
  std::vector<int64_t> hire_times;
  for (Proposal& x : proposals) {
    if (x.pl.hired >= 0) hire_times.push_back(x.pl.hired);
  }
  std::sort(hire_times.begin(), hire_times.end());
  std::vector<int> hired(plan.offers.size(), 0);
  std::vector<int64_t> filled(plan.offers.size(), -1);
  for (int64_t h : hire_times) {
    for (Proposal& x : proposals) {
      if (x.pl.hired != h) continue;
      const OfferPlan& o = plan.offers[x.pl.offer];
      if (hired[o.index] < o.positions) {
        if (++hired[o.index] == o.positions) filled[o.index] = h;
      } else {
        x.pl.hired = -1;
        x.pl.rejected = h;  // the employer took someone else
      }
    }
  }
  for (Proposal& x : proposals) {
    PlacementPlan& pl = x.pl;
    const int64_t fill = filled[pl.offer];
    if (fill >= 0 && pl.hired < 0) {
      if (pl.propose >= fill) continue;  // the offer is closed by then
      for (int64_t* at :
           {&pl.applied, &pl.interview, &pl.rejected, &pl.withdrawn}) {
        if (*at >= fill) *at = -1;  // closed with the offer
      }
    }
    plan.persons[x.person].placements.push_back(pl);
  }
}

}  // namespace

const std::vector<Agency>& Agencies() {
  static const auto* agencies = new std::vector<Agency>{
      {kKim, "Kommunales Integrationsmanagement Lindenbrück",
       lt::LEGAL_DOMAIN_KOMMUNE, kMunicipalityCode},
      {kImmigrationOffice, "Ausländerbehörde Lindenbrück",
       lt::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, kMunicipalityCode},
      {kJobcenter, "Jobcenter Lindenbrück", lt::LEGAL_DOMAIN_JOBCENTER,
       kMunicipalityCode},
      {kEmploymentAgency, "Agentur für Arbeit Lindenbrück",
       lt::LEGAL_DOMAIN_ARBEITSAGENTUR, kMunicipalityCode},
      {kBamf, "BAMF Außenstelle Dortmund", lt::LEGAL_DOMAIN_BAMF, ""},
      {"vhs-lindenbrueck", "Volkshochschule Lindenbrück",
       lt::LEGAL_DOMAIN_KURSTRAEGER, kMunicipalityCode},
      {"sprachinstitut-lindenbrueck", "Sprachinstitut am Markt",
       lt::LEGAL_DOMAIN_KURSTRAEGER, kMunicipalityCode},
      {"bildungswerk-lindenbrueck", "Bildungswerk Ruhr-Lippe",
       lt::LEGAL_DOMAIN_KURSTRAEGER, kMunicipalityCode},
      {"awo-lindenbrueck", "AWO Migrationsberatung Lindenbrück",
       lt::LEGAL_DOMAIN_FREIER_TRAEGER, kMunicipalityCode},
      {"diakonie-lindenbrueck", "Diakonie Lindenbrück",
       lt::LEGAL_DOMAIN_FREIER_TRAEGER, kMunicipalityCode},
  };
  return *agencies;
}

Plan MakePlan(const PlanOptions& options) {
  Plan plan;
  plan.options = options;
  MakeCourses(plan);
  MakeOffers(plan);
  const auto& origins = Origins();
  const int total = options.persons;
  for (int i = 0; i < total; ++i) {
    Rng rng(options.seed * 1000003ULL + static_cast<uint64_t>(i));
    PersonPlan p;
    p.index = i;
    char key[16];
    std::snprintf(key, sizeof key, "lb-%05d", i);
    p.key = key;
    int w = rng.Int(0, 99);
    const Origin* origin = &origins.back();
    for (const Origin& o : origins) {
      if (w < o.weight) {
        origin = &o;
        break;
      }
      w -= o.weight;
    }
    p.nationality = origin->code;
    const bool female = rng.Chance(48);
    const Variants& given = rng.Pick(female ? origin->female : origin->male);
    const Variants& family = rng.Pick(origin->family);
    p.given_names = rng.Pick(given);
    p.family_names = rng.Pick(family);
    const int age = rng.Int(18, 58);
    p.birth_year = 2026 - age;
    const int d = rng.Int(0, 99);
    if (d >= origin->year_only_percent) {
      p.birth_month = rng.Int(1, 12);
      if (d >= origin->year_only_percent + 5) p.birth_day = rng.Int(1, 28);
    }
    p.registered = WorkTime(rng, rng.Int(0, options.history_days - 1));
    if (i < options.cases) {
      p.has_case = true;
      p.case_opened = WorkTime(rng, DayOf(p.registered) + rng.Int(0, 10));
      p.language = rng.Chance(30) ? lt::CEFR_LEVEL_A2 : lt::CEFR_LEVEL_A1;
      if (p.nationality == "UA" && rng.Chance(40))
        p.language = lt::CEFR_LEVEL_B1;
      MakeChain(rng, p, options);
    }
    plan.persons.push_back(std::move(p));
  }
  // Second registrations of some persons, spelled the way another office
  // transliterated the name: what duplicate detection is for.
  Rng dup(options.seed * 7919 + 5);
  for (int k = 0; k < options.near_duplicates && total > 0; ++k) {
    const PersonPlan& original = plan.persons[dup.Int(0, total - 1)];
    PersonPlan p;
    p.index = static_cast<int>(plan.persons.size());
    char key[16];
    std::snprintf(key, sizeof key, "lb-%05d", p.index);
    p.key = key;
    p.duplicate_of = original.index;
    p.nationality = original.nationality;
    p.given_names = original.given_names;
    p.family_names = original.family_names;
    for (const Origin& o : origins) {
      if (p.nationality != o.code) continue;
      for (const auto* names : {&o.female, &o.male}) {
        for (const Variants& v : *names) {
          if (std::find(v.begin(), v.end(), p.given_names) != v.end() &&
              v.size() > 1) {
            p.given_names = v[(std::find(v.begin(), v.end(), p.given_names) -
                               v.begin() + 1) %
                              v.size()];
          }
        }
      }
      for (const Variants& v : o.family) {
        auto it = std::find(v.begin(), v.end(), p.family_names);
        if (it != v.end() && v.size() > 1) {
          p.family_names = v[(it - v.begin() + 1) % v.size()];
        }
      }
    }
    p.birth_year = original.birth_year;
    p.birth_month = original.birth_month;
    p.birth_day = original.birth_day;
    p.registered = original.registered + dup.Int(1, 20) * kDay;
    plan.persons.push_back(std::move(p));
  }
  AssignCourses(plan);
  AssignPlacements(plan);
  // The guided tour's person has a name the README can use, full papers,
  // and a second registration under another transliteration.
  const int tour = TourPerson(plan);
  if (tour >= 0) {
    PersonPlan& t = plan.persons[tour];
    t.given_names = "Rasha";
    t.family_names = "Al-Hassan";
    t.birth_year = 1991;
    t.birth_month = 4;
    t.birth_day = 12;
    PersonPlan twin;
    twin.index = static_cast<int>(plan.persons.size());
    char key[16];
    std::snprintf(key, sizeof key, "lb-%05d", twin.index);
    twin.key = key;
    twin.duplicate_of = tour;
    twin.given_names = "Rascha";
    twin.family_names = "Alhasan";
    twin.birth_year = 1991;
    twin.birth_month = 4;
    twin.birth_day = 12;
    twin.nationality = "SY";
    twin.registered = t.registered + kDay;
    plan.persons.push_back(std::move(twin));
  }
  return plan;
}

int TourPerson(const Plan& plan) {
  int best = -1;
  size_t best_steps = 0;
  for (const PersonPlan& p : plan.persons) {
    if (!p.has_case || p.nationality != "SY" || p.case_closed >= 0 ||
        p.course < 0 || p.waitlisted || p.placements.empty()) {
      continue;
    }
    if (p.steps.size() > best_steps) {
      best = p.index;
      best_steps = p.steps.size();
    }
  }
  return best;
}

}  // namespace lotse::demo
