// Idempotent creates by request_id (DESIGN.md section 6): a retry with the
// same request_id from the same agency returns the first call's resource
// and creates nothing; the same request_id with different content is
// INVALID_ARGUMENT (reason REQUEST_ID_REUSED).
//
// Use IdempotentCreate, made from the call before its write transaction,
// and inside that transaction after validating the request and before
// creating anything:
//
//   const api::IdempotentCreate once(caller.id, rc.method, request);
//   ...
//   absl::StatusOr<std::optional<std::string>> first = once.Lookup(tx);
//   if (!first.ok()) return first.status();         // REQUEST_ID_REUSED
//   if (first->has_value()) return ReadExisting(**first);
//   ... create the resource ...
//   return once.Record(tx, resource_name);
//
// The record commits or rolls back with the resource. Lookup takes a named
// lock on the key, so two concurrent calls with the same key serialise and
// the second sees the first's result (PostgreSQL runs at READ COMMITTED).
// The contracts promise to keep records at least 24 hours; PurgeRequestIds
// deletes older ones.
#ifndef LOTSE_COMMON_API_IDEMPOTENCY_H_
#define LOTSE_COMMON_API_IDEMPOTENCY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "google/protobuf/message.h"

namespace lotse::api {

// Migration "common.api.0001_request_ids" (table api_request_ids). Services
// that take request_ids append it to their migrations.
std::vector<storage::Migration> ApiMigrations();

struct RequestKey {
  std::string agency_id;   // the calling agency
  std::string method;      // e.g. "lotse.identity.v1.IdentityService/X"
  std::string request_id;  // as sent by the client
};

// SHA-256 (32 bytes) of the deterministic serialization of `request`.
// Clear the request_id field of the request before hashing it.
std::string RequestFingerprint(const google::protobuf::Message& request);

// The resource recorded for `key`, if any. INVALID_ARGUMENT with reason
// REQUEST_ID_REUSED when the key was recorded with another fingerprint.
absl::StatusOr<std::optional<std::string>> LookupRequestId(
    storage::Transaction& tx, const RequestKey& key,
    const std::string& fingerprint);

// Deletes records made before `cutoff`, at most `max_records` in one short
// transaction; returns how many. Call again while it returns `max_records`.
absl::StatusOr<int64_t> PurgeRequestIds(storage::Database& db,
                                        absl::Time cutoff,
                                        int max_records = 1000);

// Records that `key` with `fingerprint` created `resource_name`.
absl::Status RecordRequestId(storage::Transaction& tx, const RequestKey& key,
                             const std::string& fingerprint,
                             const std::string& resource_name);

// One create made idempotent by its request's `request_id` field: the key
// (calling agency, RPC, request_id) and the fingerprint of the request
// without its request_id, computed once, outside any transaction. The steps
// inside the transaction are LookupRequestId and RecordRequestId above.
// Immutable, so it may be used from a body that runs more than once.
class IdempotentCreate {
 public:
  // `agency_id`: the resolved calling agency; `method`: the RPC's full name
  // (server::RequestContext::method); `request`: a message with a string
  // field `request_id` (a request without one is a programming error that
  // Lookup reports as INTERNAL).
  IdempotentCreate(std::string agency_id, std::string method,
                   const google::protobuf::Message& request);

  // The resource the first call with this key created, or nullopt; locks
  // the key until the transaction ends. INVALID_ARGUMENT with reason
  // REQUEST_ID_REUSED when that call's request had other content.
  absl::StatusOr<std::optional<std::string>> Lookup(
      storage::Transaction& tx) const;

  // Records that this call created `resource_name`.
  absl::Status Record(storage::Transaction& tx,
                      const std::string& resource_name) const;

  const RequestKey& key() const { return key_; }

 private:
  RequestKey key_;
  std::string fingerprint_;
  bool has_request_id_field_ = false;
};

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_IDEMPOTENCY_H_
