#include "common/events/disclosure.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"

namespace lotse::events {
namespace {

using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;

template <class Payload>
DisclosureRule Rule(std::vector<std::string> person_fields,
                    std::vector<std::string> categories) {
  return {&Payload::default_instance(), std::move(person_fields),
          std::move(categories)};
}

// The string at dotted `path` of `message`; empty when a message on the
// way is unset or the path does not name a singular string field.
std::string StringAt(const Message& message, absl::string_view path) {
  const Message* at = &message;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field =
        at->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr || field->is_repeated()) return "";
    if (i + 1 == parts.size()) {
      if (field->type() != FieldDescriptor::TYPE_STRING) return "";
      return at->GetReflection()->GetString(*at, field);
    }
    if (field->type() != FieldDescriptor::TYPE_MESSAGE) return "";
    if (!at->GetReflection()->HasField(*at, field)) return "";
    at = &at->GetReflection()->GetMessage(*at, field);
  }
  return "";
}

}  // namespace

const std::vector<DisclosureRule>& DisclosureRules() {
  namespace id = ::lotse::identity::v1;
  namespace ca = ::lotse::cases::v1;
  namespace co = ::lotse::courses::v1;
  namespace pl = ::lotse::placement::v1;
  static const auto* rules = new std::vector<DisclosureRule>{
      // identity: a merge names both persons; a consent event says which
      // agency may read what of the person, which is core identity.
      Rule<id::PersonMerged>({"survivor", "merged"}, {"CORE_IDENTITY"}),
      Rule<id::ResidenceStatusChanged>({"person"}, {"RESIDENCE_STATUS"}),
      Rule<id::ConsentRecorded>({"person"}, {"CORE_IDENTITY"}),
      Rule<id::ConsentWithdrawn>({"person"}, {"CORE_IDENTITY"}),
      // A correction says which core identity fields changed.
      Rule<id::PersonRectified>({"person"}, {"CORE_IDENTITY"}),
      // The lifecycle events name the person by id only: no category.
      Rule<id::PersonErased>({"person"}, {}),
      Rule<id::ErasureReported>({"person"}, {}),
      Rule<id::LegalHoldPlaced>({"hold.person"}, {}),
      Rule<id::LegalHoldReleased>({"hold.person"}, {}),
      // cases: the case and step states of the person.
      Rule<ca::CaseOpened>({"person"}, {"CASE_STATUS"}),
      Rule<ca::CaseStateChanged>({"person"}, {"CASE_STATUS"}),
      Rule<ca::CaseTransferred>({"person"}, {"CASE_STATUS"}),
      Rule<ca::CaseClosed>({"person"}, {"CASE_STATUS"}),
      Rule<ca::CasePersonChanged>({"from_person", "to_person"},
                                  {"CASE_STATUS"}),
      Rule<ca::IntegrationPlanUpdated>({"person"}, {"CASE_STATUS"}),
      Rule<ca::StepReferred>({"person"}, {"CASE_STATUS"}),
      Rule<ca::StepStateChanged>({"person"}, {"CASE_STATUS"}),
      Rule<ca::ActivityRecorded>({"person"}, {"CASE_STATUS"}),
      // courses: bookings, waitlists, attendance, results, entitlements
      // are the person's language data.
      Rule<co::CourseBooked>({"context.person"}, {"LANGUAGE"}),
      Rule<co::BookingConfirmed>({"context.person"}, {"LANGUAGE"}),
      Rule<co::BookingCancelled>({"context.person"}, {"LANGUAGE"}),
      Rule<co::BookingHoldExpired>({"context.person"}, {"LANGUAGE"}),
      Rule<co::WaitlistJoined>({"context.person"}, {"LANGUAGE"}),
      Rule<co::WaitlistPromoted>({"context.person"}, {"LANGUAGE"}),
      Rule<co::WaitlistLeft>({"context.person"}, {"LANGUAGE"}),
      Rule<co::CourseStarted>({"context.person"}, {"LANGUAGE"}),
      Rule<co::AttendanceRecorded>({"context.person"}, {"LANGUAGE"}),
      Rule<co::CourseResultRecorded>({"context.person"}, {"LANGUAGE"}),
      Rule<co::EntitlementRecorded>({"person"}, {"LANGUAGE"}),
      Rule<co::EntitlementRevoked>({"person"}, {"LANGUAGE"}),
      // placement: the person's employment data.
      Rule<pl::PlacementProposed>({"context.person"}, {"EMPLOYMENT"}),
      Rule<pl::PlacementStateChanged>({"context.person"}, {"EMPLOYMENT"}),
      Rule<pl::PlacementHired>({"context.person"}, {"EMPLOYMENT"}),
  };
  return *rules;
}

absl::StatusOr<Disclosure> DisclosureOf(const lotse::events::v1::Event& event) {
  Disclosure out;
  const std::string& url = event.payload().type_url();
  const size_t slash = url.rfind('/');
  out.payload_type = slash == std::string::npos ? url : url.substr(slash + 1);
  const std::vector<DisclosureRule>& rules = DisclosureRules();
  auto rule = std::find_if(rules.begin(), rules.end(), [&](const auto& r) {
    return r.prototype->GetDescriptor()->full_name() == out.payload_type;
  });
  if (rule == rules.end()) return out;
  std::unique_ptr<Message> payload(rule->prototype->New());
  if (!payload->ParseFromString(event.payload().value())) {
    return absl::DataLossError(
        absl::StrCat("event payload does not parse as ", out.payload_type));
  }
  for (const std::string& path : rule->person_fields) {
    std::string person = StringAt(*payload, path);
    if (person.empty()) continue;
    if (std::find(out.persons.begin(), out.persons.end(), person) ==
        out.persons.end()) {
      out.persons.push_back(std::move(person));
    }
  }
  out.categories = rule->categories;
  return out;
}

}  // namespace lotse::events
