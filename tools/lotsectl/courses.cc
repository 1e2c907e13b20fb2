// courses: finding a course seat fast in the courses service (search,
// show, book, join a waitlist, list a waitlist).
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {
namespace {

constexpr char kPurpose[] = "course-placement";

const std::vector<Column> kCourseColumns = {{"COURSE", "name"},
                                            {"TITLE", "title"},
                                            {"KIND", "kind"},
                                            {"LEVEL", "target_level"},
                                            {"PROVIDER", "provider_agency"},
                                            {"FREE", "free_seats"},
                                            {"CAPACITY", "capacity"},
                                            {"WAITLIST", "waitlist_length"}};

const TableSpec kBookingRecord = {"",
                                  {{"name", "name"},
                                   {"person", "person"},
                                   {"state", "state"},
                                   {"entitlement", "entitlement"},
                                   {"case step", "case_step"},
                                   {"booked by", "booking_agency"},
                                   {"held until", "hold_expire_time"},
                                   {"etag", "etag"}}};

const std::vector<Column> kWaitlistColumns = {
    {"ENTRY", "name"},        {"PERSON", "person"},
    {"POSITION", "position"}, {"PRIORITY", "priority"},
    {"STATE", "state"},       {"BY", "requesting_agency"}};

}  // namespace

std::vector<Verb> CourseVerbs() {
  std::vector<Verb> verbs;
  std::vector<Column> search_columns;
  for (const Column& c : kCourseColumns) {
    search_columns.push_back({c.header, "course." + c.path});
  }
  search_columns.push_back({"KM", "distance_km"});
  verbs.push_back(
      {"courses",
       "search",
       "find courses with free seats (full ones with --include-full)",
       "courses",
       "SearchCourses",
       kPurpose,
       {{"kind", "kinds", "INTEGRATION_GENERAL, ... (repeatable)"},
        {"level", "target_level", "target CEFR level, e.g. B1"},
        {"municipality", "municipality_code", "AGS of the municipality"},
        {"near", "near.postal_code", "postal code (with --within)"},
        {"within", "near.max_distance_km", "radius in km around --near"},
        {"start-after", "start_after", "YYYY-MM-DD"},
        {"start-before", "start_before", "YYYY-MM-DD"},
        {"childcare", "childcare_required", "only courses with childcare",
         false, false, false},
        {"include-full", "include_full", "also full courses", false, false,
         false},
        {"for-person", "for_person", "only courses the person may attend"},
        {"page-size", "page_size", "at most this many"},
        {"page-token", "page_token", "continue a listing"}},
       {},
       {"results", search_columns}});
  verbs.push_back(
      {"courses",
       "entitle",
       "record an admission (BAMF) or obligation (immigration office, "
       "Jobcenter) to attend courses",
       "courses",
       "RecordEntitlement",
       kPurpose,
       {{"person", "entitlement.person", "persons/{id}", true, true},
        {"kind", "entitlement.kind", "ADMISSION or OBLIGATION", true},
        {"course-kind", "entitlement.course_kinds",
         "course kinds covered, e.g. INTEGRATION_GENERAL (repeatable)", true},
        {"units", "entitlement.units", "teaching units granted, 1..1500", true},
        {"from", "entitlement.valid_from", "first day, YYYY-MM-DD", true},
        {"until", "entitlement.valid_until", "last day, YYYY-MM-DD", true},
        {"reference", "entitlement.reference",
         "the issuer's reference, e.g. the notice number"},
        {"legal-basis", "entitlement.legal_basis", "e.g. § 44a AufenthG"}},
       {},
       {"",
        {{"name", "name"},
         {"person", "person"},
         {"kind", "kind"},
         {"course kinds", "course_kinds"},
         {"units", "units"},
         {"units used", "units_used"},
         {"valid from", "valid_from"},
         {"valid until", "valid_until"},
         {"issued by", "issuing_agency"},
         {"state", "state"}}}});
  verbs.push_back({"courses",
                   "show",
                   "show a course",
                   "courses",
                   "GetCourse",
                   kPurpose,
                   {{"course", "name", "courses/{id}", true, true}},
                   {},
                   {}});
  verbs.push_back(
      {"courses",
       "book",
       "book a seat for a person (held until confirmed)",
       "courses",
       "CreateBooking",
       kPurpose,
       {{"course", "parent", "courses/{id}", true, true},
        {"person", "booking.person", "persons/{id}", true},
        {"entitlement", "booking.entitlement",
         "entitlements/{id} (default: the server picks)"},
        {"step", "booking.case_step",
         "the case step the booking answers, cases/{c}/steps/{s}"},
        {"confirm", "confirm", "book as confirmed (course provider only)",
         false, false, false}},
       {},
       kBookingRecord});
  verbs.push_back(
      {"courses",
       "waitlist",
       "put a person on a full course's waitlist",
       "courses",
       "JoinWaitlist",
       kPurpose,
       {{"course", "parent", "courses/{id}", true, true},
        {"person", "waitlist_entry.person", "persons/{id}", true},
        {"entitlement", "waitlist_entry.entitlement", "entitlements/{id}"},
        {"step", "waitlist_entry.case_step", "cases/{c}/steps/{s}"}},
       {},
       {"",
        {{"name", "name"},
         {"person", "person"},
         {"position", "position"},
         {"priority", "priority"},
         {"state", "state"}}}});
  verbs.push_back({"courses",
                   "waitlist-entries",
                   "list a course's waitlist",
                   "courses",
                   "ListWaitlistEntries",
                   kPurpose,
                   {{"course", "parent", "courses/{id}", true, true},
                    {"person", "person", "only this person"},
                    {"state", "states", "only these states (repeatable)"},
                    {"page-size", "page_size", "at most this many"},
                    {"page-token", "page_token", "continue a listing"}},
                   {},
                   {"waitlist_entries", kWaitlistColumns}});
  return verbs;
}

}  // namespace lotse::lotsectl
