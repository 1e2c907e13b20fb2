// The AuditService's witnessed-checkpoint part (WitnessSource, see
// audit_service.h) served by a process's ServiceWitnesses (witness.h):
// VerifyAuditChain asks the other services for the checkpoints of this
// service's chains they hold and compares; ListWitnessedCheckpoints answers
// from this service's audit_witness table.
#ifndef LOTSE_COMMON_AUDIT_WITNESS_SOURCE_H_
#define LOTSE_COMMON_AUDIT_WITNESS_SOURCE_H_

#include <memory>

#include "common/audit/audit_service.h"

namespace lotse::audit {

class ServiceWitnesses;

// A WitnessSource over `witnesses`, which must outlive it; null when
// `witnesses` is null (a runtime built by hand, as in tests).
std::shared_ptr<WitnessSource> WitnessSourceFor(ServiceWitnesses* witnesses);

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_WITNESS_SOURCE_H_
