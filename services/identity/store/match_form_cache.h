// The prepared match forms of persons, kept in memory so that scoring
// duplicate candidates reads no rows. A FindDuplicates or CreatePerson call
// scores up to CandidateLimits::total candidates; reading their forms row by
// row was the largest part of such a call (about a quarter of its CPU at
// 100 000 persons, more at 1 000 000, where the rows are rarely cached).
//
// Consistency. The cache follows the key clock of person_store.h: every
// write of a person's form claims a stamp, and a snapshot whose clock reads
// T contains exactly the writes stamped <= T. The cache is synced to a stamp
// S and holds each entry as of S. A transaction that reads T > S first
// drops the entries of persons stamped in (S, T] (one indexed query) and
// moves the cache to T. A form read from the database on a miss is kept
// only when the reader's snapshot is the cache's stamp, so an entry is never
// older than S. A reader whose snapshot is behind the cache gets forms at
// least as new as its snapshot, never older. Several processes may share
// one database: the clock is in the database, so each cache catches up with
// the others' writes.
//
// Memory: the entries' bytes (id, encoded form, a fixed allowance per
// entry) stay below `max_bytes`. Entries live in two generations: when the
// newer one fills half the budget, the older one is dropped and the newer
// becomes the older; a hit in the older generation moves the entry to the
// newer while the newer has room (a hit never drops anything). So what is
// used keeps its place, whatever was loaded once ages out.
//
// Thread-safe.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_MATCH_FORM_CACHE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_MATCH_FORM_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/storage/database.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/store/person_store.h"

namespace lotse::identity {

class MatchFormCache {
 public:
  // Catching up over more changed persons than this drops the whole cache
  // instead (e.g. after a bulk import by another process).
  static constexpr int kMaxCatchUp = 5000;

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t entries = 0;
    int64_t bytes = 0;
    int64_t synced_stamp = -1;  // -1 until the first Load
  };

  // `matcher` decodes the cached bytes and must outlive the cache.
  MatchFormCache(const DuplicateMatcher& matcher, size_t max_bytes);

  MatchFormCache(const MatchFormCache&) = delete;
  MatchFormCache& operator=(const MatchFormCache&) = delete;

  // PersonStore::LoadMatchForms through the cache: the forms of `ids` in
  // that order, leaving out ids that do not exist, as of the snapshot of
  // `store`'s transaction or newer (see above).
  absl::StatusOr<std::vector<MatchCandidate>> Load(
      PersonStore& store, const std::vector<std::string>& ids);

  // Fills the cache from `db` in one pass over the stored forms, in id
  // order and pages of a read transaction each, until the budget is full,
  // every person is in, or `stop` (when given) turns true: so that calls
  // score their candidates from memory instead of reading rows one by one.
  // Each page reads the key clock's stamp first and catches up to it, so
  // its forms are at least as new as the cache's stamp; a page overtaken
  // by a concurrent catch-up is read again (a few times, then left to
  // load on first use). Safe while the cache serves Load; entries already
  // cached are kept. Returns the number of forms added.
  absl::StatusOr<int64_t> Warm(storage::Database& db,
                               const std::atomic<bool>* stop = nullptr);

  // Drops the entries of `ids` now (an erasure that committed), rather
  // than at the next catch-up. A Load whose snapshot predates the erasure
  // may still put one back; the next Load's catch-up past the erasure's
  // stamp drops it again.
  void Forget(const std::vector<std::string>& ids);

  Stats stats() const;

  // From now on also reports lookups (hit or miss), entries, bytes, the
  // budget and whole-cache clears as lotse_identity_match_form_cache_*
  // metrics in `registry`, which must outlive the cache: what operators
  // size --match_form_cache_mb by. Call at most once.
  void ExportMetrics(prometheus::Registry& registry);

 private:
  // Moves the cache to `stamp` if it is behind.
  absl::Status CatchUp(PersonStore& store, int64_t stamp);
  void EraseLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when inserting an entry of `bytes` would drop the older
  // generation (both are in use).
  bool FullLocked(size_t bytes) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void InsertLocked(const std::string& id, std::string encoded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry of `id`, promoted to the newer generation; nullptr if none.
  const std::string* FindLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DuplicateMatcher& matcher_;
  const size_t generation_bytes_;

  mutable absl::Mutex mu_;
  int64_t synced_ ABSL_GUARDED_BY(mu_) = -1;
  absl::flat_hash_map<std::string, std::string> newer_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> older_ ABSL_GUARDED_BY(mu_);
  size_t newer_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t older_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;

  // Set by ExportMetrics; null until then. Updated under mu_, so the gauges
  // never show a state the cache was not in.
  struct Exported {
    prometheus::Counter* hits = nullptr;
    prometheus::Counter* misses = nullptr;
    prometheus::Counter* clears = nullptr;
    prometheus::Gauge* entries = nullptr;
    prometheus::Gauge* bytes = nullptr;
  };
  Exported exported_ ABSL_GUARDED_BY(mu_);
  void PublishSizeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_MATCH_FORM_CACHE_H_
