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
    } else {
      for (const std::string& id : *changed) EraseLocked(id);
    }
    synced_ = stamp;
    return absl::OkStatus();
  }
}

const std::string* MatchFormCache::FindLocked(const std::string& id) {
  if (auto it = newer_.find(id); it != newer_.end()) return &it->second;
  auto it = older_.find(id);
  if (it == older_.end()) return nullptr;
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

void MatchFormCache::ClearLocked() {
  newer_ = {};
  older_ = {};
  newer_bytes_ = older_bytes_ = 0;
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
