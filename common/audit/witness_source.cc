#include "common/audit/witness_source.h"

#include "absl/time/clock.h"
#include "common/audit/witness.h"

namespace lotse::audit {
namespace {

class ServiceWitnessSource final : public WitnessSource {
 public:
  explicit ServiceWitnessSource(ServiceWitnesses& witnesses)
      : witnesses_(witnesses) {}

  absl::Status CheckChain(const AuditDatabases& dbs, Chain chain,
                          absl::Duration timeout,
                          v1::ChainVerification* verification) override {
    return witnesses_.CheckChain(dbs.For(chain), chain, absl::Now() + timeout,
                                 verification);
  }

  absl::Status ListWitnessedCheckpoints(
      const v1::ListWitnessedCheckpointsRequest& request,
      v1::ListWitnessedCheckpointsResponse* response) override {
    absl::StatusOr<v1::ListWitnessedCheckpointsResponse> listed =
        witnesses_.ListWitnessed(request);
    if (!listed.ok()) return listed.status();
    *response = *std::move(listed);
    return absl::OkStatus();
  }

 private:
  ServiceWitnesses& witnesses_;
};

}  // namespace

std::shared_ptr<WitnessSource> WitnessSourceFor(ServiceWitnesses* witnesses) {
  if (witnesses == nullptr) return nullptr;
  return std::make_shared<ServiceWitnessSource>(*witnesses);
}

}  // namespace lotse::audit
