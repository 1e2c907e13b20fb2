#include "common/lifecycle/erasure.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/api/time.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/lifecycle/person_keys.h"
#include "google/protobuf/timestamp.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/type/v1/data_category.pb.h"

namespace lotse::lifecycle {
namespace {

using ::lotse::identity::v1::ErasureReported;
using ::lotse::identity::v1::KeptData;
using ::lotse::identity::v1::ServiceErasure;

constexpr char kOperation[] = "lotse.lifecycle/ErasePerson";

// The person id of "persons/{id}", or empty when `name` is not one.
std::string PersonIdOf(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "persons/")) return "";
  if (name.empty() || absl::StrContains(name, '/') ||
      absl::StrContains(name, ',')) {
    return "";
  }
  return std::string(name);
}

lotse::type::v1::DataCategory CategoryEnum(const std::string& name) {
  lotse::type::v1::DataCategory out =
      lotse::type::v1::DATA_CATEGORY_UNSPECIFIED;
  if (!lotse::type::v1::DataCategory_Parse(absl::StrCat("DATA_CATEGORY_", name),
                                           &out)) {
    return lotse::type::v1::DATA_CATEGORY_UNSPECIFIED;
  }
  return out;
}

// The category of `kind`: the rule's when the file has one, else the
// kind's own.
std::string CategoryOfKind(const std::string& kind,
                           const RetentionRules& rules) {
  if (const RetentionRule* rule = rules.Find(kind); rule != nullptr) {
    return rule->category;
  }
  for (const ResourceKind& k : KnownResourceKinds()) {
    if (k.name == kind) return k.category;
  }
  return "";
}

// The data categories `service` holds about persons (its resource kinds,
// audit records aside), each once, in the order of KnownResourceKinds.
std::vector<std::string> CategoriesOfService(const std::string& service) {
  std::vector<std::string> out;
  for (const ResourceKind& k : KnownResourceKinds()) {
    if (k.service != service || k.category == "AUDIT") continue;
    bool seen = false;
    for (const std::string& c : out) seen = seen || c == k.category;
    if (!seen) out.push_back(k.category);
  }
  return out;
}

}  // namespace

ErasureReported MakeErasureReport(const std::string& person,
                                  const std::string& service,
                                  const ErasureResult& result,
                                  const RetentionRules& rules) {
  ErasureReported report;
  report.set_person(absl::StartsWith(person, "persons/")
                        ? person
                        : absl::StrCat("persons/", person));
  report.set_service(service);
  report.set_erased_records(result.erased);
  for (const ErasureResult::Kept& kept : result.kept) {
    if (kept.count <= 0) continue;
    KeptData* data = report.add_kept();
    data->set_resource_kind(kept.kind);
    data->set_category(CategoryEnum(CategoryOfKind(kept.kind, rules)));
    data->set_record_count(kept.count);
    if (const RetentionRule* rule = rules.Find(kept.kind); rule != nullptr) {
      data->set_legal_reference(rule->basis);
    }
    // Left unset while the period has not started (the anchor lies ahead,
    // so no date can be named yet).
    if (kept.keep_until != absl::InfiniteFuture() &&
        kept.keep_until != absl::InfinitePast()) {
      *data->mutable_keep_until() = api::ToTimestamp(kept.keep_until);
    }
  }
  report.set_state(report.kept().empty() ? ServiceErasure::STATE_DONE
                                         : ServiceErasure::STATE_KEPT_BY_RULE);
  return report;
}

absl::Status ApplyPersonErased(storage::Transaction& tx,
                               const lotse::identity::v1::PersonErased& event,
                               const std::string& service,
                               const RetentionRules& rules,
                               const EraseFn& erase, absl::Time now) {
  const std::string person = PersonIdOf(event.person());
  if (person.empty()) {
    return InvalidArgumentError(
        {{"person", "must be a person resource name \"persons/{person}\""}});
  }
  if (service.empty()) {
    return InvalidArgumentError({{"service", "must not be empty"}});
  }
  if (!erase) return absl::InvalidArgumentError("no erase function");

  absl::StatusOr<ErasureResult> result = erase(tx, person, rules, now);
  if (!result.ok()) return result.status();

  // The event, then the key, then the audit record: the order in which
  // every writer takes the outbox lock, key rows and the audit lock
  // (outbox.h), so that on PostgreSQL an erasure cannot deadlock with a
  // transaction enqueuing an event about the same person.
  lotse::events::v1::Event out;
  out.set_ordering_key(event.person());
  out.set_source(service);
  out.mutable_payload()->PackFrom(
      MakeErasureReport(person, service, *result, rules));
  if (absl::Status s = events::EnqueueEvent(tx, std::move(out)); !s.ok()) {
    return s;
  }
  if (absl::Status s = ShredPersonKey(tx, person); !s.ok()) return s;

  // The requesting agency's own domain is not known here; the record says
  // that the service acted, on whose request and on which ground.
  audit::AuditRecord record;
  absl::string_view agency = event.requesting_agency();
  absl::ConsumePrefix(&agency, "agencies/");
  record.agency_id = std::string(agency);
  record.legal_domain = "SERVICE";
  record.actor = "event-consumer";
  record.purpose = "erasure";
  record.operation = kOperation;
  record.resource = event.person();
  record.data_categories = CategoriesOfService(service);
  for (const std::string& category : record.data_categories) {
    record.legal_bases.push_back(
        {category, audit::BasisKind::kDataProtection, "", ""});
  }
  return audit::AppendAudit(tx, record);
}

}  // namespace lotse::lifecycle
