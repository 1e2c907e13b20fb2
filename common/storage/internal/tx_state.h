// The life cycle both backends' transactions share: open, then either failed
// (a statement returned an error) or finished (committed or rolled back).
//
// After a failed statement PostgreSQL refuses everything but ROLLBACK, while
// SQLite would carry on. We make SQLite refuse too, so that code which
// "catches" a constraint violation and goes on inside the same transaction
// fails in the embedded tests rather than only in production.
#ifndef LOTSE_COMMON_STORAGE_INTERNAL_TX_STATE_H_
#define LOTSE_COMMON_STORAGE_INTERNAL_TX_STATE_H_

#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lotse::storage::internal {

class TxState {
 public:
  // OK while statements may run.
  absl::Status CheckUsable() const {
    switch (state_) {
      case kOpen:
        return absl::OkStatus();
      case kFailed:
        return absl::FailedPreconditionError(absl::StrCat(
            "storage: transaction is aborted by an earlier error and can only "
            "be rolled back (destroy it): ",
            first_error_.message()));
      case kFinished:
        break;
    }
    return absl::FailedPreconditionError(
        "storage: transaction is already committed or rolled back");
  }

  // Records the first failure of an open transaction and passes it through.
  absl::Status Fail(absl::Status status) {
    if (state_ == kOpen && !status.ok()) {
      state_ = kFailed;
      first_error_ = status;
      failed_at_depth_ = depth_;
    }
    return status;
  }

  // What Commit returns for a transaction that is not open: the error that
  // aborted it, with its code (so an ABORTED body is still retried), or a
  // FAILED_PRECONDITION for a second commit.
  absl::Status CommitRefusal() const {
    if (state_ == kFailed) {
      absl::Status refusal(
          first_error_.code(),
          absl::StrCat("storage: commit of a transaction aborted by an "
                       "earlier error: ",
                       first_error_.message()));
      // Keep the payloads (a conflict stays retryable).
      first_error_.ForEachPayload(
          [&refusal](absl::string_view url, const absl::Cord& payload) {
            refusal.SetPayload(url, payload);
          });
      return refusal;
    }
    return CheckUsable();
  }

  // Savepoint bookkeeping. The failure recorded while `depth` scopes were
  // open belongs to the innermost scope opened no later than the failure, so
  // rolling back to a scope clears it only when it happened inside.
  int savepoint_depth() const { return depth_; }
  void PushSavepoint() { ++depth_; }
  // Pops the innermost scope; when it was rolled back and the failure
  // happened inside it, the transaction is open again.
  void PopSavepoint(bool rolled_back) {
    if (rolled_back && state_ == kFailed && failed_at_depth_ >= depth_) {
      state_ = kOpen;
      first_error_ = absl::OkStatus();
    }
    // Hooks added inside the scope go with its writes: undone with them, or
    // kept as part of the enclosing scope.
    if (rolled_back) {
      while (!hooks_.empty() && hooks_.back().depth >= depth_) {
        hooks_.pop_back();
      }
    } else {
      for (Hook& h : hooks_) {
        if (h.depth >= depth_) h.depth = depth_ - 1;
      }
    }
    --depth_;
  }

  // Transaction::OnCommit. Backends call RunCommitHooks after a successful
  // commit; hooks of a transaction that ends otherwise are dropped with it.
  void AddCommitHook(std::function<void()> hook) {
    hooks_.push_back({depth_, std::move(hook)});
  }
  void RunCommitHooks() {
    std::vector<Hook> hooks = std::move(hooks_);
    hooks_.clear();
    for (Hook& h : hooks) h.run();
  }

  bool open() const { return state_ == kOpen; }
  bool finished() const { return state_ == kFinished; }
  void Finish() { state_ = kFinished; }

 private:
  enum State { kOpen, kFailed, kFinished };
  State state_ = kOpen;
  absl::Status first_error_;
  int depth_ = 0;
  int failed_at_depth_ = 0;
  struct Hook {
    int depth;  // savepoint depth it belongs to
    std::function<void()> run;
  };
  // In the order added, so the depths never decrease along the vector.
  std::vector<Hook> hooks_;
};

}  // namespace lotse::storage::internal

#endif  // LOTSE_COMMON_STORAGE_INTERNAL_TX_STATE_H_
