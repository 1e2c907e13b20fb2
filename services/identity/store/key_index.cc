#include "services/identity/store/key_index.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::identity {
namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

template <typename T>
size_t VectorBytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

}  // namespace

// ---------------------------------------------------------------------------
// StringTable

StringTable::StringTable() : set_(0, Hash{this}, Eq{this}) {}

size_t StringTable::Hash::operator()(uint32_t n) const {
  return absl::Hash<absl::string_view>()(table->Get(n));
}

size_t StringTable::Hash::operator()(absl::string_view s) const {
  return absl::Hash<absl::string_view>()(s);
}

bool StringTable::Eq::operator()(uint32_t a, absl::string_view b) const {
  return table->Get(a) == b;
}

bool StringTable::Eq::operator()(absl::string_view a, uint32_t b) const {
  return a == table->Get(b);
}

absl::string_view StringTable::Get(uint32_t n) const {
  const char* p = entries_[n];
  uint32_t length;
  std::memcpy(&length, p, sizeof length);
  return absl::string_view(p + sizeof length, length);
}

uint32_t StringTable::Find(absl::string_view s) const {
  auto it = set_.find(s);
  return it == set_.end() ? kNone : *it;
}

uint32_t StringTable::Intern(absl::string_view s) {
  if (auto it = set_.find(s); it != set_.end()) return *it;
  const size_t need = sizeof(uint32_t) + s.size();
  if (chunks_.empty() || chunk_used_ + need > kChunkBytes) {
    // A string longer than a chunk gets a chunk of its own size.
    const size_t size = std::max(kChunkBytes, need);
    chunks_.push_back(std::make_unique<char[]>(size));
    chunk_bytes_ += size;
    chunk_used_ = 0;
  }
  char* p = chunks_.back().get() + chunk_used_;
  chunk_used_ += need;
  const uint32_t length = static_cast<uint32_t>(s.size());
  std::memcpy(p, &length, sizeof length);
  std::memcpy(p + sizeof length, s.data(), s.size());
  const uint32_t n = static_cast<uint32_t>(entries_.size());
  entries_.push_back(p);
  set_.insert(n);
  return n;
}

size_t StringTable::bytes() const {
  // The set: a 4-byte slot and a control byte per bucket.
  return chunk_bytes_ + VectorBytes(entries_) +
         set_.capacity() * (sizeof(uint32_t) + 1);
}

// ---------------------------------------------------------------------------
// KeyIndex

KeyIndex::KeyIndex(int scan_page, int catch_up_page)
    : scan_page_(std::max(1, scan_page)),
      catch_up_page_(std::max(1, catch_up_page)) {}

absl::Status KeyIndex::Build(storage::Database& db,
                             const DuplicateMatcher& matcher) {
  const absl::Time start = absl::Now();
  absl::MutexLock catching_up(&catch_up_mu_);
  absl::MutexLock lock(&mu_);
  if (built_) return absl::FailedPreconditionError("key index already built");
  int64_t stamp = 0;
  absl::Status status = storage::RunInTransaction(
      db,
      [&](storage::Transaction& tx) -> absl::Status {
        PersonStore store(tx, matcher);
        absl::StatusOr<int64_t> read = store.ReadKeyStamp();
        if (!read.ok()) return read.status();
        stamp = *read;
        return absl::OkStatus();
      },
      storage::TxMode::kReadOnly);
  if (!status.ok()) return status;

  // Rows come in (key, id) order, so each posting list is appended in id
  // order; a backend collation that orders differently is caught by the
  // check below and its lists sorted afterwards.
  std::vector<bool> unsorted;
  std::string last_key;
  std::string last_id;
  bool first = true;
  uint32_t kid = StringTable::kNone;
  while (true) {
    std::vector<PersonStore::KeyRow> rows;
    status = storage::RunInTransaction(
        db,
        [&](storage::Transaction& tx) -> absl::Status {
          PersonStore store(tx, matcher);
          absl::StatusOr<std::vector<PersonStore::KeyRow>> page =
              store.ScanKeys(first, last_key, last_id, scan_page_);
          if (!page.ok()) return page.status();
          rows = *std::move(page);
          return absl::OkStatus();
        },
        storage::TxMode::kReadOnly);
    if (!status.ok()) return status;
    for (PersonStore::KeyRow& row : rows) {
      if (kid == StringTable::kNone || keys_.Get(kid) != row.block_key) {
        kid = keys_.Intern(row.block_key);
        if (kid >= postings_.size()) {
          postings_.resize(kid + 1);
          unsorted.resize(kid + 1);
        }
      }
      const uint32_t slot = ids_.Intern(row.person_id);
      if (slot >= slot_count_.size()) slot_count_.resize(slot + 1);
      std::vector<uint32_t>& posting = postings_[kid];
      if (!posting.empty() && ids_.Get(posting.back()) >= row.person_id) {
        unsorted[kid] = true;
      }
      posting.push_back(slot);
      ++slot_count_[slot];
      ++postings_total_;
    }
    if (rows.size() < static_cast<size_t>(scan_page_)) break;
    first = false;
    last_key = std::move(rows.back().block_key);
    last_id = std::move(rows.back().person_id);
  }
  for (uint32_t k = 0; k < postings_.size(); ++k) {
    std::vector<uint32_t>& posting = postings_[k];
    if (unsorted[k]) {
      std::sort(posting.begin(), posting.end(), [&](uint32_t a, uint32_t b) {
        return ids_.Get(a) < ids_.Get(b);
      });
      posting.erase(std::unique(posting.begin(), posting.end()), posting.end());
    }
    posting.shrink_to_fit();
  }
  // Each person's run of keys, from the posting lists.
  slot_begin_.assign(slot_count_.size(), 0);
  uint32_t next = 0;
  for (size_t slot = 0; slot < slot_count_.size(); ++slot) {
    slot_begin_[slot] = next;
    next += slot_count_[slot];
  }
  slot_keys_.assign(next, 0);
  std::vector<uint32_t> filled(slot_count_.size(), 0);
  for (uint32_t k = 0; k < postings_.size(); ++k) {
    for (uint32_t slot : postings_[k]) {
      slot_keys_[slot_begin_[slot] + filled[slot]++] = k;
    }
  }
  // Duplicates dropped by the sort above leave counts too high.
  for (size_t slot = 0; slot < slot_count_.size(); ++slot) {
    slot_count_[slot] = filled[slot];
  }
  synced_ = stamp;
  built_ = true;
  build_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  PublishLocked();
  return absl::OkStatus();
}

absl::Status KeyIndex::CatchUp(PersonStore& store) {
  absl::StatusOr<int64_t> stamp = store.ReadKeyStamp();
  if (!stamp.ok()) return stamp.status();
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!built_) {
      return absl::FailedPreconditionError("the key index is not built");
    }
    if (synced_ >= *stamp) return absl::OkStatus();
  }
  // One thread queries; the others wait here and then find the index
  // already moved (or move it further, to their own snapshot).
  absl::MutexLock catching_up(&catch_up_mu_);
  int64_t from;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (synced_ >= *stamp) return absl::OkStatus();
    from = synced_;
  }
  while (from < *stamp) {
    absl::StatusOr<std::vector<PersonStore::StampedId>> page =
        store.KeyedInStampOrder(from, *stamp, catch_up_page_);
    if (!page.ok()) return page.status();
    std::vector<std::string> ids;
    int64_t done;
    if (page->size() < static_cast<size_t>(catch_up_page_)) {
      for (PersonStore::StampedId& p : *page) ids.push_back(std::move(p.id));
      done = *stamp;
    } else if (page->front().stamp == page->back().stamp) {
      // One transaction keyed more persons than a page: all of them.
      const int64_t only = page->front().stamp;
      absl::StatusOr<std::vector<std::string>> all =
          store.KeyedBetween(only - 1, only, std::numeric_limits<int>::max());
      if (!all.ok()) return all.status();
      ids = *std::move(all);
      done = only;
    } else {
      // Up to the last stamp of the page, which may go on in the next one.
      const int64_t last = page->back().stamp;
      for (PersonStore::StampedId& p : *page) {
        if (p.stamp < last) ids.push_back(std::move(p.id));
      }
      done = last - 1;
    }
    if (absl::Status s = Apply(store, ids); !s.ok()) return s;
    from = done;
    absl::MutexLock lock(&mu_);
    synced_ = from;
  }
  return absl::OkStatus();
}

absl::Status KeyIndex::Apply(PersonStore& store,
                             const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<PersonStore::KeyRow>> rows = store.KeysOf(ids);
  if (!rows.ok()) return rows.status();
  absl::flat_hash_map<std::string, std::vector<std::string>> keys;
  for (const std::string& id : ids) keys[id];
  for (PersonStore::KeyRow& row : *rows) {
    keys[row.person_id].push_back(std::move(row.block_key));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [id, person_keys] : keys) ReplaceLocked(id, person_keys);
  caught_up_ += static_cast<int64_t>(keys.size());
  if (exported_.caught_up != nullptr) {
    exported_.caught_up->Increment(static_cast<double>(keys.size()));
  }
  if (slot_keys_garbage_ > slot_keys_.size() / 2 + 1024) CompactLocked();
  PublishLocked();
  return absl::OkStatus();
}

void KeyIndex::ReplaceLocked(absl::string_view id,
                             const std::vector<std::string>& keys) {
  uint32_t slot = ids_.Find(id);
  if (slot == StringTable::kNone) {
    if (keys.empty()) return;  // never indexed, and nothing to index
    slot = ids_.Intern(id);
    slot_begin_.resize(slot + 1, 0);
    slot_count_.resize(slot + 1, 0);
  }
  const uint32_t begin = slot_begin_[slot];
  const uint32_t count = slot_count_[slot];
  for (uint32_t i = begin; i < begin + count; ++i) {
    ErasePostingLocked(slot_keys_[i], slot);
  }
  std::vector<uint32_t> kids;
  kids.reserve(keys.size());
  for (const std::string& key : keys) {
    const uint32_t kid = keys_.Intern(key);
    if (kid >= postings_.size()) postings_.resize(kid + 1);
    kids.push_back(kid);
  }
  std::sort(kids.begin(), kids.end());
  kids.erase(std::unique(kids.begin(), kids.end()), kids.end());
  for (uint32_t kid : kids) InsertPostingLocked(kid, slot);
  if (kids.size() <= count) {
    std::copy(kids.begin(), kids.end(), slot_keys_.begin() + begin);
    slot_keys_garbage_ += count - kids.size();
  } else {
    slot_begin_[slot] = static_cast<uint32_t>(slot_keys_.size());
    slot_keys_.insert(slot_keys_.end(), kids.begin(), kids.end());
    slot_keys_garbage_ += count;
  }
  slot_count_[slot] = static_cast<uint32_t>(kids.size());
}

void KeyIndex::InsertPostingLocked(uint32_t kid, uint32_t slot) {
  std::vector<uint32_t>& posting = postings_[kid];
  const absl::string_view id = ids_.Get(slot);
  auto it = std::lower_bound(
      posting.begin(), posting.end(), id,
      [&](uint32_t s, absl::string_view v) { return ids_.Get(s) < v; });
  if (it != posting.end() && *it == slot) return;
  posting.insert(it, slot);
  ++postings_total_;
}

void KeyIndex::ErasePostingLocked(uint32_t kid, uint32_t slot) {
  std::vector<uint32_t>& posting = postings_[kid];
  const absl::string_view id = ids_.Get(slot);
  auto it = std::lower_bound(
      posting.begin(), posting.end(), id,
      [&](uint32_t s, absl::string_view v) { return ids_.Get(s) < v; });
  if (it == posting.end() || *it != slot) return;
  posting.erase(it);
  --postings_total_;
}

void KeyIndex::CompactLocked() {
  std::vector<uint32_t> compact;
  compact.reserve(slot_keys_.size() - slot_keys_garbage_);
  for (size_t slot = 0; slot < slot_begin_.size(); ++slot) {
    const uint32_t begin = slot_begin_[slot];
    slot_begin_[slot] = static_cast<uint32_t>(compact.size());
    compact.insert(compact.end(), slot_keys_.begin() + begin,
                   slot_keys_.begin() + begin + slot_count_[slot]);
  }
  slot_keys_ = std::move(compact);
  slot_keys_garbage_ = 0;
}

absl::StatusOr<Candidates> KeyIndex::Lookup(
    PersonStore& store, const std::vector<std::string>& keys,
    const CandidateLimits& limits, absl::string_view exclude_id) {
  if (absl::Status s = CatchUp(store); !s.ok()) return s;
  lookups_.fetch_add(1, std::memory_order_relaxed);
  Candidates out;
  if (limits.per_key <= 0 || limits.total <= 0) return out;
  absl::ReaderMutexLock lock(&mu_);
  if (exported_.lookups != nullptr) exported_.lookups->Increment();
  const uint32_t excluded =
      exclude_id.empty() ? StringTable::kNone : ids_.Find(exclude_id);
  // As PersonStore's SQL lookup: distinct keys in the order given, each
  // capped, then ranked by shared keys and id.
  absl::flat_hash_set<absl::string_view> seen_keys;
  absl::flat_hash_map<uint32_t, int> hits;
  std::vector<uint32_t> order;
  const size_t per_key = static_cast<size_t>(limits.per_key);
  for (const std::string& key : keys) {
    if (!seen_keys.insert(key).second) continue;
    if (seen_keys.size() > kMaxCandidateLookupKeys) {
      out.truncated = true;
      break;
    }
    const uint32_t kid = keys_.Find(key);
    if (kid == StringTable::kNone) continue;
    const std::vector<uint32_t>& posting = postings_[kid];
    if (posting.size() > per_key) out.truncated = true;
    const size_t n = std::min(posting.size(), per_key);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t slot = posting[i];
      if (slot == excluded) continue;
      if (hits[slot]++ == 0) order.push_back(slot);
    }
  }
  std::vector<std::pair<int, uint32_t>> ranked;
  ranked.reserve(order.size());
  for (uint32_t slot : order) ranked.emplace_back(hits[slot], slot);
  const size_t keep =
      std::min(ranked.size(), static_cast<size_t>(limits.total));
  std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end(),
                    [&](const std::pair<int, uint32_t>& a,
                        const std::pair<int, uint32_t>& b) {
                      return a.first != b.first
                                 ? a.first > b.first
                                 : ids_.Get(a.second) < ids_.Get(b.second);
                    });
  if (ranked.size() > keep) out.truncated = true;
  out.person_ids.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    out.person_ids.emplace_back(ids_.Get(ranked[i].second));
  }
  return out;
}

size_t KeyIndex::BytesLocked() const {
  size_t bytes = ids_.bytes() + keys_.bytes() + VectorBytes(postings_) +
                 VectorBytes(slot_begin_) + VectorBytes(slot_count_) +
                 VectorBytes(slot_keys_);
  for (const std::vector<uint32_t>& posting : postings_) {
    bytes += VectorBytes(posting);
  }
  return bytes;
}

void KeyIndex::PublishLocked() {
  if (exported_.persons == nullptr) return;
  exported_.persons->Set(static_cast<double>(ids_.size()));
  exported_.keys->Set(static_cast<double>(keys_.size()));
  exported_.postings->Set(static_cast<double>(postings_total_));
}

KeyIndex::Stats KeyIndex::stats() const {
  absl::ReaderMutexLock lock(&mu_);
  Stats stats;
  stats.persons = static_cast<int64_t>(ids_.size());
  stats.keys = static_cast<int64_t>(keys_.size());
  stats.postings = postings_total_;
  stats.bytes = static_cast<int64_t>(BytesLocked());
  stats.synced_stamp = synced_;
  stats.lookups = lookups_.load(std::memory_order_relaxed);
  stats.caught_up = caught_up_;
  stats.build_seconds = build_seconds_;
  return stats;
}

void KeyIndex::ExportMetrics(prometheus::Registry& registry) {
  auto& lookups = prometheus::BuildCounter()
                      .Name("lotse_identity_key_index_lookups_total")
                      .Help(
                          "Candidate lookups answered from the in-memory "
                          "blocking-key index")
                      .Register(registry);
  auto& caught_up =
      prometheus::BuildCounter()
          .Name("lotse_identity_key_index_caught_up_persons_total")
          .Help(
              "Persons whose keys the index re-read because they were "
              "written since it was last in step with the database")
          .Register(registry);
  auto& persons = prometheus::BuildGauge()
                      .Name("lotse_identity_key_index_persons")
                      .Help("Person ids the index holds (merged included)")
                      .Register(registry);
  auto& keys = prometheus::BuildGauge()
                   .Name("lotse_identity_key_index_keys")
                   .Help("Distinct blocking keys the index holds")
                   .Register(registry);
  auto& postings = prometheus::BuildGauge()
                       .Name("lotse_identity_key_index_postings")
                       .Help("(key, person) pairs the index holds")
                       .Register(registry);
  auto& bytes = prometheus::BuildGauge()
                    .Name("lotse_identity_key_index_bytes")
                    .Help("Memory the index held after it was built")
                    .Register(registry);
  auto& build = prometheus::BuildGauge()
                    .Name("lotse_identity_key_index_build_seconds")
                    .Help("Time the start-up build of the index took")
                    .Register(registry);
  absl::MutexLock lock(&mu_);
  exported_.lookups = &lookups.Add({});
  exported_.caught_up = &caught_up.Add({});
  exported_.persons = &persons.Add({});
  exported_.keys = &keys.Add({});
  exported_.postings = &postings.Add({});
  exported_.bytes = &bytes.Add({});
  exported_.bytes->Set(static_cast<double>(BytesLocked()));
  build.Add({}).Set(build_seconds_);
  PublishLocked();
}

}  // namespace lotse::identity
