#include "services/identity/domain/transparency.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errors/status.h"
#include "google/protobuf/util/time_util.h"

namespace lotse::identity {
namespace {

// Method-name verbs, longest first where one is a prefix of another
// ("GetCurrent" before "Get"), and what they mean to the person.
struct Verb {
  absl::string_view prefix;
  absl::string_view code;
  absl::string_view words;
};
constexpr Verb kVerbs[] = {
    {"GetCurrent", "read", "read"},
    {"Get", "read", "read"},
    {"List", "read", "read"},
    {"Search", "search", "searched"},
    {"Find", "search", "searched"},
    {"Lookup", "search", "looked up"},
    {"Match", "search", "searched"},
    {"Create", "create", "recorded"},
    {"Record", "create", "recorded"},
    {"Open", "create", "opened"},
    {"Register", "create", "recorded"},
    {"Propose", "create", "proposed"},
    {"Join", "create", "recorded"},
    {"Link", "create", "recorded"},
    {"Update", "update", "changed"},
    {"Set", "update", "changed"},
    {"Change", "update", "changed"},
    {"Mark", "update", "changed"},
    {"Accept", "update", "accepted"},
    {"Decline", "update", "declined"},
    {"Start", "update", "started"},
    {"Finish", "update", "finished"},
    {"Complete", "update", "completed"},
    {"Confirm", "update", "confirmed"},
    {"Transfer", "update", "transferred"},
    {"Acknowledge", "update", "acknowledged"},
    {"Merge", "update", "merged"},
    {"Cancel", "end", "cancelled"},
    {"Close", "end", "closed"},
    {"Delete", "end", "deleted"},
    {"Withdraw", "end", "withdrew"},
    {"Revoke", "end", "revoked"},
    {"Reject", "end", "rejected"},
    {"Leave", "end", "removed"},
    {"Unlink", "end", "removed"},
    {"Suspend", "update", "suspended"},
    {"Reactivate", "update", "reactivated"},
};

// Method-name nouns (after the verb, singular and plural) and their code
// and words.
struct Noun {
  absl::string_view name;
  absl::string_view code;
  absl::string_view words;
};
constexpr Noun kNouns[] = {
    {"Person", "person", "personal data (name, birth, nationality)"},
    {"Persons", "person", "personal data (name, birth, nationality)"},
    {"ResidenceStatus", "residence_status", "residence status"},
    {"ResidenceStatuses", "residence_status", "residence status"},
    {"Consent", "consent", "consent"},
    {"Consents", "consent", "consents"},
    {"AgencyId", "agency_id", "id an office uses for you"},
    {"AgencyIds", "agency_id", "ids offices use for you"},
    {"Case", "case", "case"},
    {"Cases", "case", "cases"},
    {"CaseState", "case", "case"},
    {"CaseView", "case", "case overview"},
    {"IntegrationPlan", "integration_plan", "integration plan"},
    {"IntegrationPlanVersions", "integration_plan", "integration plan"},
    {"Step", "step", "step in your case"},
    {"Steps", "step", "steps in your case"},
    {"Note", "note", "note in your case"},
    {"Notes", "note", "notes in your case"},
    {"Entitlement", "entitlement", "course entitlement"},
    {"Entitlements", "entitlement", "course entitlements"},
    {"Booking", "booking", "course booking"},
    {"Bookings", "booking", "course bookings"},
    {"Waitlist", "waitlist", "place on a course waiting list"},
    {"WaitlistEntry", "waitlist", "place on a course waiting list"},
    {"WaitlistEntries", "waitlist", "places on course waiting lists"},
    {"Attendance", "attendance", "course attendance"},
    {"AttendanceRecords", "attendance", "course attendance"},
    {"CourseResult", "course_result", "course result"},
    {"CourseResults", "course_result", "course results"},
    {"CandidateProfile", "candidate_profile", "job-seeker profile"},
    {"CandidateProfiles", "candidate_profile", "job-seeker profiles"},
    {"QualificationRecognition", "qualification",
     "recognition of your qualifications"},
    {"Placement", "placement", "job placement"},
    {"Placements", "placement", "job placements"},
    {"PlacementApplied", "placement", "job placement (applied)"},
    {"PlacementInterview", "placement", "job placement (interview)"},
    {"PlacementHired", "placement", "job placement (hired)"},
    {"TrainingTolerationNotice", "training_toleration",
     "training toleration notice"},
    {"TrainingTolerationNotices", "training_toleration",
     "training toleration notices"},
};

// Methods whose verb-and-noun reading would mislead.
struct Special {
  absl::string_view method;
  absl::string_view code;
  absl::string_view words;
};
constexpr Special kSpecial[] = {
    {"CheckAccess", "access.check",
     "checked whether an office may see your data"},
    {"MergePersons", "person.merge", "merged two records about you into one"},
    {"SearchPersons", "person.search", "found you in a search for persons"},
    {"FindDuplicates", "person.duplicate_check",
     "compared your record with another registration"},
    {"LookupPersonByAgencyId", "person.search",
     "found you by an id an office uses for you"},
    {"MatchOffersForCandidate", "job_match.search",
     "searched job offers that fit you"},
    {"MatchCandidatesForOffer", "job_match.search",
     "found you as a candidate for a job offer"},
    {"GetTransparencyReport", "transparency_report.read",
     "made your transparency report"},
    {"ListAuditRecords", "audit_record.read",
     "read the record of who used your data"},
};

// "ResidenceStatus" -> "residence_status".
std::string SnakeCase(absl::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out.push_back('_');
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || !absl::ascii_isupper(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c));
  });
}

OperationWords Other(absl::string_view operation) {
  return {"other", absl::StrCat("accessed your data (", operation, ")")};
}

std::string ServiceOf(absl::string_view recipient) {
  absl::string_view s = recipient;
  if (absl::ConsumePrefix(&s, "services/") && !s.empty()) {
    return absl::StrCat("the ", s, " service");
  }
  return "another service";
}

int ServiceRank(absl::string_view service) {
  const std::vector<std::string>& order = ReportServices();
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] == service) return static_cast<int>(i);
  }
  return static_cast<int>(order.size());
}

int64_t Micros(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::TimestampToMicroseconds(t);
}

// Identity asking a service for a report's records.
bool IsReportFanOut(const lotse::audit::v1::AuditRecord& r) {
  return r.agency() == "services/svc-identity" &&
         r.operation() == "lotse.audit.v1.AuditService/ListAuditRecords";
}

}  // namespace

const std::vector<std::string>& ReportServices() {
  static const auto* services =
      new std::vector<std::string>{"identity", "cases", "courses", "placement"};
  return *services;
}

OperationWords DescribeOperation(absl::string_view operation,
                                 absl::string_view recipient) {
  absl::string_view rest = operation;
  if (absl::ConsumePrefix(&rest, "event:")) {
    // "lotse.courses.v1.CourseResultRecorded" -> "CourseResultRecorded".
    const size_t dot = rest.rfind('.');
    absl::string_view type =
        dot == absl::string_view::npos ? rest : rest.substr(dot + 1);
    return {"event.disclosed",
            absl::StrCat("passed your data on to ", ServiceOf(recipient),
                         type.empty() ? "" : absl::StrCat(" (", type, ")"))};
  }
  const size_t slash = operation.rfind('/');
  if (slash == absl::string_view::npos) return Other(operation);
  const absl::string_view method = operation.substr(slash + 1);
  if (!IsIdentifier(method)) return Other(operation);
  for (const Special& s : kSpecial) {
    if (s.method == method) return {std::string(s.code), std::string(s.words)};
  }
  for (const Verb& v : kVerbs) {
    absl::string_view noun = method;
    if (!absl::ConsumePrefix(&noun, v.prefix) || noun.empty() ||
        !absl::ascii_isupper(static_cast<unsigned char>(noun[0]))) {
      continue;
    }
    for (const Noun& n : kNouns) {
      if (n.name == noun) {
        return {absl::StrCat(n.code, ".", v.code),
                absl::StrCat(v.words, " your ", n.words)};
      }
    }
    // A noun without words of its own: its name, in lower case.
    std::string snake = SnakeCase(noun);
    std::string words = snake;
    std::replace(words.begin(), words.end(), '_', ' ');
    return {absl::StrCat(snake, ".", v.code),
            absl::StrCat(v.words, " your ", words)};
  }
  return Other(operation);
}

std::vector<std::string> AgenciesNamed(const std::vector<ServiceRecords>& all) {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  for (const ServiceRecords& service : all) {
    for (const lotse::audit::v1::AuditRecord& r : service.records) {
      if (!absl::StartsWith(r.agency(), "agencies/")) continue;
      if (seen.insert(r.agency()).second) out.push_back(r.agency());
    }
  }
  return out;
}

std::vector<v1::TransparencyEntry> BuildReportEntries(
    const std::vector<ServiceRecords>& all, const AgencyDirectory& agencies) {
  struct Keyed {
    int64_t micros;
    int service_rank;
    int chain;
    int64_t seq;
    v1::TransparencyEntry entry;
  };
  std::vector<Keyed> keyed;
  absl::flat_hash_set<std::tuple<std::string, int, int64_t>> seen;
  for (const ServiceRecords& service : all) {
    for (const lotse::audit::v1::AuditRecord& r : service.records) {
      if (IsReportFanOut(r)) continue;
      if (!seen.insert({service.service, r.chain(), r.seq()}).second) continue;
      v1::TransparencyEntry e;
      *e.mutable_time() = r.time();
      e.set_service(service.service);
      e.set_agency(r.agency());
      e.set_legal_domain(r.legal_domain());
      if (auto it = agencies.find(r.agency()); it != agencies.end()) {
        e.set_agency_display_name(it->second.display_name);
        if (it->second.legal_domain !=
            lotse::type::v1::LEGAL_DOMAIN_UNSPECIFIED) {
          e.set_legal_domain(it->second.legal_domain);
        }
      }
      e.set_actor(r.actor());
      OperationWords words = DescribeOperation(r.operation(), r.agency());
      e.set_operation_code(std::move(words.code));
      e.set_description(std::move(words.description));
      e.set_operation(r.operation());
      e.set_resource(r.resource());
      *e.mutable_data_categories() = r.data_categories();
      e.set_purpose(r.purpose());
      *e.mutable_legal_bases() = r.legal_bases();
      e.set_outcome(r.outcome());
      e.set_reason(r.reason());
      e.set_disclosure_by_event(absl::StartsWith(r.operation(), "event:"));
      e.set_chain(r.chain());
      e.set_seq(r.seq());
      keyed.push_back({Micros(r.time()), ServiceRank(service.service),
                       static_cast<int>(r.chain()), r.seq(), std::move(e)});
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const Keyed& a, const Keyed& b) {
                     return std::tie(a.micros, a.service_rank, a.chain, a.seq) <
                            std::tie(b.micros, b.service_rank, b.chain, b.seq);
                   });
  std::vector<v1::TransparencyEntry> out;
  out.reserve(keyed.size());
  for (Keyed& k : keyed) out.push_back(std::move(k.entry));
  return out;
}

absl::Status DecideReportAccess(absl::string_view caller_domain,
                                bool person_exists, bool owns_open_case) {
  if (caller_domain == "DATA_PROTECTION") {
    if (person_exists) return absl::OkStatus();
    return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_NOT_FOUND",
                           "no person with this id");
  }
  if (caller_domain != "KOMMUNE") {
    return ErrorWithReason(
        absl::StatusCode::kPermissionDenied, "WRONG_LEGAL_DOMAIN",
        "a transparency report is for the person's case owner (KOMMUNE) and "
        "the data-protection officer (DATA_PROTECTION)");
  }
  if (person_exists && owns_open_case) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NOT_CASE_OWNER",
                         "only the agency owning an open case of the person "
                         "may ask for the person's transparency report");
}

std::vector<std::string> MissingServices(
    const std::vector<std::string>& answered) {
  std::vector<std::string> missing;
  for (const std::string& s : ReportServices()) {
    if (std::find(answered.begin(), answered.end(), s) == answered.end()) {
      missing.push_back(s);
    }
  }
  return missing;
}

}  // namespace lotse::identity
