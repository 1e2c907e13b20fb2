// A bounded pool of database connections shared by both backends.
//
// Connections are opened lazily, up to `max_size`, by a factory; a caller that
// finds all of them lent out waits for one to come back. A connection that is
// handed back as nullptr (broken, or left in an unknown state) frees its slot
// so that the next caller opens a fresh one.
#ifndef LOTSE_COMMON_STORAGE_INTERNAL_POOL_H_
#define LOTSE_COMMON_STORAGE_INTERNAL_POOL_H_

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/storage/database.h"

namespace lotse::storage::internal {

// How long Acquire waits for a free connection. Far beyond any RPC deadline;
// it exists so that a leaked or nested transaction shows up as an error rather
// than a thread that hangs for ever.
inline constexpr absl::Duration kAcquireTimeout = absl::Seconds(60);

template <typename Conn>
class Pool {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<Conn>>()>;

  Pool(int max_size, Factory factory)
      : max_size_(max_size), factory_(std::move(factory)) {}

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Lends a connection, opening one if the pool has room, otherwise waiting
  // for one to be released.
  absl::StatusOr<std::unique_ptr<Conn>> Acquire() {
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_size_;
    };
    if (!mu_.LockWhenWithTimeout(absl::Condition(&available),
                                 kAcquireTimeout)) {
      mu_.Unlock();
      return StorageUnavailableError(absl::StrCat(
          "storage: no free database connection after ",
          absl::FormatDuration(kAcquireTimeout), " (pool size ", max_size_,
          "); is a transaction held too long or opened inside another?"));
    }
    if (!idle_.empty()) {
      std::unique_ptr<Conn> conn = std::move(idle_.back());
      idle_.pop_back();
      mu_.Unlock();
      return conn;
    }
    ++open_;  // reserve the slot before opening outside the lock
    mu_.Unlock();

    absl::StatusOr<std::unique_ptr<Conn>> conn = factory_();
    if (!conn.ok()) {
      absl::MutexLock lock(&mu_);
      --open_;
    }
    return conn;
  }

  // Returns a connection lent by Acquire. nullptr means the caller discarded
  // it; its slot becomes free for a new connection.
  void Release(std::unique_ptr<Conn> conn) {
    absl::MutexLock lock(&mu_);
    if (conn == nullptr) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }

  int max_size() const { return max_size_; }

 private:
  const int max_size_;
  const Factory factory_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_ ABSL_GUARDED_BY(mu_);
  // Connections in existence: idle, lent out, or being opened.
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lotse::storage::internal

#endif  // LOTSE_COMMON_STORAGE_INTERNAL_POOL_H_
