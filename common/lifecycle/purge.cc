#include "common/lifecycle/purge.h"

namespace lotse::lifecycle {

struct PurgeJob::Metrics {};

PurgeJob::PurgeJob(storage::Database& db, const RetentionRules& rules,
                   std::vector<PurgeTask> tasks, PurgeOptions options,
                   prometheus::Registry*)
    : db_(db),
      rules_(rules),
      tasks_(std::move(tasks)),
      options_(std::move(options)) {}

PurgeJob::~PurgeJob() { Stop(); }

absl::StatusOr<PurgeReport> PurgeJob::RunOnce(absl::Time) {
  return absl::UnimplementedError("PurgeJob::RunOnce");
}

void PurgeJob::Start() {}
void PurgeJob::Stop() {}
void PurgeJob::Loop() {}

}  // namespace lotse::lifecycle
