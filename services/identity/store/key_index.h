// The blocking-key index of persons (identity_person_keys) in memory, so
// that finding duplicate candidates reads no B-tree pages. At a million
// persons the point lookups on identity_person_keys were most of a
// FindDuplicates call, and they grow with the data: B-tree pages that any
// commit may push out of the connections' page caches.
//
// Answers. Lookup gives exactly what PersonStore's SQL lookup gives for the
// same keys and limits: per distinct key at most CandidateLimits::per_key
// persons, the first in id order; at most kMaxCandidateLookupKeys distinct
// keys; `exclude_id` dropped after the per-key cut; the persons sharing the
// most keys first, ties by id; `truncated` when a cap cut something off.
// Keys are kept as strings, so two keys never share a posting list.
//
// Consistency, like MatchFormCache: every write of a person's keys (create,
// update, and the removal of the merged person's keys by a merge) claims a
// stamp of the key clock (person_store.h). The index is synced to a stamp S
// and holds every person's keys as of S or newer. A lookup first reads its
// snapshot's stamp T; if T > S it catches up: it reads the persons stamped
// in (S, T] (KeyedInStampOrder, paged) and their current keys, replaces
// their entries, and moves the index to T. Catch-ups are serialised; a
// lookup whose snapshot is behind the index gets the index's newer answer.
// Several processes may share one database: the clock is in the database,
// so each index sees the others' writes. The index must not serve a
// transaction that claimed a stamp (its own writes are not committed);
// PersonStore falls back to SQL there.
//
// Memory: person ids and keys are interned once (length-prefixed bytes in
// 1 MiB chunks, found through a hash set of 32-bit numbers); each key's
// posting list is a vector of 32-bit person numbers sorted by id; each
// person's keys are a run of 32-bit key numbers in one shared array. About
// 50 bytes per person plus 8 per (key, person) pair; persons are never
// forgotten (a merged person keeps its number, without keys).
//
// Thread-safe.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_KEY_INDEX_H_
#define LOTSE_SERVICES_IDENTITY_STORE_KEY_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/storage/database.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/store/person_store.h"

namespace lotse::identity {

// Strings numbered 0, 1, 2, ... in the order they were first added; never
// removed. Not thread-safe; not movable (the hash set refers to it).
class StringTable {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  StringTable();
  StringTable(const StringTable&) = delete;
  StringTable& operator=(const StringTable&) = delete;

  // The number of `s`, adding it if it is new.
  uint32_t Intern(absl::string_view s);
  // The number of `s`, or kNone.
  uint32_t Find(absl::string_view s) const;
  absl::string_view Get(uint32_t n) const;
  size_t size() const { return entries_.size(); }
  // Memory held, in bytes.
  size_t bytes() const;

 private:
  struct Hash {
    using is_transparent = void;
    const StringTable* table;
    size_t operator()(uint32_t n) const;
    size_t operator()(absl::string_view s) const;
  };
  struct Eq {
    using is_transparent = void;
    const StringTable* table;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t a, absl::string_view b) const;
    bool operator()(absl::string_view a, uint32_t b) const;
  };

  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = 0;
  size_t chunk_bytes_ = 0;            // of all chunks
  std::vector<const char*> entries_;  // each: 4-byte length, then bytes
  absl::flat_hash_set<uint32_t, Hash, Eq> set_;
};

class KeyIndex {
 public:
  // Rows of identity_person_keys per query of the build's scan.
  static constexpr int kScanPage = 50000;
  // Persons per query while catching up.
  static constexpr int kCatchUpPage = 2000;

  struct Stats {
    int64_t persons = 0;        // ids ever seen, merged ones included
    int64_t keys = 0;           // distinct keys ever seen
    int64_t postings = 0;       // (key, person) pairs
    int64_t bytes = 0;          // memory held
    int64_t synced_stamp = -1;  // -1 until Build
    int64_t lookups = 0;
    int64_t caught_up = 0;  // persons re-read by catch-ups
    double build_seconds = 0;
  };

  // The page sizes are for tests; use the defaults.
  explicit KeyIndex(int scan_page = kScanPage,
                    int catch_up_page = kCatchUpPage);
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  // Fills the empty index from `db`: reads the key clock's stamp S, then
  // every row of identity_person_keys in key order, kScanPage rows per
  // read-only transaction (never one huge result). Rows changed during the
  // scan are stamped after S, so the first lookup's catch-up re-reads
  // them. `matcher` is only for PersonStore's constructor.
  absl::Status Build(storage::Database& db, const DuplicateMatcher& matcher);

  // The candidates for `keys` (LookupKeys of a record, or widened search
  // keys) as of the snapshot of `store`'s transaction or newer, exactly as
  // PersonStore's SQL lookup would find them (see above). Catches up first.
  // FAILED_PRECONDITION before Build.
  absl::StatusOr<Candidates> Lookup(PersonStore& store,
                                    const std::vector<std::string>& keys,
                                    const CandidateLimits& limits,
                                    absl::string_view exclude_id);

  // Moves the index to the stamp of `store`'s snapshot if it is behind.
  absl::Status CatchUp(PersonStore& store);

  Stats stats() const;

  // From now on also reports persons, keys, postings, bytes, lookups and
  // catch-up re-reads as lotse_identity_key_index_* metrics in `registry`,
  // which must outlive the index. Call at most once.
  void ExportMetrics(prometheus::Registry& registry);

 private:
  // Replaces the keys of person `id` (which may be new) with `keys`.
  void ReplaceLocked(absl::string_view id, const std::vector<std::string>& keys)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts / removes `slot` in posting list `kid`, keeping it in id order.
  void InsertPostingLocked(uint32_t kid, uint32_t slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ErasePostingLocked(uint32_t kid, uint32_t slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rewrites slot_keys_ without the runs replaced since.
  void CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t BytesLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PublishLocked() ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Applies the current keys of persons `ids`, read through `store`.
  absl::Status Apply(PersonStore& store, const std::vector<std::string>& ids);

  const int scan_page_;
  const int catch_up_page_;

  // Held by the one thread that catches up (its queries run outside mu_).
  absl::Mutex catch_up_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  mutable absl::Mutex mu_;
  bool built_ ABSL_GUARDED_BY(mu_) = false;
  int64_t synced_ ABSL_GUARDED_BY(mu_) = -1;
  StringTable ids_ ABSL_GUARDED_BY(mu_);   // person id -> slot
  StringTable keys_ ABSL_GUARDED_BY(mu_);  // block key -> key number
  // Per key number: the slots of its persons, in id order.
  std::vector<std::vector<uint32_t>> postings_ ABSL_GUARDED_BY(mu_);
  // Per slot: its key numbers are slot_keys_[begin, begin + count).
  std::vector<uint32_t> slot_begin_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> slot_count_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> slot_keys_ ABSL_GUARDED_BY(mu_);
  size_t slot_keys_garbage_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t postings_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> lookups_{0};  // counted under the reader lock
  int64_t caught_up_ ABSL_GUARDED_BY(mu_) = 0;
  double build_seconds_ ABSL_GUARDED_BY(mu_) = 0;

  struct Exported {
    prometheus::Counter* lookups = nullptr;
    prometheus::Counter* caught_up = nullptr;
    prometheus::Gauge* persons = nullptr;
    prometheus::Gauge* keys = nullptr;
    prometheus::Gauge* postings = nullptr;
    prometheus::Gauge* bytes = nullptr;
  };
  Exported exported_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_KEY_INDEX_H_
