// The in-memory matching state of one process: the match index (domain/)
// with the change-counter value it reflects, and the rankings whose pages
// are handed out by token (placement_service.h, "Matching"). Thread-safe.
#ifndef LOTSE_SERVICES_PLACEMENT_SERVICE_MATCH_STATE_H_
#define LOTSE_SERVICES_PLACEMENT_SERVICE_MATCH_STATE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lotse::placement {

// One ranked entry kept for paging: the id (offer id or person id) and
// what the ranking said; the rest is recomputed per page.
struct RankedEntry {
  std::string id;
  int eligibility = 0;
  double score = 0;
};

struct Ranking {
  std::string owner;        // the calling agency's id
  std::string fingerprint;  // the request's fixed fields
  absl::Time created;
  std::vector<RankedEntry> entries;
};

// Rankings by token id, oldest evicted first.
class RankingCache {
 public:
  explicit RankingCache(size_t capacity) : capacity_(capacity) {}
  void Put(const std::string& id, std::shared_ptr<const Ranking> ranking)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<const Ranking> Get(const std::string& id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  void DropOlderThan(absl::Time cutoff) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Ranking>> by_id_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

class MatchState;
struct PlacementOptions;
// Defined with MatchState (match_handlers.cc).
std::shared_ptr<MatchState> MakeMatchState(const PlacementOptions& options);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_SERVICE_MATCH_STATE_H_
