#include "common/api/idempotency.h"

#include <openssl/sha.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace lotse::api {

std::vector<storage::Migration> ApiMigrations() {
  return {{"common.api.0001_request_ids", R"sql(
CREATE TABLE api_request_ids (
  agency_id TEXT NOT NULL,
  method TEXT NOT NULL,
  request_id TEXT NOT NULL,
  request_hash {{BLOB}} NOT NULL,
  resource_name TEXT NOT NULL,
  created_micros BIGINT NOT NULL,
  PRIMARY KEY (agency_id, method, request_id)
);
CREATE INDEX api_request_ids_by_age ON api_request_ids (created_micros);
)sql"}};
}

std::string RequestFingerprint(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    // Map fields would otherwise serialise in hash order, so one request
    // could hash two ways and its retry be refused as a reuse.
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  const std::string typed =
      absl::StrCat(request.GetDescriptor()->full_name(), "\n", bytes);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(typed.data()), typed.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

absl::StatusOr<std::optional<std::string>> LookupRequestId(
    storage::Transaction& tx, const RequestKey& key,
    const std::string& fingerprint) {
  // Length-prefixed parts, so ("a","bc") and ("ab","c") lock differently.
  absl::Status locked = tx.LockNamed(absl::StrCat(
      "lotse.api.request_id:", key.agency_id.size(), ":", key.agency_id,
      key.method.size(), ":", key.method, key.request_id));
  if (!locked.ok()) return locked;
  absl::StatusOr<storage::Rows> rows = tx.Query(
      "SELECT request_hash, resource_name FROM api_request_ids "
      "WHERE agency_id = $1 AND method = $2 AND request_id = $3",
      {key.agency_id, key.method, key.request_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<std::string>();
  absl::StatusOr<std::string> hash = (*rows)[0].GetBytes(0);
  if (!hash.ok()) return hash.status();
  if (*hash != fingerprint) {
    return ErrorWithReason(absl::StatusCode::kInvalidArgument,
                           "REQUEST_ID_REUSED",
                           "request_id was used before for a different "
                           "request; choose a new request_id");
  }
  absl::StatusOr<std::string> resource = (*rows)[0].GetText(1);
  if (!resource.ok()) return resource.status();
  return std::optional<std::string>(*std::move(resource));
}

absl::Status RecordRequestId(storage::Transaction& tx, const RequestKey& key,
                             const std::string& fingerprint,
                             const std::string& resource_name) {
  return tx
      .Execute(
          "INSERT INTO api_request_ids (agency_id, method, request_id, "
          "request_hash, resource_name, created_micros) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          {key.agency_id, key.method, key.request_id,
           storage::Bytes{fingerprint}, resource_name,
           absl::ToUnixMicros(absl::Now())})
      .status();
}

absl::StatusOr<int64_t> PurgeRequestIds(storage::Database& db,
                                        absl::Time cutoff, int max_records) {
  int64_t deleted = 0;
  absl::Status status =
      storage::RunInTransaction(db, [&](storage::Transaction& tx) {
        deleted = 0;
        // Neither backend has a portable DELETE ... LIMIT: pick the oldest
        // keys through the age index, then delete them one by one.
        absl::StatusOr<storage::Rows> rows = tx.Query(
            "SELECT agency_id, method, request_id FROM api_request_ids "
            "WHERE created_micros < $1 ORDER BY created_micros LIMIT $2",
            {absl::ToUnixMicros(cutoff), static_cast<int64_t>(max_records)});
        if (!rows.ok()) return rows.status();
        for (const storage::Row& row : *rows) {
          std::vector<storage::Value> key;
          for (size_t c = 0; c < 3; ++c) {
            absl::StatusOr<std::string> v = row.GetText(c);
            if (!v.ok()) return v.status();
            key.push_back(*std::move(v));
          }
          absl::Status s =
              tx.Execute(
                    "DELETE FROM api_request_ids WHERE agency_id = $1 "
                    "AND method = $2 AND request_id = $3",
                    key)
                  .status();
          if (!s.ok()) return s;
          ++deleted;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return deleted;
}

IdempotentCreate::IdempotentCreate(std::string agency_id, std::string method,
                                   const google::protobuf::Message& request) {
  key_.agency_id = std::move(agency_id);
  key_.method = std::move(method);
  const google::protobuf::FieldDescriptor* field =
      request.GetDescriptor()->FindFieldByName("request_id");
  has_request_id_field_ =
      field != nullptr && !field->is_repeated() &&
      field->type() == google::protobuf::FieldDescriptor::TYPE_STRING;
  if (!has_request_id_field_) return;
  const google::protobuf::Reflection* reflection = request.GetReflection();
  key_.request_id = reflection->GetString(request, field);
  std::unique_ptr<google::protobuf::Message> content(request.New());
  content->CopyFrom(request);
  content->GetReflection()->ClearField(content.get(), field);
  fingerprint_ = RequestFingerprint(*content);
}

absl::StatusOr<std::optional<std::string>> IdempotentCreate::Lookup(
    storage::Transaction& tx) const {
  if (!has_request_id_field_) {
    return absl::InternalError(
        absl::StrCat(key_.method, ": the request has no request_id field"));
  }
  return LookupRequestId(tx, key_, fingerprint_);
}

absl::Status IdempotentCreate::Record(storage::Transaction& tx,
                                      const std::string& resource_name) const {
  if (!has_request_id_field_) {
    return absl::InternalError(
        absl::StrCat(key_.method, ": the request has no request_id field"));
  }
  return RecordRequestId(tx, key_, fingerprint_, resource_name);
}

}  // namespace lotse::api
