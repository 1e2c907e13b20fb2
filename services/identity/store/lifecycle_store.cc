#include "services/identity/store/lifecycle_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api/dates.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/lifecycle/holds.h"
#include "lotse/identity/v1/consent.pb.h"
#include "services/identity/domain/person.h"

namespace lotse::identity {
namespace {

using ::lotse::identity::v1::Erasure;
using ::lotse::identity::v1::LegalHold;
using ::lotse::identity::v1::PersonRevision;
using ::lotse::identity::v1::ServiceErasure;
using ::lotse::storage::Bytes;
using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;
using ::lotse::storage::Value;

constexpr char kHoldColumns[] =
    "id, person_id, placing_agency, create_us, end_us, released_us, data";

LegalHold::State HoldStateAt(const HoldRecord& record, absl::Time now) {
  if (record.hold.has_release_time()) return LegalHold::STATE_RELEASED;
  if (now >= record.end_time) return LegalHold::STATE_ENDED;
  return LegalHold::STATE_ACTIVE;
}

absl::StatusOr<std::vector<HoldRecord>> DecodeHolds(absl::StatusOr<Rows> rows,
                                                    absl::Time now) {
  if (!rows.ok()) return rows.status();
  std::vector<HoldRecord> out;
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    absl::StatusOr<std::string> person = row.GetText(1);
    absl::StatusOr<std::string> agency = row.GetText(2);
    absl::StatusOr<int64_t> create_us = row.GetInt(3);
    absl::StatusOr<int64_t> end_us = row.GetInt(4);
    absl::StatusOr<std::string> data = row.GetBytes(6);
    for (const absl::Status& s :
         {id.status(), person.status(), agency.status(), create_us.status(),
          end_us.status(), data.status()}) {
      if (!s.ok()) return s;
    }
    HoldRecord record;
    record.id = *std::move(id);
    record.person_id = *std::move(person);
    record.placing_agency = *std::move(agency);
    record.create_time = absl::FromUnixMicros(*create_us);
    record.end_time = absl::FromUnixMicros(*end_us);
    if (!record.hold.ParseFromString(*data)) {
      return absl::DataLossError("a stored legal hold does not parse");
    }
    record.hold.set_state(HoldStateAt(record, now));
    out.push_back(std::move(record));
  }
  return out;
}

std::string HoldCursor(const HoldRecord& record) {
  return absl::StrCat(absl::ToUnixMicros(record.create_time), "/", record.id);
}

std::string JoinOwners(const std::vector<std::string>& owners) {
  return absl::StrJoin(owners, ",");
}

}  // namespace

storage::Migration LifecycleMigration() {
  return {"identity.0602_lifecycle", R"sql(
CREATE TABLE identity_legal_holds (
  id TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  person_id TEXT NOT NULL,
  placing_agency TEXT NOT NULL,
  create_us BIGINT NOT NULL,
  end_us BIGINT NOT NULL,
  released_us BIGINT,
  data {{BLOB}} NOT NULL
);
CREATE INDEX identity_legal_holds_by_person
  ON identity_legal_holds (person_id, create_us, id);
CREATE INDEX identity_legal_holds_by_agency
  ON identity_legal_holds (placing_agency, create_us, id);
CREATE INDEX identity_legal_holds_by_create
  ON identity_legal_holds (create_us, id);
CREATE TABLE identity_erasures (
  person_id TEXT PRIMARY KEY,
  requesting_agency TEXT NOT NULL,
  request_us BIGINT NOT NULL,
  owners TEXT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE TABLE identity_person_revisions (
  person_id TEXT NOT NULL,
  n BIGINT NOT NULL,
  change_us BIGINT NOT NULL,
  changing_agency TEXT NOT NULL,
  data {{BLOB}} NOT NULL,
  PRIMARY KEY (person_id, n)
);
CREATE INDEX identity_person_revisions_by_change
  ON identity_person_revisions (change_us);
ALTER TABLE identity_consents ADD COLUMN valid_until_us BIGINT;
CREATE INDEX identity_consents_by_withdraw ON identity_consents (withdraw_us);
CREATE INDEX identity_consents_by_valid_until
  ON identity_consents (valid_until_us);
ALTER TABLE identity_residence_statuses ADD COLUMN end_us BIGINT;
CREATE INDEX identity_residence_statuses_by_end
  ON identity_residence_statuses (end_us);
)sql"};
}

std::string HoldResourceName(absl::string_view id) {
  return absl::StrCat("legalHolds/", id);
}

std::optional<absl::Time> HoldEndTime(const lotse::type::v1::Date& end_date) {
  // The same end as every service's hold table computes.
  if (!api::DayNumber(end_date).has_value()) return std::nullopt;
  absl::StatusOr<absl::Time> end = lifecycle::HoldEnd(end_date);
  if (!end.ok()) return std::nullopt;
  return *end;
}

absl::Status InsertHold(Transaction& tx, const HoldRecord& record) {
  return tx
      .Execute(
          "INSERT INTO identity_legal_holds (id, subject, person_id, "
          "placing_agency, create_us, end_us, released_us, data) "
          "VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
          {record.id, record.hold.subject(), record.person_id,
           record.placing_agency, absl::ToUnixMicros(record.create_time),
           absl::ToUnixMicros(record.end_time),
           Bytes{record.hold.SerializeAsString()}})
      .status();
}

absl::StatusOr<std::optional<HoldRecord>> ReadHold(Transaction& tx,
                                                   absl::string_view id,
                                                   absl::Time now) {
  absl::StatusOr<std::vector<HoldRecord>> holds = DecodeHolds(
      tx.Query(absl::StrCat("SELECT ", kHoldColumns,
                            " FROM identity_legal_holds WHERE id = $1"),
               {std::string(id)}),
      now);
  if (!holds.ok()) return holds.status();
  if (holds->empty()) return std::nullopt;
  return std::move(holds->front());
}

absl::StatusOr<bool> WriteHoldRelease(Transaction& tx,
                                      const HoldRecord& record) {
  LegalHold stored = record.hold;
  stored.clear_state();
  absl::StatusOr<int64_t> changed = tx.Execute(
      "UPDATE identity_legal_holds SET released_us = $1, data = $2 "
      "WHERE id = $3 AND released_us IS NULL",
      {absl::ToUnixMicros(api::FromTimestamp(record.hold.release_time())),
       Bytes{stored.SerializeAsString()}, record.id});
  if (!changed.ok()) return changed.status();
  return *changed == 1;
}

absl::StatusOr<HoldPage> ListHolds(Transaction& tx, const HoldFilter& filter,
                                   absl::Time now, absl::string_view cursor,
                                   int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  std::string sql = absl::StrCat("SELECT ", kHoldColumns,
                                 " FROM identity_legal_holds WHERE 1 = 1");
  std::vector<Value> params;
  if (!filter.person_id.empty()) {
    params.push_back(filter.person_id);
    absl::StrAppend(&sql, " AND person_id = $", params.size());
  }
  if (!filter.placing_agency.empty()) {
    params.push_back(filter.placing_agency);
    absl::StrAppend(&sql, " AND placing_agency = $", params.size());
  }
  if (!filter.include_inactive) {
    params.push_back(absl::ToUnixMicros(now));
    absl::StrAppend(&sql, " AND released_us IS NULL AND end_us > $",
                    params.size());
  }
  if (!cursor.empty()) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(cursor, absl::MaxSplits('/', 1));
    int64_t after_us = 0;
    if (!absl::SimpleAtoi(parts.first, &after_us) || parts.second.empty()) {
      return absl::InvalidArgumentError("malformed hold cursor");
    }
    params.push_back(after_us);
    params.push_back(parts.second);
    absl::StrAppend(&sql, " AND (create_us < $", params.size() - 1,
                    " OR (create_us = $", params.size() - 1, " AND id < $",
                    params.size(), "))");
  }
  params.push_back(static_cast<int64_t>(limit) + 1);
  absl::StrAppend(&sql, " ORDER BY create_us DESC, id DESC LIMIT $",
                  params.size());
  absl::StatusOr<std::vector<HoldRecord>> holds =
      DecodeHolds(tx.Query(sql, params), now);
  if (!holds.ok()) return holds.status();
  HoldPage page;
  if (holds->size() > static_cast<size_t>(limit)) {
    holds->resize(limit);
    page.next_cursor = HoldCursor(holds->back());
  }
  page.holds = *std::move(holds);
  return page;
}

absl::StatusOr<std::optional<HoldRecord>> ActiveHoldOn(
    Transaction& tx, absl::string_view person_id, absl::Time now) {
  absl::StatusOr<std::vector<HoldRecord>> holds = DecodeHolds(
      tx.Query(absl::StrCat("SELECT ", kHoldColumns,
                            " FROM identity_legal_holds WHERE person_id = $1 "
                            "AND released_us IS NULL AND end_us > $2 "
                            "ORDER BY end_us DESC, id LIMIT 1"),
               {std::string(person_id), absl::ToUnixMicros(now)}),
      now);
  if (!holds.ok()) return holds.status();
  if (holds->empty()) return std::nullopt;
  return std::move(holds->front());
}

absl::Status InsertErasure(Transaction& tx, const ErasureRecord& record) {
  return tx
      .Execute(
          "INSERT INTO identity_erasures (person_id, requesting_agency, "
          "request_us, owners, data) VALUES ($1, $2, $3, $4, $5)",
          {record.person_id, record.erasure.requesting_agency(),
           absl::ToUnixMicros(
               api::FromTimestamp(record.erasure.request_time())),
           JoinOwners(record.owners),
           Bytes{record.erasure.SerializeAsString()}})
      .status();
}

absl::StatusOr<std::optional<ErasureRecord>> ReadErasure(
    Transaction& tx, absl::string_view person_id) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT owners, data FROM identity_erasures WHERE person_id = $1",
      {std::string(person_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  absl::StatusOr<std::string> owners = rows->front().GetText(0);
  absl::StatusOr<std::string> data = rows->front().GetBytes(1);
  if (!owners.ok()) return owners.status();
  if (!data.ok()) return data.status();
  ErasureRecord record;
  record.person_id = std::string(person_id);
  if (!owners->empty()) {
    record.owners = absl::StrSplit(*owners, ',');
  }
  if (!record.erasure.ParseFromString(*data)) {
    return absl::DataLossError("a stored erasure does not parse");
  }
  return record;
}

bool ErasureComplete(const Erasure& erasure) {
  for (const ServiceErasure& s : erasure.services()) {
    if (s.state() == ServiceErasure::STATE_PENDING ||
        s.state() == ServiceErasure::STATE_UNSPECIFIED) {
      return false;
    }
  }
  return true;
}

absl::Status RecordErasureReport(
    Transaction& tx, const lotse::identity::v1::ErasureReported& report,
    absl::Time now) {
  FieldViolations violations;
  const std::string person_id =
      ParsePersonName(report.person(), "person", &violations);
  if (report.service().empty()) violations.Add("service", "is required");
  if (report.state() != ServiceErasure::STATE_DONE &&
      report.state() != ServiceErasure::STATE_KEPT_BY_RULE) {
    violations.Add("state", "must be STATE_DONE or STATE_KEPT_BY_RULE");
  }
  if (!violations.empty()) return violations.ToStatus();
  if (absl::Status s =
          tx.LockNamed(absl::StrCat("identity.erasure.", person_id));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<ErasureRecord>> record =
      ReadErasure(tx, person_id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "ERASURE_NOT_FOUND",
                           "identity holds no erasure of this person");
  }
  Erasure& erasure = (*record)->erasure;
  ServiceErasure* entry = nullptr;
  for (ServiceErasure& s : *erasure.mutable_services()) {
    if (s.service() == report.service()) entry = &s;
  }
  if (entry == nullptr) {
    entry = erasure.add_services();
    entry->set_service(report.service());
  }
  entry->set_state(report.state());
  entry->set_erased_records(report.erased_records());
  entry->mutable_kept()->CopyFrom(report.kept());
  *entry->mutable_report_time() = api::ToTimestamp(now);
  erasure.set_complete(ErasureComplete(erasure));
  return tx
      .Execute("UPDATE identity_erasures SET data = $1 WHERE person_id = $2",
               {Bytes{erasure.SerializeAsString()}, person_id})
      .status();
}

std::string RevisionResourceName(absl::string_view person_id, int64_t n) {
  return absl::StrCat("persons/", person_id, "/revisions/", n);
}

absl::StatusOr<int64_t> AppendRevision(Transaction& tx,
                                       absl::string_view person_id,
                                       const PersonRevision& revision) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT COALESCE(MAX(n), 0) FROM identity_person_revisions "
      "WHERE person_id = $1",
      {std::string(person_id)});
  if (!rows.ok()) return rows.status();
  absl::StatusOr<int64_t> last = rows->front().GetInt(0);
  if (!last.ok()) return last.status();
  const int64_t n = *last + 1;
  PersonRevision stored = revision;
  stored.set_name(RevisionResourceName(person_id, n));
  absl::StatusOr<int64_t> inserted = tx.Execute(
      "INSERT INTO identity_person_revisions "
      "(person_id, n, change_us, changing_agency, data) "
      "VALUES ($1, $2, $3, $4, $5)",
      {std::string(person_id), n,
       absl::ToUnixMicros(api::FromTimestamp(revision.change_time())),
       revision.changing_agency(), Bytes{stored.SerializeAsString()}});
  if (!inserted.ok()) return inserted.status();
  return n;
}

absl::StatusOr<RevisionPage> ListRevisions(Transaction& tx,
                                           absl::string_view person_id,
                                           int64_t before, int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  std::string sql =
      "SELECT n, data FROM identity_person_revisions WHERE person_id = $1";
  std::vector<Value> params = {std::string(person_id)};
  if (before > 0) {
    params.push_back(before);
    absl::StrAppend(&sql, " AND n < $2");
  }
  params.push_back(static_cast<int64_t>(limit) + 1);
  absl::StrAppend(&sql, " ORDER BY n DESC LIMIT $", params.size());
  absl::StatusOr<Rows> rows = tx.Query(sql, params);
  if (!rows.ok()) return rows.status();
  RevisionPage page;
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(limit); ++i) {
    absl::StatusOr<int64_t> n = (*rows)[i].GetInt(0);
    absl::StatusOr<std::string> data = (*rows)[i].GetBytes(1);
    if (!n.ok()) return n.status();
    if (!data.ok()) return data.status();
    PersonRevision revision;
    if (!revision.ParseFromString(*data)) {
      return absl::DataLossError("a stored revision does not parse");
    }
    page.revisions.push_back(std::move(revision));
    if (rows->size() > static_cast<size_t>(limit) &&
        i + 1 == static_cast<size_t>(limit)) {
      page.next_before = *n;
    }
  }
  return page;
}

absl::StatusOr<int64_t> DeletePersonRows(Transaction& tx,
                                         absl::string_view person_id,
                                         bool keep_consents) {
  std::vector<const char*> statements = {
      "DELETE FROM identity_person_revisions WHERE person_id = $1",
      "DELETE FROM identity_residence_statuses WHERE person_id = $1",
      "DELETE FROM identity_relations WHERE person_id = $1",
      "DELETE FROM identity_proof_failures WHERE person_id = $1"};
  if (!keep_consents) {
    statements.push_back("DELETE FROM identity_consents WHERE person_id = $1");
  }
  int64_t total = 0;
  for (const char* sql : statements) {
    absl::StatusOr<int64_t> deleted = tx.Execute(sql, {std::string(person_id)});
    if (!deleted.ok()) return deleted.status();
    total += *deleted;
  }
  return total;
}

absl::StatusOr<KeptConsents> KeepConsentsAsProof(Transaction& tx,
                                                 absl::string_view person_id,
                                                 absl::Time now) {
  absl::StatusOr<Rows> rows = tx.Query(
      "SELECT id, withdraw_us, data FROM identity_consents "
      "WHERE person_id = $1 ORDER BY id",
      {std::string(person_id)});
  if (!rows.ok()) return rows.status();
  KeptConsents kept;
  for (const Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    absl::StatusOr<std::string> data = row.GetBytes(2);
    if (!id.ok()) return id.status();
    if (!data.ok()) return data.status();
    v1::Consent fields;
    if (!fields.ParseFromString(*data)) {
      return absl::DataLossError("a stored consent does not parse");
    }
    ++kept.count;
    absl::Time end = now;
    if (!row.IsNull(1)) {
      absl::StatusOr<int64_t> withdraw_us = row.GetInt(1);
      if (!withdraw_us.ok()) return withdraw_us.status();
      end = absl::FromUnixMicros(*withdraw_us);
    } else if (fields.has_valid_until() &&
               api::FromTimestamp(fields.valid_until()) <= now) {
      end = api::FromTimestamp(fields.valid_until());
    } else {
      *fields.mutable_withdraw_time() = api::ToTimestamp(now);
      fields.set_withdrawing_agency("services/identity");
      absl::StatusOr<int64_t> changed = tx.Execute(
          "UPDATE identity_consents SET version = version + 1, "
          "withdraw_us = $1, data = $2 WHERE id = $3",
          {absl::ToUnixMicros(now), Bytes{fields.SerializeAsString()}, *id});
      if (!changed.ok()) return changed.status();
    }
    kept.last_end = std::max(kept.last_end, end);
  }
  return kept;
}

}  // namespace lotse::identity
