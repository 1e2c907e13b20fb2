// The append-only, hash-chained audit logs of one service (DESIGN.md
// section 4).
//
// Every access to personal data, allowed or denied, is recorded as one row of
// one of two chains (Chain below): the change chain, table `audit_log`, for
// records that commit in the transaction of the change they record; and the
// read chain, table `audit_read_log`, for calls that changed nothing. Rows
// carry a contiguous sequence number 1, 2, 3, ... (assigned under the chain's
// named lock, not by autoincrement, so a missing row shows as a gap) and a
// SHA-256 hash over the previous row's hash and this row's canonical bytes.
// Editing, deleting, reordering or inserting a row therefore breaks the chain
// at that row, which VerifyAuditChain reports. Truncating the tail is only
// visible against a head (seq and hash) remembered elsewhere, e.g. exported
// periodically to another system.
//
// Appending serialises all transactions that append to one chain on its
// lock until they commit; keep audited transactions short.
//
// Why two chains: a read is audited by a commit. Were that commit in the
// service's data database, every audited read would be a write, and on
// SQLite every write makes every other connection drop its page cache, so
// reads would find the data pages cold. The read chain therefore lives in a
// database of its own where the deployment allows (a second SQLite file;
// on PostgreSQL, whose buffer cache is shared, its own table in the
// service database). Both chains are verified, read and listed alike.
//
// What a record says besides who, what and when: the persons it is about
// (person ids, so a person's records are found through the side table
// `<chain table>_persons` (person_id, seq), written in the transaction of
// the row) and, for an allowed access, the legal basis per data category
// (LegalBasis). Both are part of the hashed bytes of rows written in
// format 2; rows written in format 1, before they existed, hash as they
// always did and verify unchanged (see CanonicalAuditBytes for both
// layouts). ListAuditRecords queries both chains by person, agency and
// time. The side table is not hashed itself; VerifyAuditChain compares it
// with the persons of the hashed rows, so a record hidden from or added to
// a person's filter shows as a break at that record.
#ifndef LOTSE_COMMON_AUDIT_AUDIT_LOG_H_
#define LOTSE_COMMON_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"

namespace lotse::audit {

enum class Outcome { kAllowed = 1, kDenied = 2, kError = 3 };

enum class Chain {
  // Records written in the transaction of a change (audit_log, lock
  // "lotse.audit"): the change and its trail commit or roll back together.
  kChanges,
  // Records of calls that changed nothing: successful reads, refused and
  // failed calls (audit_read_log, lock "lotse.audit.reads").
  kReads,
};

// "changes", "reads": how tools and logs name a chain.
const char* ChainName(Chain chain);

// "ALLOWED", "DENIED", "ERROR": the spelling stored in the table.
const char* OutcomeName(Outcome outcome);

// On what ground an access to one data category was allowed (the values
// of lotse.audit.v1.LegalBasisKind).
enum class BasisKind {
  kOwner = 1,           // the agency wrote or owns the data
  kRule = 2,            // a legal-basis rule; LegalBasis::rule_id names it
  kConsent = 3,         // a consent; LegalBasis::consent names it
  kService = 4,         // a Lotse service acting on its own behalf
  kDataProtection = 5,  // the deployment's data-protection role
};

// "OWNER", "RULE", "CONSENT", "SERVICE", "DATA_PROTECTION".
const char* BasisKindName(BasisKind kind);

// The ground of an allowed access to one data category. Every string must
// be free of ',' and '|' (they delimit the stored list; the hash does not
// depend on them).
struct LegalBasis {
  std::string category;  // e.g. "RESIDENCE_STATUS"; non-empty
  BasisKind kind = BasisKind::kOwner;
  std::string rule_id;  // kRule: the rule's id in the rules file
  std::string consent;  // kConsent: "persons/{person}/consents/{id}"

  bool operator==(const LegalBasis& o) const {
    return category == o.category && kind == o.kind && rule_id == o.rule_id &&
           consent == o.consent;
  }
};

// The current canonical format, written by AppendAudit.
inline constexpr int kCurrentAuditFormat = 2;

struct AuditRecord {
  // Assigned by AppendAudit; ignored on input.
  int64_t seq = 0;
  // The canonical format of the row (1 or 2). Ignored by AppendAudit, which
  // writes kCurrentAuditFormat; filled when read back. ComputeAuditHash
  // hashes format 1 for 1 and the current format otherwise.
  int format = 0;
  // When the access happened. absl::InfinitePast() (the default) means "now"
  // at append time. Stored with microsecond precision (truncated).
  absl::Time time = absl::InfinitePast();
  std::string agency_id;     // the calling agency, from its client certificate
  std::string legal_domain;  // the agency's legal domain, e.g. "JOBCENTER"
  std::string actor;         // the caseworker the agency vouches for
  std::string purpose;       // the purpose named with the call
  // What was done, e.g. the RPC method
  // "lotse.identity.v1.IdentityService/GetPerson".
  std::string operation;
  // The resource touched, e.g. "persons/abc" or "cases/x/steps/y".
  std::string resource;
  // Data categories touched, e.g. {"CORE_IDENTITY", "RESIDENCE_STATUS"}.
  // Each must be non-empty and must not contain ','.
  std::vector<std::string> data_categories;
  Outcome outcome = Outcome::kAllowed;
  // Machine-readable reason, e.g. "NO_LEGAL_BASIS"; empty when allowed.
  std::string reason;
  // The persons the record is about: person ids ("abc", not
  // "persons/abc"), non-empty, without ',' or '/'. AppendAudit adds the
  // person of a resource "persons/{p}" or "persons/{p}/..." and stores
  // them sorted without duplicates.
  std::vector<std::string> persons;
  // When allowed: the ground per data category touched. Stored in the
  // order given.
  std::vector<LegalBasis> legal_bases;

  // Filled when read back (ListAuditForResource); ignored on input.
  std::string prev_hash;  // 32 bytes
  std::string hash;       // 32 bytes
};

// The migrations of both chains, ids "common.audit.0001_init" (audit_log)
// and "common.audit.0002_read_chain" (audit_read_log), and the witness
// table (witness_store.h, "common.audit.witness.0001_init"). Services append
// them to their own migration list, so a service database can hold both chains.
std::vector<storage::Migration> AuditMigrations();

// The read chain's migration alone ("common.audit.0002_read_chain"), for a
// database that holds only the read chain.
std::vector<storage::Migration> ReadAuditMigrations();

// Appends `record` to `chain` inside `tx`: for the change chain, the
// transaction of the change it records, so the record and the change commit
// or roll back together. Takes the chain's lock until `tx` ends.
// INVALID_ARGUMENT for a data category that is empty or contains ','.
absl::Status AppendAudit(storage::Transaction& tx, const AuditRecord& record,
                         Chain chain = Chain::kChanges);

// Appends `record` in a transaction of its own (retried on serialization
// conflicts). For denied or failed calls, whose own transaction is rolled
// back or never opened.
absl::Status AppendAuditStandalone(storage::Database& db,
                                   const AuditRecord& record,
                                   Chain chain = Chain::kChanges);

// Records a call that failed with `failure` (not OK), in a transaction of
// its own since the call's transaction was rolled back: outcome DENIED for
// PERMISSION_DENIED and ERROR otherwise, reason the failure's machine
// reason (google.rpc.ErrorInfo, see common/errors) or else its code name.
// The other fields come from `record`. Returns the status of the audit
// write; the caller still answers with `failure`.
absl::Status AppendFailedCallAudit(storage::Database& db, AuditRecord record,
                                   const absl::Status& failure,
                                   Chain chain = Chain::kChanges);

// The last row of a chain. Keep it outside the database (log it, export it)
// to detect later truncation of the tail.
struct AuditHead {
  int64_t seq = 0;   // 0 for an empty chain
  std::string hash;  // 32 bytes; 32 zero bytes for an empty chain
};

absl::StatusOr<AuditHead> ReadAuditHead(storage::Database& db,
                                        Chain chain = Chain::kChanges);

struct VerifyOptions {
  // When set, the chain must reach this row with this hash; fewer rows means
  // the tail was truncated.
  std::optional<AuditHead> expected_head;
  // Rows read per read-only transaction; memory stays bounded by this.
  int page_size = 1000;
  Chain chain = Chain::kChanges;
};

struct VerifyReport {
  bool intact = true;
  int64_t rows_checked = 0;
  // The first sequence number at which the chain breaks (for a gap, the
  // missing number); 0 when intact.
  int64_t first_bad_seq = 0;
  // Empty when intact, else one of "sequence gap", "prev_hash does not
  // link", "hash mismatch", "bad row", "truncated", "head hash mismatch",
  // "persons index mismatch" (the side table the person filter reads does
  // not list exactly the persons a hashed row names, or names a row that
  // does not exist), followed by ": " and details.
  std::string problem;
  // The last row checked (the verified head when intact).
  AuditHead head;
};

// Walks the whole chain in seq order, page by page, and reports the first
// broken row, checking the persons side table against the rows as it goes. A
// non-OK status means the check could not run (database error), not that the
// chain is broken.
absl::StatusOr<VerifyReport> VerifyAuditChain(
    storage::Database& db, const VerifyOptions& options = {});

// Retention of the audit trail: deletes the oldest rows of `chain` whose
// time is before `cutoff`, at most `max_rows` of them (with their persons
// side rows), in one transaction under the chain's lock, and records the
// last deleted row's seq and hash as the chain's base (table
// `<chain table>_base`). VerifyAuditChain then starts at the base: the
// first remaining row must link to the base's hash, so the pruned chain
// still proves that nothing after the base was changed. Returns how many
// rows it deleted; call again while it returns `max_rows`. Never deletes
// the newest row of a chain (the head stays readable).
absl::StatusOr<int64_t> PruneAuditChain(storage::Database& db, Chain chain,
                                        absl::Time cutoff, int max_rows);

// The chain's base: the seq and hash of the last row PruneAuditChain
// deleted, or nullopt for a chain never pruned. Rows up to the base are
// gone; a witness's checkpoint at or below it can only be compared with it.
absl::StatusOr<std::optional<AuditHead>> ReadAuditBase(storage::Database& db,
                                                       Chain chain);

// The operation of the record a restore from a backup appends to each
// chain, right after the rows the backup held (common/server/
// backup_command.cc): its resource names the backup, its reason is
// "RESTORED".
inline constexpr char kRestoreOperation[] = "lotse.ops/RestoreFromBackup";

// The record a restore of `service`'s database from `source` (the backup
// file, or what an operator names) appends to each chain: agency
// svc-<service>, actor "operator", operation kRestoreOperation, reason
// "RESTORED". Its time is unset, meaning the time of the append.
AuditRecord RestoreAuditRecord(absl::string_view service,
                               absl::string_view source);

// A restore as a chain records it.
struct RestoreRecord {
  int64_t seq = 0;
  absl::Time time;
  std::string source;  // the record's resource: what was restored from
};

// The records of `chain` with operation kRestoreOperation, lowest seq
// first. The operation has no index: this reads every row's operation once
// (a fraction of what VerifyAuditChain reads and hashes). Rows retention
// pruned are not listed.
absl::StatusOr<std::vector<RestoreRecord>> ListRestoreRecords(
    storage::Database& db, Chain chain);

struct ListAuditOptions {
  int64_t after_seq = 0;  // page cursor: the last seq of the previous page
  int page_size = 100;    // clamped to [1, 1000]
  Chain chain = Chain::kChanges;
};

// The rows about `resource` and its sub-resources ("persons/abc" matches
// "persons/abc" and "persons/abc/...", not "persons/abcd"), in seq order, at
// most page_size of them with seq > after_seq. For the transparency report:
// which agencies saw or changed what about one person. INVALID_ARGUMENT for
// an empty resource.
absl::StatusOr<std::vector<AuditRecord>> ListAuditForResource(
    storage::Database& db, const std::string& resource,
    const ListAuditOptions& options = {});

// Where a service's two chains live: `changes` holds the change chain;
// `reads` the read chain, or null when `changes` holds it too.
struct AuditDatabases {
  storage::Database* changes = nullptr;
  storage::Database* reads = nullptr;

  storage::Database& For(Chain chain) const {
    return chain == Chain::kReads && reads != nullptr ? *reads : *changes;
  }
};

// What ListAuditRecords selects; the conditions combine with AND.
struct AuditFilter {
  // Records naming any of these person ids (AuditRecord::persons). Empty:
  // no condition on persons.
  std::vector<std::string> person_ids;
  // Records whose agency_id is this. Empty: any agency.
  std::string agency_id;
  // start <= time < end.
  absl::Time start = absl::InfinitePast();
  absl::Time end = absl::InfiniteFuture();
  // Both chains (the change chain first) when unset.
  std::optional<Chain> chain;
};

// A position in the listing: after `seq` of `chain`.
struct AuditCursor {
  Chain chain = Chain::kChanges;
  int64_t after_seq = 0;
};

struct ListedAuditRecord {
  Chain chain = Chain::kChanges;
  AuditRecord record;
};

struct AuditRecordPage {
  std::vector<ListedAuditRecord> records;
  // Where the next page starts; unset on the last page.
  std::optional<AuditCursor> next;
};

// The records matching `filter`, change chain before read chain and by seq
// within a chain, at most `page_size` (clamped to [1, 1000]) of them after
// `cursor`. The person condition is answered from the persons side table
// (one index range per person id), agency and time from their indexes, so
// a page costs what it returns, not what the chain holds. A cursor naming
// a chain the filter excludes is INVALID_ARGUMENT.
absl::StatusOr<AuditRecordPage> ListAuditRecords(const AuditDatabases& dbs,
                                                 const AuditFilter& filter,
                                                 const AuditCursor& cursor,
                                                 int page_size);

// The bytes hashed for one row (documented in audit_log.cc), exposed for
// tests and for independent verifiers. Uses record.seq, the time truncated
// to microseconds, and record.format (1: format 1, else the current one).
std::string CanonicalAuditBytes(const AuditRecord& record);

// SHA-256(prev_hash || CanonicalAuditBytes(record)).
std::string ComputeAuditHash(const std::string& prev_hash,
                             const AuditRecord& record);

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_AUDIT_LOG_H_
