#include "services/courses/domain/seats.h"

#include <algorithm>
#include <tuple>

namespace lotse::courses {

bool EntitlementUsable(const EntitlementFacts& e, absl::string_view person,
                       const SeatCourseFacts& course, int64_t today) {
  const bool covers = std::find(e.course_kinds.begin(), e.course_kinds.end(),
                                course.kind) != e.course_kinds.end();
  return !e.revoked && e.person == person && covers && e.valid_until >= today &&
         e.valid_from <= course.start_day &&
         course.start_day <= e.valid_until &&
         e.units - e.units_used >= course.units;
}

std::optional<size_t> BestEntitlement(
    const std::vector<EntitlementFacts>& candidates, absl::string_view person,
    const SeatCourseFacts& course, int64_t today) {
  auto rank = [](const EntitlementFacts& e) {
    return std::make_tuple(e.obligation ? 0 : 1, e.valid_until, e.create_us,
                           e.id);
  };
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const EntitlementFacts& e = candidates[i];
    if (!EntitlementUsable(e, person, course, today)) continue;
    if (!best || rank(e) < rank(candidates[*best])) best = i;
  }
  return best;
}

v1::WaitlistPriority PriorityFor(bool obligation) {
  return obligation ? v1::WAITLIST_PRIORITY_OBLIGATION
                    : v1::WAITLIST_PRIORITY_ADMISSION;
}

bool HoldsSeat(v1::BookingState state) {
  return state == v1::BOOKING_STATE_HELD ||
         state == v1::BOOKING_STATE_CONFIRMED ||
         state == v1::BOOKING_STATE_ATTENDING;
}

bool TakesBookings(v1::CourseState state) {
  return state == v1::COURSE_STATE_PLANNED || state == v1::COURSE_STATE_RUNNING;
}

int FreeSeats(int capacity, int booked_seats) {
  return std::max(0, capacity - booked_seats);
}

v1::BookingState NewBookingState(bool confirmed_by_provider,
                                 bool course_running) {
  if (!confirmed_by_provider) return v1::BOOKING_STATE_HELD;
  return ConfirmedState(course_running);
}

v1::BookingState ConfirmedState(bool course_running) {
  // Once StartCourse has passed, a confirmed seat is a participant at once.
  return course_running ? v1::BOOKING_STATE_ATTENDING
                        : v1::BOOKING_STATE_CONFIRMED;
}

SeatRelease ReleaseSeat(int booked_seats, int64_t units_used,
                        int64_t booking_units) {
  SeatRelease release;
  release.booked_seats = std::max(0, booked_seats - 1);
  release.units_used = std::max<int64_t>(0, units_used - booking_units);
  return release;
}

WaitlistHeadDecision DecideWaitlistHead(const WaitlistHeadFacts& head,
                                        const SeatCourseFacts& course,
                                        int64_t today) {
  WaitlistHeadDecision decision;
  if (head.has_active_booking) return decision;
  if (head.requested &&
      EntitlementUsable(*head.requested, head.person, course, today)) {
    decision.promote = true;
    decision.use_requested = true;
    return decision;
  }
  std::optional<size_t> best =
      BestEntitlement(head.entitlements, head.person, course, today);
  if (!best) return decision;
  decision.promote = true;
  decision.entitlement = *best;
  return decision;
}

}  // namespace lotse::courses
