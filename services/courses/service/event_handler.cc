// The consumer of identity's events: the local agency registry and person
// merges (see CoursesServiceImpl::EventHandler).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/audit/audit_log.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/courses/domain/seats.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

absl::Status ApplyAgency(Transaction& tx, const identity::v1::Agency& agency) {
  if (AgencyIdOf(agency.name()).empty()) {
    return absl::InvalidArgumentError("agency event without a valid name");
  }
  return agencies::UpsertAgency(tx, agency);
}

// Moves the bookings of `merged` to `survivor`, oldest first; where both
// persons hold an active booking in a course, the later one is cancelled
// and its seat goes to the waitlist.
absl::Status MergeBookings(
    Transaction& tx, const std::string& merged, const std::string& survivor,
    absl::Time now, absl::Duration default_hold,
    std::vector<std::pair<std::string, std::string>>* touched) {
  absl::StatusOr<std::vector<std::string>> bookings = BookingIdsOf(tx, merged);
  if (!bookings.ok()) return bookings.status();
  for (const std::string& id : *bookings) {
    absl::StatusOr<std::optional<BookingRow>> found = ReadBooking(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) continue;
    BookingRow b = **found;
    if (absl::Status s = LockCourse(tx, b.course_id); !s.ok()) return s;
    if (HoldsSeat(b.booking.state())) {
      absl::StatusOr<std::optional<BookingRow>> other =
          ActiveBooking(tx, b.course_id, survivor);
      if (!other.ok()) return other.status();
      if (other->has_value()) {
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, b.course_id);
        if (!course.ok()) return course.status();
        CourseRow c = **course;
        BookingRow later = **other;
        const bool merged_is_later = std::make_pair(b.create_us, b.id) >
                                     std::make_pair(later.create_us, later.id);
        if (merged_is_later) later = b;
        if (absl::Status s =
                ReleaseBooking(tx, &c, &later, v1::BOOKING_STATE_CANCELLED,
                               v1::BOOKING_CANCEL_REASON_AGENCY_CANCELLED, now);
            !s.ok()) {
          return s;
        }
        touched->emplace_back(survivor, BookingName(c.id, later.id));
        if (absl::Status s = FillFreeSeats(tx, &c, now, default_hold, touched);
            !s.ok()) {
          return s;
        }
        if (merged_is_later) b = later;
      }
    }
    // Re-read: releasing may have rewritten it.
    found = ReadBooking(tx, id);
    if (!found.ok()) return found.status();
    b = **found;
    b.booking.set_person(survivor);
    ++b.version;
    if (absl::Status s = WriteBooking(tx, b); !s.ok()) return s;
    touched->emplace_back(survivor, BookingName(b.course_id, b.id));
    absl::StatusOr<std::optional<v1::CourseResult>> result =
        ReadResult(tx, b.id);
    if (!result.ok()) return result.status();
    if (result->has_value()) {
      v1::CourseResult r = **result;
      r.set_person(survivor);
      if (absl::Status s = WriteResultPerson(tx, b.id, r); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// Moves the waitlist entries of `merged` to `survivor`: a second WAITING
// entry in one course (or one where the survivor now holds a seat) is
// removed.
absl::Status MergeWaitlistEntries(
    Transaction& tx, const std::string& merged, const std::string& survivor,
    absl::Time now, std::vector<std::pair<std::string, std::string>>* touched) {
  absl::StatusOr<std::vector<std::string>> entries = WaitlistIdsOf(tx, merged);
  if (!entries.ok()) return entries.status();
  for (const std::string& id : *entries) {
    absl::StatusOr<std::optional<WaitlistRow>> found = ReadWaitlist(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) continue;
    WaitlistRow w = **found;
    if (absl::Status s = LockCourse(tx, w.course_id); !s.ok()) return s;
    if (w.entry.state() == v1::WAITLIST_ENTRY_STATE_WAITING) {
      absl::StatusOr<std::optional<WaitlistRow>> other =
          WaitingEntry(tx, w.course_id, survivor);
      if (!other.ok()) return other.status();
      absl::StatusOr<std::optional<BookingRow>> seat =
          ActiveBooking(tx, w.course_id, survivor);
      if (!seat.ok()) return seat.status();
      if (other->has_value() || seat->has_value()) {
        WaitlistRow drop = w;
        if (other->has_value() && !seat->has_value() &&
            std::make_pair((*other)->seq, (*other)->id) >
                std::make_pair(w.seq, w.id)) {
          drop = **other;
        }
        drop.entry.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
        *drop.entry.mutable_update_time() = api::ToTimestamp(now);
        ++drop.version;
        if (absl::Status s = WriteWaitlist(tx, drop); !s.ok()) return s;
        absl::StatusOr<std::optional<CourseRow>> course =
            ReadCourse(tx, w.course_id);
        if (!course.ok()) return course.status();
        CourseRow c = **course;
        c.course.set_waitlist_length(
            std::max(0, c.course.waitlist_length() - 1));
        Bump(&c, now);
        if (absl::Status s = WriteCourse(tx, c); !s.ok()) return s;
        v1::WaitlistLeft event;
        event.set_waitlist_entry(WaitlistName(w.course_id, drop.id));
        event.set_state(v1::WAITLIST_ENTRY_STATE_REMOVED);
        absl::StatusOr<v1::BookingContext> context =
            ContextFor(tx, c, "", survivor, drop.entry.requesting_agency(),
                       drop.entry.case_step(), drop.entry.entitlement());
        if (!context.ok()) return context.status();
        *event.mutable_context() = *context;
        if (absl::Status s = Enqueue(tx, event, survivor); !s.ok()) return s;
        if (drop.id == w.id) w = drop;
      }
    }
    w.entry.set_person(survivor);
    ++w.version;
    if (absl::Status s = WriteWaitlist(tx, w); !s.ok()) return s;
    touched->emplace_back(survivor, WaitlistName(w.course_id, w.id));
  }
  return absl::OkStatus();
}

// Moves the entitlements of `merged` to `survivor`.
absl::Status MergeEntitlements(
    Transaction& tx, const std::string& merged, const std::string& survivor,
    std::vector<std::pair<std::string, std::string>>* touched) {
  absl::StatusOr<std::vector<std::string>> ents = EntitlementIdsOf(tx, merged);
  if (!ents.ok()) return ents.status();
  for (const std::string& id : *ents) {
    absl::StatusOr<std::optional<EntitlementRow>> found =
        ReadEntitlement(tx, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) continue;
    EntitlementRow e = **found;
    e.entitlement.set_person(survivor);
    ++e.version;
    if (absl::Status s = WriteEntitlement(tx, e); !s.ok()) return s;
    touched->emplace_back(survivor, EntitlementName(e.id));
  }
  return absl::OkStatus();
}

// Moves everything of `merged` to `survivor` (both "persons/x") and audits
// each record moved or changed.
absl::Status ApplyMerge(Transaction& tx, const std::string& merged,
                        const std::string& survivor, absl::Time now,
                        absl::Duration default_hold) {
  if (absl::Status s = RecordMerge(tx, merged, survivor); !s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> touched;
  if (absl::Status s =
          MergeBookings(tx, merged, survivor, now, default_hold, &touched);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          MergeWaitlistEntries(tx, merged, survivor, now, &touched);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = MergeEntitlements(tx, merged, survivor, &touched);
      !s.ok()) {
    return s;
  }
  for (const auto& [person, record] : touched) {
    audit::AuditRecord r;
    r.agency_id = "courses";
    r.legal_domain = server::kServiceDomain;
    r.actor = "event-consumer";
    r.purpose = "person-merge";
    r.operation = "courses/ApplyPersonMerged";
    r.resource = absl::StrCat(person, "/", record);
    r.data_categories = {"LANGUAGE"};
    if (absl::Status s = audit::AppendAudit(tx, r); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Whether `name` ("persons/x") was erased here.
absl::StatusOr<bool> Shredded(Transaction& tx, absl::string_view name) {
  absl::ConsumePrefix(&name, "persons/");
  return lifecycle::IsPersonShredded(tx, name);
}

}  // namespace

events::ApplyFn CoursesServiceImpl::EventHandler() {
  return [this](Transaction& tx,
                const lotse::events::v1::Event& event) -> absl::Status {
    const google::protobuf::Any& payload = event.payload();
    identity::v1::AgencyRegistered registered;
    identity::v1::AgencyUpdated updated;
    identity::v1::AgencySuspended suspended;
    identity::v1::AgencyReactivated reactivated;
    identity::v1::PersonMerged merged;
    identity::v1::LegalHoldPlaced placed;
    identity::v1::LegalHoldReleased released;
    identity::v1::PersonErased erased;
    identity::v1::PersonRectified rectified;
    if (payload.UnpackTo(&registered))
      return ApplyAgency(tx, registered.agency());
    if (payload.UnpackTo(&updated)) return ApplyAgency(tx, updated.agency());
    if (payload.UnpackTo(&suspended))
      return ApplyAgency(tx, suspended.agency());
    if (payload.UnpackTo(&reactivated)) {
      return ApplyAgency(tx, reactivated.agency());
    }
    if (payload.UnpackTo(&merged)) {
      FieldViolations v;
      const std::string survivor =
          ParsePerson(merged.survivor(), "survivor", &v);
      const std::string gone = ParsePerson(merged.merged(), "merged", &v);
      if (!v.empty()) return v.ToStatus();
      // A merge that names an erased person changes nothing here: the
      // erased person's records are gone or anonymised.
      for (const std::string& p : {survivor, gone}) {
        absl::StatusOr<bool> shredded = Shredded(tx, p);
        if (!shredded.ok()) return shredded.status();
        if (*shredded) return absl::OkStatus();
      }
      return ApplyMerge(tx, gone, survivor,
                        absl::FromUnixMicros(ToMicros(options_.clock())),
                        options_.default_hold);
    }
    if (payload.UnpackTo(&placed))
      return lifecycle::ApplyHold(tx, placed.hold());
    if (payload.UnpackTo(&released)) {
      return lifecycle::ApplyHold(tx, released.hold());
    }
    if (payload.UnpackTo(&erased)) {
      // Erased here already (a second erasure of the same person): nothing
      // is left to do and nothing more to report.
      if (absl::string_view id = erased.person();
          absl::ConsumePrefix(&id, "persons/") && !id.empty()) {
        absl::StatusOr<bool> shredded = Shredded(tx, erased.person());
        if (!shredded.ok()) return shredded.status();
        if (*shredded) return absl::OkStatus();
      }
      static const lifecycle::RetentionRules* const kNoRules =
          new lifecycle::RetentionRules();
      const lifecycle::RetentionRules& rules =
          runtime_.retention != nullptr ? *runtime_.retention : *kNoRules;
      return lifecycle::ApplyPersonErased(
          tx, erased, "courses", rules, EraseCoursesPerson,
          absl::FromUnixMicros(ToMicros(options_.clock())));
    }
    // The service keeps person ids, nothing of the core record.
    if (payload.UnpackTo(&rectified)) return absl::OkStatus();
    return absl::OkStatus();  // not for us
  };
}

}  // namespace lotse::courses
