#include "services/identity/store/match_form_cache.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"

namespace lotse::identity {
namespace {

// What an entry costs beyond its id and form bytes: two string headers and
// the hash table's slot and control byte, rounded up.
constexpr size_t kEntryOverhead = 96;

size_t EntryBytes(const std::string& id, const std::string& encoded) {
  return id.size() + encoded.size() + kEntryOverhead;
}

}  // namespace

MatchFormCache::MatchFormCache(const DuplicateMatcher& matcher,
                               size_t max_bytes)
    : matcher_(matcher), generation_bytes_(max_bytes / 2) {}

absl::StatusOr<std::vector<MatchCandidate>> MatchFormCache::Load(
    PersonStore& store, const std::vector<std::string>& ids) {
  absl::StatusOr<int64_t> stamp = store.ReadKeyStamp();
  if (!stamp.ok()) return stamp.status();
  if (absl::Status s = CatchUp(store, *stamp); !s.ok()) return s;

  // Copies of the hits' bytes, decoded outside the lock.
  std::vector<std::pair<size_t, std::string>> hits;
  std::vector<std::string> missing;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (const std::string* encoded = FindLocked(ids[i]); encoded != nullptr) {
        hits.emplace_back(i, *encoded);
      } else {
        missing.push_back(ids[i]);
      }
    }
    hits_ += static_cast<int64_t>(hits.size());
    misses_ += static_cast<int64_t>(missing.size());
    if (exported_.hits != nullptr) {
      exported_.hits->Increment(static_cast<double>(hits.size()));
      exported_.misses->Increment(static_cast<double>(missing.size()));
      // Hits in the older generation moved to the newer one.
      PublishSizeLocked();
    }
  }

  std::vector<std::optional<PreparedRecord>> found(ids.size());
  for (auto& [index, encoded] : hits) {
    absl::StatusOr<PreparedRecord> decoded = matcher_.DecodePrepared(encoded);
    // Only current bytes are cached; anything else is read afresh.
    if (decoded.ok()) {
      found[index] = *std::move(decoded);
    } else {
      missing.push_back(ids[index]);
    }
  }
  if (!missing.empty()) {
    absl::StatusOr<std::vector<EncodedMatchCandidate>> loaded =
        store.LoadEncodedMatchForms(missing);
    if (!loaded.ok()) return loaded.status();
    absl::flat_hash_map<std::string, PreparedRecord> by_id;
    {
      absl::MutexLock lock(&mu_);
      const bool current = synced_ == *stamp;
      for (EncodedMatchCandidate& candidate : *loaded) {
        if (current) InsertLocked(candidate.id, std::move(candidate.encoded));
        by_id.emplace(std::move(candidate.id), std::move(candidate.prepared));
      }
      PublishSizeLocked();
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      if (found[i].has_value()) continue;
      auto it = by_id.find(ids[i]);
      if (it != by_id.end()) found[i] = it->second;
    }
  }

  std::vector<MatchCandidate> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].has_value()) out.push_back({ids[i], *std::move(found[i])});
  }
  return out;
}

absl::StatusOr<int64_t> MatchFormCache::Warm(storage::Database& db,
                                             const std::atomic<bool>* stop) {
  // Rows per read transaction: short transactions (a long SQLite reader
  // would keep the WAL from being reset), few round trips.
  constexpr int kPage = 5000;
  // A page whose snapshot a concurrent catch-up overtook is read again, at
  // most this often; then it is skipped (its persons load on first use).
  constexpr int kMaxRereads = 8;
  int64_t added = 0;
  std::string after;
  int rereads = 0;
  while (stop == nullptr || !stop->load()) {
    bool done = false;
    bool overtaken = false;
    int64_t page_added = 0;
    std::string last;
    absl::Status s = storage::RunInTransaction(
        db,
        [&](storage::Transaction& tx) -> absl::Status {
          PersonStore store(tx, matcher_);
          done = overtaken = false;
          page_added = 0;
          // The stamp first: every form read after it is at least as new.
          absl::StatusOr<int64_t> stamp = store.ReadKeyStamp();
          if (!stamp.ok()) return stamp.status();
          if (absl::Status s = CatchUp(store, *stamp); !s.ok()) return s;
          absl::StatusOr<std::vector<PersonStore::StoredForm>> page =
              store.ScanMatchForms(after, kPage);
          if (!page.ok()) return page.status();
          if (page->empty()) {
            done = true;
            return absl::OkStatus();
          }
          last = page->back().position;
          done = static_cast<int>(page->size()) < kPage;
          absl::MutexLock lock(&mu_);
          // A Load with a newer snapshot moved the cache on: this page
          // may hold forms older than the cache's stamp.
          if (synced_ != *stamp) {
            overtaken = true;
            return absl::OkStatus();
          }
          for (PersonStore::StoredForm& form : *page) {
            if (FullLocked(EntryBytes(form.id, form.encoded))) {
              done = true;
              break;
            }
            if (newer_.contains(form.id) || older_.contains(form.id)) continue;
            InsertLocked(form.id, std::move(form.encoded));
            ++page_added;
          }
          PublishSizeLocked();
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!s.ok()) return s;
    added += page_added;
    if (done) break;
    if (overtaken && ++rereads <= kMaxRereads) continue;
    rereads = 0;
    after = last;
  }
  return added;
}

bool MatchFormCache::FullLocked(size_t bytes) const {
  return bytes > generation_bytes_ ||
         (!older_.empty() && newer_bytes_ + bytes > generation_bytes_);
}

absl::Status MatchFormCache::CatchUp(PersonStore& store, int64_t stamp) {
  while (true) {
    int64_t from;
    {
      absl::MutexLock lock(&mu_);
      if (synced_ >= stamp) return absl::OkStatus();
      if (newer_.empty() && older_.empty()) {
        // Nothing to drop.
        synced_ = stamp;
        return absl::OkStatus();
      }
      from = synced_;
    }
    // The query runs outside the lock; whoever finishes first moves the
    // cache, and the others see that and start over from there.
    absl::StatusOr<std::vector<std::string>> changed =
        store.KeyedBetween(from, stamp, kMaxCatchUp + 1);
    if (!changed.ok()) return changed.status();
    absl::MutexLock lock(&mu_);
    if (synced_ != from) continue;
    if (changed->size() > static_cast<size_t>(kMaxCatchUp)) {
      ClearLocked();
      if (exported_.clears != nullptr) exported_.clears->Increment();
    } else {
      for (const std::string& id : *changed) EraseLocked(id);
    }
    PublishSizeLocked();
    synced_ = stamp;
    return absl::OkStatus();
  }
}

const std::string* MatchFormCache::FindLocked(const std::string& id) {
  if (auto it = newer_.find(id); it != newer_.end()) return &it->second;
  auto it = older_.find(id);
  if (it == older_.end()) return nullptr;
  // Promoting into a full newer generation would drop the older one — a
  // hit would evict half the cache (a warmed cache is full from the
  // start). The entry then stays where it is until a miss rotates.
  if (newer_bytes_ + EntryBytes(id, it->second) > generation_bytes_) {
    return &it->second;
  }
  std::string encoded = std::move(it->second);
  older_bytes_ -= EntryBytes(id, encoded);
  older_.erase(it);
  InsertLocked(id, std::move(encoded));
  auto promoted = newer_.find(id);
  return promoted == newer_.end() ? nullptr : &promoted->second;
}

void MatchFormCache::InsertLocked(const std::string& id, std::string encoded) {
  const size_t bytes = EntryBytes(id, encoded);
  if (bytes > generation_bytes_) return;
  EraseLocked(id);
  if (newer_bytes_ + bytes > generation_bytes_) {
    older_ = std::move(newer_);
    older_bytes_ = newer_bytes_;
    newer_ = {};
    newer_bytes_ = 0;
  }
  newer_bytes_ += bytes;
  newer_.emplace(id, std::move(encoded));
}

void MatchFormCache::EraseLocked(const std::string& id) {
  if (auto it = newer_.find(id); it != newer_.end()) {
    newer_bytes_ -= EntryBytes(id, it->second);
    newer_.erase(it);
  }
  if (auto it = older_.find(id); it != older_.end()) {
    older_bytes_ -= EntryBytes(id, it->second);
    older_.erase(it);
  }
}

void MatchFormCache::Forget(const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : ids) EraseLocked(id);
  PublishSizeLocked();
}

void MatchFormCache::ClearLocked() {
  newer_ = {};
  older_ = {};
  newer_bytes_ = older_bytes_ = 0;
}

void MatchFormCache::ExportMetrics(prometheus::Registry& registry) {
  auto& lookups =
      prometheus::BuildCounter()
          .Name("lotse_identity_match_form_cache_lookups_total")
          .Help("Duplicate candidates looked up in the match-form cache")
          .Register(registry);
  auto& clears =
      prometheus::BuildCounter()
          .Name("lotse_identity_match_form_cache_clears_total")
          .Help(
              "Times the cache was emptied because more persons changed "
              "than it catches up with one by one")
          .Register(registry);
  auto& entries = prometheus::BuildGauge()
                      .Name("lotse_identity_match_form_cache_entries")
                      .Help("Persons whose match form is cached")
                      .Register(registry);
  auto& bytes =
      prometheus::BuildGauge()
          .Name("lotse_identity_match_form_cache_bytes")
          .Help("Bytes the cached match forms take, against the budget")
          .Register(registry);
  auto& budget = prometheus::BuildGauge()
                     .Name("lotse_identity_match_form_cache_budget_bytes")
                     .Help("--match_form_cache_mb in bytes")
                     .Register(registry);
  budget.Add({}).Set(static_cast<double>(2 * generation_bytes_));
  absl::MutexLock lock(&mu_);
  exported_.hits = &lookups.Add({{"result", "hit"}});
  exported_.misses = &lookups.Add({{"result", "miss"}});
  exported_.clears = &clears.Add({});
  exported_.entries = &entries.Add({});
  exported_.bytes = &bytes.Add({});
  PublishSizeLocked();
}

void MatchFormCache::PublishSizeLocked() {
  if (exported_.entries == nullptr) return;
  exported_.entries->Set(static_cast<double>(newer_.size() + older_.size()));
  exported_.bytes->Set(static_cast<double>(newer_bytes_ + older_bytes_));
}

MatchFormCache::Stats MatchFormCache::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats;
  stats.hits = hits_;
  stats.misses = misses_;
  stats.entries = static_cast<int64_t>(newer_.size() + older_.size());
  stats.bytes = static_cast<int64_t>(newer_bytes_ + older_bytes_);
  stats.synced_stamp = synced_;
  return stats;
}

}  // namespace lotse::identity
