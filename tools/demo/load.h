// Loads a demo plan (plan.h) into running Lotse services through their
// public API, as the agencies that own each record would: the municipal
// integration management registers persons, opens cases and refers steps;
// each receiving agency accepts, starts and completes its own steps; the
// immigration office records residence status, BAMF admissions, course
// providers publish courses and book seats, Jobcenter and employment
// agency publish offers, keep candidate profiles and propose placements.
//
// History: every call carries x-lotse-dev-time, the plan's time of the
// event, so the services (started with --dev_clock) store it at that time.
// Audit records keep the real time of the call. Events the plan puts after
// "now" are skipped — they have not happened yet.
//
// Idempotent: create calls carry request ids derived from the plan, and a
// load finds an already loaded municipality (the case manager has cases)
// and then changes nothing.
#ifndef LOTSE_TOOLS_DEMO_LOAD_H_
#define LOTSE_TOOLS_DEMO_LOAD_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/demo/plan.h"

namespace lotse::demo {

struct LoadTargets {
  std::string identity, cases, courses, placement;  // host:port each
  std::string tls_dir;  // tools/dev-pki.sh output with the demo agencies
  int threads = 32;  // persons loaded in parallel (most calls wait for events)
};

struct LoadResult {
  bool already_loaded = false;
  int persons = 0, cases = 0, steps = 0, courses = 0, bookings = 0,
      waitlist_entries = 0, offers = 0, placements = 0;
  int calls = 0;
  int failures = 0;  // calls that failed for good (details on stderr)
  absl::Duration took;
  std::string tour_person;  // "persons/…" of TourPerson(), if loaded
  std::string tour_case;    // "cases/…"
};

// Loads `plan` with its history starting at midnight UTC `history_days`
// before `now`. FAILED_PRECONDITION when a client certificate is missing;
// otherwise OK with the counts, failures included.
absl::StatusOr<LoadResult> LoadPlan(const Plan& plan,
                                    const LoadTargets& targets, absl::Time now);

}  // namespace lotse::demo

#endif  // LOTSE_TOOLS_DEMO_LOAD_H_
