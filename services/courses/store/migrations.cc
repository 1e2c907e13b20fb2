#include "services/courses/store/migrations.h"

#include "common/agencies/registry.h"
#include "common/api/idempotency.h"
#include "common/audit/audit_log.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"

namespace lotse::courses {
namespace {

// The service's own tables. Every table keeps the record's protobuf message
// in `data` (what the API returns) and, as columns, the fields it is
// searched, constrained or counted by. The store writes both from one
// record, so they never disagree.
//
// Days are days since 1970-01-01 (UTC civil days); times are Unix
// microseconds.
constexpr char kInit[] = R"sql(
CREATE TABLE course_agencies (
  id TEXT PRIMARY KEY,
  certificate_identity TEXT NOT NULL,
  legal_domain TEXT NOT NULL,
  suspended BIGINT NOT NULL,
  update_us BIGINT NOT NULL
);
CREATE INDEX course_agencies_by_certificate
  ON course_agencies (certificate_identity);

CREATE TABLE course_person_merges (
  merged TEXT PRIMARY KEY,
  survivor TEXT NOT NULL
);

CREATE TABLE courses (
  id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  kind BIGINT NOT NULL,
  target_level BIGINT NOT NULL,
  municipality_code TEXT NOT NULL,
  postal_code TEXT NOT NULL,
  lat DOUBLE PRECISION,
  lon DOUBLE PRECISION,
  start_day BIGINT NOT NULL,
  weekdays BIGINT NOT NULL,
  day_period BIGINT NOT NULL,
  childcare BIGINT NOT NULL,
  capacity BIGINT NOT NULL CHECK (capacity >= 1),
  booked BIGINT NOT NULL CHECK (booked >= 0 AND booked <= capacity),
  waitlist_length BIGINT NOT NULL CHECK (waitlist_length >= 0),
  state BIGINT NOT NULL,
  version BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX courses_by_start ON courses (start_day, id);
CREATE INDEX courses_by_provider ON courses (provider, start_day, id);
CREATE INDEX courses_by_municipality
  ON courses (municipality_code, start_day, id);
-- SearchCourses reads bookable courses in (start_day, id) order, by kind or
-- all of them, from covering indexes: every column it filters on is in the
-- index, so a search reads no table row until it has its page (the courses
-- of the page are then read by id). Partial: only PLANNED and RUNNING
-- courses are searched.
CREATE INDEX courses_search ON courses
  (start_day, id, lat, lon, booked, capacity, kind, target_level,
   day_period, childcare, weekdays, state) WHERE state IN (1, 2);
CREATE INDEX courses_search_by_kind ON courses
  (kind, start_day, id, lat, lon, booked, capacity, target_level,
   day_period, childcare, weekdays, state) WHERE state IN (1, 2);

CREATE TABLE course_entitlements (
  id TEXT PRIMARY KEY,
  person TEXT NOT NULL,
  kind BIGINT NOT NULL,
  issuer TEXT NOT NULL,
  course_kinds BIGINT NOT NULL,
  units BIGINT NOT NULL,
  units_used BIGINT NOT NULL CHECK (units_used >= 0),
  valid_from BIGINT NOT NULL,
  valid_until BIGINT NOT NULL,
  revoked BIGINT NOT NULL,
  version BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX course_entitlements_by_person
  ON course_entitlements (person, create_us, id);
CREATE INDEX course_entitlements_by_issuer
  ON course_entitlements (issuer, create_us, id);

CREATE TABLE course_bookings (
  id TEXT PRIMARY KEY,
  course_id TEXT NOT NULL,
  person TEXT NOT NULL,
  entitlement_id TEXT NOT NULL,
  booking_agency TEXT NOT NULL,
  state BIGINT NOT NULL,
  hold_expire_us BIGINT NOT NULL,
  units BIGINT NOT NULL,
  version BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX course_bookings_by_course
  ON course_bookings (course_id, create_us, id);
CREATE INDEX course_bookings_by_person
  ON course_bookings (person, create_us, id);
CREATE INDEX course_bookings_by_agency
  ON course_bookings (booking_agency, create_us, id);
CREATE INDEX course_bookings_holds
  ON course_bookings (state, hold_expire_us);
-- One active (held, confirmed, attending) booking per person and course.
CREATE UNIQUE INDEX course_bookings_one_active
  ON course_bookings (course_id, person) WHERE state IN (1, 2, 3);

CREATE TABLE course_waitlist (
  id TEXT PRIMARY KEY,
  course_id TEXT NOT NULL,
  person TEXT NOT NULL,
  requesting_agency TEXT NOT NULL,
  priority BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  state BIGINT NOT NULL,
  version BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX course_waitlist_order
  ON course_waitlist (course_id, state, priority, seq);
CREATE INDEX course_waitlist_by_person
  ON course_waitlist (person, create_us, id);
CREATE UNIQUE INDEX course_waitlist_one_waiting
  ON course_waitlist (course_id, person) WHERE state = 1;

CREATE TABLE course_attendance (
  booking_id TEXT NOT NULL,
  day BIGINT NOT NULL,
  id TEXT NOT NULL,
  status BIGINT NOT NULL,
  units BIGINT NOT NULL,
  data {{BLOB}} NOT NULL,
  PRIMARY KEY (booking_id, day)
);

CREATE TABLE course_results (
  booking_id TEXT PRIMARY KEY,
  person TEXT NOT NULL,
  exam_day BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX course_results_by_person
  ON course_results (person, exam_day, booking_id);
)sql";

// Anchor columns and the indexes the purge tasks read them by.
constexpr char kLifecycle[] = R"sql(
ALTER TABLE courses ADD COLUMN finish_us BIGINT;
ALTER TABLE course_bookings ADD COLUMN end_us BIGINT;
ALTER TABLE course_waitlist ADD COLUMN end_us BIGINT;
ALTER TABLE course_entitlements ADD COLUMN revoke_us BIGINT;
CREATE INDEX course_bookings_by_end ON course_bookings (end_us);
CREATE INDEX course_waitlist_by_end ON course_waitlist (end_us);
CREATE INDEX course_results_by_create ON course_results (create_us);
)sql";

}  // namespace

std::vector<storage::Migration> CoursesMigrations() {
  std::vector<storage::Migration> all;
  auto append = [&all](std::vector<storage::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(audit::AuditMigrations());
  append(events::OutboxMigrations());
  append(events::InboxMigrations());
  append(api::ApiMigrations());
  all.push_back({"courses.0001_init", kInit});
  // The agency registry moved to common/agencies (local_agencies); the
  // rows learned so far move with it.
  all.push_back(agencies::RegistryMigration());
  all.push_back({"courses.0002_agencies_to_local",
                 "INSERT INTO local_agencies (id, certificate_identity, "
                 "legal_domain, municipality_code, suspended, update_us) "
                 "SELECT id, certificate_identity, legal_domain, '', "
                 "suspended, update_us FROM course_agencies;\n"
                 "DROP TABLE course_agencies;"});
  // The AuditService's person filter asks which ids were merged into a
  // survivor.
  all.push_back({"courses.0003_person_merges_by_survivor",
                 "CREATE INDEX course_person_merges_by_survivor ON "
                 "course_person_merges (survivor, merged);"});
  // Legal holds and per-person data keys (common/lifecycle).
  append(lifecycle::HoldMigrations());
  append(lifecycle::PersonKeyMigrations());
  // The moments retention periods start from (course_store.h, "Lifecycle").
  // Records that ended before this migration keep NULL: when they ended is
  // only in their protobuf record, which SQL cannot read, and a guessed
  // earlier time could purge a record the rules still keep. The purge job
  // never takes them; they leave with their person's erasure.
  all.push_back({"courses.0004_lifecycle", kLifecycle});
  return all;
}

}  // namespace lotse::courses
