// Which events disclose a person's data to the service they are delivered
// to (DESIGN.md section 4: an event carrying a person's data to another
// service is a disclosure, audited like any access).
//
// The one table of this file maps each event payload type that names a
// person to the fields that name them and the data categories the payload
// carries; the relay (relay.h) writes an audit record per person for every
// delivery of such an event that carries a category, and the outbox seals
// such an event with the key of its person when it names exactly one. A payload
// type not in the table names no person (agency registry changes, course
// catalogue changes, witnessed audit checkpoints) and is delivered without a
// disclosure record. A new event type that names a person must be added here;
// the test of this file fails for a person-naming field of the events contracts
// that no row covers.
#ifndef LOTSE_COMMON_EVENTS_DISCLOSURE_H_
#define LOTSE_COMMON_EVENTS_DISCLOSURE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::events {

// One row of the table.
struct DisclosureRule {
  // The payload's prototype, e.g. &lotse::courses::v1::CourseBooked::
  // default_instance(); its full name is the payload type.
  const google::protobuf::Message* prototype = nullptr;
  // Fields that hold a person's resource name ("persons/{person}"), as
  // dotted paths of singular string fields, e.g. "context.person".
  std::vector<std::string> person_fields;
  // The data categories the payload carries, e.g. {"LANGUAGE"} (the names
  // of lotse.type.v1.DataCategory without prefix, as audit records hold
  // them). Empty for a payload that names the person by id and carries
  // nothing else of theirs (the lifecycle events: erasure and legal holds):
  // its delivery is no disclosure and it is not sealed (outbox.h).
  std::vector<std::string> categories;
};

// The table, in the order of the events contracts.
const std::vector<DisclosureRule>& DisclosureRules();

// What delivering one event discloses.
struct Disclosure {
  // The payload's full type name, e.g. "lotse.courses.v1.CourseBooked".
  std::string payload_type;
  // The persons named, "persons/{person}", each once, in field order;
  // empty fields are skipped.
  std::vector<std::string> persons;
  std::vector<std::string> categories;
};

// The disclosure of `event`: empty persons for a payload type not in the
// table or whose person fields are all empty. DATA_LOSS when the payload
// does not parse as the type it names.
absl::StatusOr<Disclosure> DisclosureOf(const lotse::events::v1::Event& event);

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_DISCLOSURE_H_
