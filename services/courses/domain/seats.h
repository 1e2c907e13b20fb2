// The seat and entitlement rules of the courses service: which entitlement
// pays for a seat, which booking states hold one, what a booking starts as,
// what releasing a seat gives back, and what a freed seat does for the head
// of the waitlist.
//
// These are pure functions of the facts they decide on. The handlers load
// the facts (under the course's lock, then the person's), call a rule and
// store its decision; the rules never touch storage and never fail.
#ifndef LOTSE_SERVICES_COURSES_DOMAIN_SEATS_H_
#define LOTSE_SERVICES_COURSES_DOMAIN_SEATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "lotse/courses/v1/booking.pb.h"
#include "lotse/courses/v1/course.pb.h"

namespace lotse::courses {

// An entitlement (admission) or obligation, as the seat rules see it.
struct EntitlementFacts {
  std::string id;
  std::string person;       // "persons/x"
  bool obligation = false;  // issued as an obligation, not an admission
  std::vector<int> course_kinds;
  int64_t valid_from = 0;  // day numbers (dates.h)
  int64_t valid_until = 0;
  int64_t units = 0;
  int64_t units_used = 0;
  bool revoked = false;
  int64_t create_us = 0;  // when it was recorded
};

// The course a seat is wanted in.
struct SeatCourseFacts {
  int kind = 0;           // v1::CourseKind
  int64_t start_day = 0;  // day number of the first course day
  int64_t units = 0;      // what one seat takes from its entitlement
};

// True when `e` can pay for a seat of `person` in `course` on day `today`:
// it is the person's, not revoked, covers the course's kind, has not
// expired by today, is valid on the course's start date and has the
// course's units left.
bool EntitlementUsable(const EntitlementFacts& e, absl::string_view person,
                       const SeatCourseFacts& course, int64_t today);

// The entitlement a booking or waitlist entry of `person` uses when the
// request names none: among the usable ones of `candidates`, obligations
// before admissions, then the one that expires first, then the oldest, then
// the smallest id. Returns its index in `candidates`, or nullopt when none
// is usable.
std::optional<size_t> BestEntitlement(
    const std::vector<EntitlementFacts>& candidates, absl::string_view person,
    const SeatCourseFacts& course, int64_t today);

// The waitlist priority an entry gets from the entitlement it uses
// (`obligation`: an obligation, not an admission): obligations wait ahead
// of admissions.
v1::WaitlistPriority PriorityFor(bool obligation);

// True for the booking states that occupy a seat (HELD, CONFIRMED,
// ATTENDING); only such a booking can be cancelled or expire.
bool HoldsSeat(v1::BookingState state);

// True for the course states in which seats are booked and waitlist entries
// promoted (PLANNED, RUNNING).
bool TakesBookings(v1::CourseState state);

// Seats of a course nobody occupies (never negative).
int FreeSeats(int capacity, int booked_seats);

// The state of a new booking: a seat the course's provider confirms as it
// books it is CONFIRMED, or ATTENDING at once in a course that is already
// running; any other new booking is HELD until confirmed or expired.
v1::BookingState NewBookingState(bool confirmed_by_provider,
                                 bool course_running);

// The state a HELD booking takes when the provider confirms it (the same
// rule as NewBookingState for a confirmed seat).
v1::BookingState ConfirmedState(bool course_running);

// What releasing one seat (cancel or expiry) gives back: the course's
// booked seats and the entitlement's used units after the release, neither
// below zero.
struct SeatRelease {
  int booked_seats = 0;
  int64_t units_used = 0;
};
SeatRelease ReleaseSeat(int booked_seats, int64_t units_used,
                        int64_t booking_units);

// What a free seat does for the head of the waitlist.
struct WaitlistHeadFacts {
  std::string person;
  // The person already has an active booking in the course.
  bool has_active_booking = false;
  // The entitlement the entry named, when it still exists.
  std::optional<EntitlementFacts> requested;
  // The person's entitlements.
  std::vector<EntitlementFacts> entitlements;
};
struct WaitlistHeadDecision {
  // Promote the entry to a HELD booking paid by `requested` (when
  // `use_requested`) or by entitlements[entitlement]; otherwise the entry
  // can no longer be served and is REMOVED.
  bool promote = false;
  bool use_requested = false;
  size_t entitlement = 0;
};
// The head is promoted when the person has no active booking in the course
// and an entitlement pays for the seat: the one the entry named if it is
// still usable, else the best usable one (BestEntitlement).
WaitlistHeadDecision DecideWaitlistHead(const WaitlistHeadFacts& head,
                                        const SeatCourseFacts& course,
                                        int64_t today);

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_DOMAIN_SEATS_H_
