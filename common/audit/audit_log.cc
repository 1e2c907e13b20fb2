#include "common/audit/audit_log.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/audit/witness_store.h"
#include "common/errors/status.h"

namespace lotse::audit {
namespace {

using storage::Bytes;
using storage::Row;
using storage::Value;

// The table and the named lock of a chain. Only these two strings are ever
// spliced into SQL.
struct ChainTable {
  const char* table;
  const char* lock;
  const char* persons;  // the persons side table
};

ChainTable TableOf(Chain chain) {
  if (chain == Chain::kReads) {
    return {"audit_read_log", "lotse.audit.reads", "audit_read_log_persons"};
  }
  return {"audit_log", "lotse.audit", "audit_log_persons"};
}

constexpr size_t kHashSize = 32;
// Versions the canonical encoding; the formats cannot collide with each
// other since the magic differs.
constexpr absl::string_view kCanonicalMagicV1 = "LOTSE-AUDIT-1";
constexpr absl::string_view kCanonicalMagicV2 = "LOTSE-AUDIT-2";

constexpr char kColumns[] =
    "seq, time_micros, agency_id, legal_domain, actor, purpose, operation, "
    "resource, data_categories, outcome, reason, prev_hash, hash, format, "
    "persons, legal_bases";

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutString(std::string& out, absl::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s.data(), s.size());
}

std::string ZeroHash() { return std::string(kHashSize, '\0'); }

std::optional<Outcome> ParseOutcome(absl::string_view s) {
  if (s == "ALLOWED") return Outcome::kAllowed;
  if (s == "DENIED") return Outcome::kDenied;
  if (s == "ERROR") return Outcome::kError;
  return std::nullopt;
}

absl::Status ValidateRecord(const AuditRecord& r) {
  for (const std::string& c : r.data_categories) {
    // Categories are stored comma-joined; a comma inside one would make the
    // stored list ambiguous even though the hash is not.
    if (c.empty() || c.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          "audit data category must be non-empty and must not contain ','");
    }
  }
  if (!ParseOutcome(OutcomeName(r.outcome))) {
    return absl::InvalidArgumentError("unknown audit outcome");
  }
  for (const std::string& p : r.persons) {
    if (p.empty() || p.find_first_of(",/") != std::string::npos) {
      return absl::InvalidArgumentError(
          "audit person id must be non-empty and must not contain ',' or '/'");
    }
  }
  for (const LegalBasis& b : r.legal_bases) {
    if (b.category.empty() || BasisKindName(b.kind)[0] == '?') {
      return absl::InvalidArgumentError(
          "audit legal basis needs a category and a known kind");
    }
    for (const std::string* s : {&b.category, &b.rule_id, &b.consent}) {
      if (s->find_first_of(",|") != std::string::npos) {
        return absl::InvalidArgumentError(
            "audit legal basis must not contain ',' or '|'");
      }
    }
  }
  return absl::OkStatus();
}

std::optional<BasisKind> ParseBasisKind(absl::string_view s) {
  for (BasisKind k : {BasisKind::kOwner, BasisKind::kRule, BasisKind::kConsent,
                      BasisKind::kService, BasisKind::kDataProtection}) {
    if (s == BasisKindName(k)) return k;
  }
  return std::nullopt;
}

// Stored form of the legal bases: "CATEGORY|KIND|rule_id|consent" joined by
// ','. ValidateRecord keeps both delimiters out of the parts.
std::string EncodeBases(const std::vector<LegalBasis>& bases) {
  return absl::StrJoin(bases, ",", [](std::string* out, const LegalBasis& b) {
    absl::StrAppend(out, b.category, "|", BasisKindName(b.kind), "|", b.rule_id,
                    "|", b.consent);
  });
}

absl::StatusOr<std::vector<LegalBasis>> DecodeBases(absl::string_view s) {
  std::vector<LegalBasis> out;
  if (s.empty()) return out;
  for (absl::string_view item : absl::StrSplit(s, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, '|');
    std::optional<BasisKind> kind =
        parts.size() == 4 ? ParseBasisKind(parts[1]) : std::nullopt;
    if (!kind) {
      return absl::DataLossError(
          absl::StrCat("malformed legal basis '", item, "'"));
    }
    out.push_back({std::string(parts[0]), *kind, std::string(parts[2]),
                   std::string(parts[3])});
  }
  return out;
}

// The person of a resource "persons/{p}" or "persons/{p}/...", or "".
absl::string_view PersonOfResource(absl::string_view resource) {
  constexpr absl::string_view kPrefix = "persons/";
  if (!absl::StartsWith(resource, kPrefix)) return "";
  resource.remove_prefix(kPrefix.size());
  return resource.substr(0, resource.find('/'));
}

// Parses one audit_log row selected with kColumns.
absl::StatusOr<AuditRecord> ParseRow(const Row& row) {
  AuditRecord r;
  auto seq = row.GetInt(0);
  if (!seq.ok()) return seq.status();
  r.seq = *seq;
  auto micros = row.GetInt(1);
  if (!micros.ok()) return micros.status();
  r.time = absl::FromUnixMicros(*micros);
  std::string* texts[] = {&r.agency_id, &r.legal_domain, &r.actor, &r.purpose,
                          &r.operation};
  for (size_t i = 0; i < 5; ++i) {
    auto t = row.GetText(2 + i);
    if (!t.ok()) return t.status();
    *texts[i] = *std::move(t);
  }
  auto resource = row.GetBytes(7);
  if (!resource.ok()) return resource.status();
  r.resource = *std::move(resource);
  auto categories = row.GetText(8);
  if (!categories.ok()) return categories.status();
  if (!categories->empty()) {
    r.data_categories = absl::StrSplit(*categories, ',');
  }
  auto outcome_text = row.GetText(9);
  if (!outcome_text.ok()) return outcome_text.status();
  auto outcome = ParseOutcome(*outcome_text);
  if (!outcome) {
    return absl::DataLossError(
        absl::StrCat("unknown outcome '", *outcome_text, "'"));
  }
  r.outcome = *outcome;
  auto reason = row.GetText(10);
  if (!reason.ok()) return reason.status();
  r.reason = *std::move(reason);
  auto prev = row.GetBytes(11);
  if (!prev.ok()) return prev.status();
  r.prev_hash = *std::move(prev);
  auto hash = row.GetBytes(12);
  if (!hash.ok()) return hash.status();
  r.hash = *std::move(hash);
  auto format = row.GetInt(13);
  if (!format.ok()) return format.status();
  if (*format != 1 && *format != 2) {
    return absl::DataLossError(absl::StrCat("unknown format ", *format));
  }
  r.format = static_cast<int>(*format);
  auto persons = row.GetText(14);
  if (!persons.ok()) return persons.status();
  if (!persons->empty()) r.persons = absl::StrSplit(*persons, ',');
  auto bases_text = row.GetText(15);
  if (!bases_text.ok()) return bases_text.status();
  auto bases = DecodeBases(*bases_text);
  if (!bases.ok()) return bases.status();
  r.legal_bases = *std::move(bases);
  if (r.format == 1 && (!r.persons.empty() || !r.legal_bases.empty())) {
    // Format 1 does not hash them: a row that has them was edited.
    return absl::DataLossError("format 1 row with persons or legal bases");
  }
  return r;
}

absl::StatusOr<AuditHead> ReadHeadInTx(storage::Transaction& tx, Chain chain) {
  auto rows =
      tx.Query(absl::StrCat("SELECT seq, hash FROM ", TableOf(chain).table,
                            " ORDER BY seq DESC LIMIT 1"));
  if (!rows.ok()) return rows.status();
  AuditHead head;
  head.hash = ZeroHash();
  if (rows->empty()) return head;
  auto seq = (*rows)[0].GetInt(0);
  if (!seq.ok()) return seq.status();
  auto hash = (*rows)[0].GetBytes(1);
  if (!hash.ok()) return hash.status();
  head.seq = *seq;
  head.hash = *std::move(hash);
  return head;
}

// The chain's base (PruneAuditChain), or nullopt for a chain never pruned.
absl::StatusOr<std::optional<AuditHead>> ReadBaseInTx(storage::Transaction& tx,
                                                      Chain chain) {
  auto rows = tx.Query(absl::StrCat(
      "SELECT seq, hash FROM ", TableOf(chain).table, "_base WHERE id = 1"));
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  auto seq = (*rows)[0].GetInt(0);
  if (!seq.ok()) return seq.status();
  auto hash = (*rows)[0].GetBytes(1);
  if (!hash.ok()) return hash.status();
  return AuditHead{*seq, *std::move(hash)};
}

std::string Hex(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAllowed:
      return "ALLOWED";
    case Outcome::kDenied:
      return "DENIED";
    case Outcome::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

const char* BasisKindName(BasisKind kind) {
  switch (kind) {
    case BasisKind::kOwner:
      return "OWNER";
    case BasisKind::kRule:
      return "RULE";
    case BasisKind::kConsent:
      return "CONSENT";
    case BasisKind::kService:
      return "SERVICE";
    case BasisKind::kDataProtection:
      return "DATA_PROTECTION";
  }
  return "?";
}

const char* ChainName(Chain chain) {
  return chain == Chain::kReads ? "reads" : "changes";
}

namespace {

// One chain's table. resource is stored as bytes, not text: PostgreSQL
// compares text by the database's collation, so a prefix range over text
// would depend on the deployment's locale; bytes compare bytewise on both
// backends.
std::string ChainTableSql(const char* table) {
  return absl::StrCat("\nCREATE TABLE ", table, R"sql( (
  seq BIGINT PRIMARY KEY,
  time_micros BIGINT NOT NULL,
  agency_id TEXT NOT NULL,
  legal_domain TEXT NOT NULL,
  actor TEXT NOT NULL,
  purpose TEXT NOT NULL,
  operation TEXT NOT NULL,
  resource {{BLOB}} NOT NULL,
  data_categories TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ALLOWED', 'DENIED', 'ERROR')),
  reason TEXT NOT NULL,
  prev_hash {{BLOB}} NOT NULL,
  hash {{BLOB}} NOT NULL
);
CREATE INDEX )sql",
                      table, "_by_resource ON ", table, " (resource, seq);\n");
}

// Format 2 of a chain's table: the row's format (rows from before are
// format 1 by the default), the persons (comma-joined ids) and legal bases
// (see EncodeBases), the persons side table that the person filter reads
// (one row per person and record, written in the record's transaction),
// and the indexes of the agency and time filters.
std::string FormatTwoSql(const char* table) {
  return absl::StrCat(
      "\nALTER TABLE ", table,
      " ADD COLUMN format BIGINT NOT NULL DEFAULT 1;\nALTER TABLE ", table,
      " ADD COLUMN persons TEXT NOT NULL DEFAULT '';\nALTER TABLE ", table,
      " ADD COLUMN legal_bases TEXT NOT NULL DEFAULT '';\nCREATE TABLE ", table,
      "_persons (\n  person_id TEXT NOT NULL,\n  seq BIGINT NOT NULL,\n"
      "  PRIMARY KEY (person_id, seq)\n);\nCREATE INDEX ",
      table, "_by_agency ON ", table, " (agency_id, seq);\nCREATE INDEX ",
      table, "_by_time ON ", table, " (time_micros);\n");
}

// A chain's base after pruning (PruneAuditChain): the seq and hash of the
// last pruned row, which the first remaining row links to. One row at most.
std::string BaseSql(const char* table) {
  return absl::StrCat("CREATE TABLE ", table, R"sql(_base (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash {{BLOB}} NOT NULL
);
)sql");
}

// The persons side table by seq, so that VerifyAuditChain compares it with
// the chain page by page instead of scanning it once per page.
std::string PersonsBySeqSql(const char* table) {
  return absl::StrCat("CREATE INDEX ", table, "_persons_by_seq ON ", table,
                      "_persons (seq);\n");
}

// The first seq in (after, upto] at which the persons side table differs
// from `expected` (seq -> the record's persons, sorted; records without
// persons absent), or nullopt when they agree.
absl::StatusOr<std::optional<int64_t>> FirstPersonsMismatch(
    storage::Database& db, const ChainTable& table, int64_t after, int64_t upto,
    const std::map<int64_t, std::vector<std::string>>& expected) {
  if (upto <= after) return std::nullopt;
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(
      absl::StrCat("SELECT seq, person_id FROM ", table.persons,
                   " WHERE seq > $1 AND seq <= $2 ORDER BY seq, person_id"),
      {Value(after), Value(upto)});
  if (!rows.ok()) return rows.status();
  std::map<int64_t, std::vector<std::string>> indexed;
  for (const Row& row : *rows) {
    auto seq = row.GetInt(0);
    if (!seq.ok()) return seq.status();
    auto person = row.GetText(1);
    if (!person.ok()) return person.status();
    indexed[*seq].push_back(*std::move(person));
  }
  auto want = expected.begin();
  auto have = indexed.begin();
  while (want != expected.end() || have != indexed.end()) {
    if (want == expected.end()) return have->first;
    if (have == indexed.end()) return want->first;
    if (want->first != have->first) return std::min(want->first, have->first);
    if (want->second != have->second) return want->first;
    ++want;
    ++have;
  }
  return std::nullopt;
}

}  // namespace

std::vector<storage::Migration> AuditMigrations() {
  std::vector<storage::Migration> out = {
      {"common.audit.0001_init", ChainTableSql("audit_log")},
      {"common.audit.0003_persons_and_bases", FormatTwoSql("audit_log")},
      {"common.audit.0005_persons_by_seq", PersonsBySeqSql("audit_log")}};
  for (storage::Migration& m : ReadAuditMigrations()) out.push_back(m);
  for (storage::Migration& m : WitnessMigrations()) out.push_back(m);
  out.push_back({"common.audit.0007_base", BaseSql("audit_log")});
  return out;
}

std::vector<storage::Migration> ReadAuditMigrations() {
  return {{"common.audit.0002_read_chain", ChainTableSql("audit_read_log")},
          {"common.audit.0004_read_persons_and_bases",
           FormatTwoSql("audit_read_log")},
          {"common.audit.0006_read_persons_by_seq",
           PersonsBySeqSql("audit_read_log")},
          {"common.audit.0008_read_base", BaseSql("audit_read_log")}};
}

// Canonical bytes. Every field has a fixed position and either a fixed
// width or a length prefix, so the encoding is injective: two rows that
// differ in any field encode differently. Format 1 (rows written before
// persons and legal bases were recorded):
//   "LOTSE-AUDIT-1"                      13 bytes, encoding version
//   seq                                  8 bytes, big-endian
//   time (unix microseconds)             8 bytes, big-endian two's complement
//   agency_id, legal_domain, actor,
//   purpose, operation, resource         each: 4-byte big-endian length, bytes
//   data categories                      4-byte count, then each as above
//   outcome                              1 byte: 1 allowed, 2 denied, 3 error
//   reason                               4-byte length, bytes
// Format 2 (current): "LOTSE-AUDIT-2" instead of "LOTSE-AUDIT-1", the
// fields of format 1 after it, then
//   persons                              4-byte count, then each person id
//                                        as a length-prefixed string, sorted
//   legal bases                          4-byte count, then each:
//                                        category (length-prefixed),
//                                        kind (1 byte, BasisKind value),
//                                        rule_id, consent (length-prefixed)
// The stored `format` column says which layout a row was hashed with; it
// is not hashed itself, but the magic is, so changing it breaks the hash.
std::string CanonicalAuditBytes(const AuditRecord& r) {
  const bool v1 = r.format == 1;
  std::string out(v1 ? kCanonicalMagicV1 : kCanonicalMagicV2);
  PutU64(out, static_cast<uint64_t>(r.seq));
  PutU64(out, static_cast<uint64_t>(absl::ToUnixMicros(r.time)));
  for (const std::string* s : {&r.agency_id, &r.legal_domain, &r.actor,
                               &r.purpose, &r.operation, &r.resource}) {
    PutString(out, *s);
  }
  PutU32(out, static_cast<uint32_t>(r.data_categories.size()));
  for (const std::string& c : r.data_categories) PutString(out, c);
  out.push_back(static_cast<char>(r.outcome));
  PutString(out, r.reason);
  if (v1) return out;
  PutU32(out, static_cast<uint32_t>(r.persons.size()));
  for (const std::string& p : r.persons) PutString(out, p);
  PutU32(out, static_cast<uint32_t>(r.legal_bases.size()));
  for (const LegalBasis& b : r.legal_bases) {
    PutString(out, b.category);
    out.push_back(static_cast<char>(b.kind));
    PutString(out, b.rule_id);
    PutString(out, b.consent);
  }
  return out;
}

std::string ComputeAuditHash(const std::string& prev_hash,
                             const AuditRecord& record) {
  const std::string canonical = CanonicalAuditBytes(record);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  // SHA-256 over in-memory buffers only fails on allocation failure, which
  // we cannot recover from anyway; an empty result never verifies.
  if (ctx == nullptr ||
      EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), prev_hash.data(), prev_hash.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return std::string();
  }
  return std::string(reinterpret_cast<char*>(digest), length);
}

absl::Status AppendAudit(storage::Transaction& tx, const AuditRecord& record,
                         Chain chain) {
  if (absl::Status s = ValidateRecord(record); !s.ok()) return s;
  const ChainTable table = TableOf(chain);
  // The lock makes "read head, insert head+1" atomic across writers, so seq
  // stays contiguous and every row links to the one committed before it.
  if (absl::Status s = tx.LockNamed(table.lock); !s.ok()) return s;
  auto head = ReadHeadInTx(tx, chain);
  if (!head.ok()) return head.status();

  AuditRecord r = record;
  r.seq = head->seq + 1;
  r.format = kCurrentAuditFormat;
  if (r.time == absl::InfinitePast()) r.time = absl::Now();
  r.time = absl::FromUnixMicros(absl::ToUnixMicros(r.time));
  if (absl::string_view p = PersonOfResource(r.resource); !p.empty()) {
    r.persons.emplace_back(p);
  }
  std::sort(r.persons.begin(), r.persons.end());
  r.persons.erase(std::unique(r.persons.begin(), r.persons.end()),
                  r.persons.end());
  const std::string hash = ComputeAuditHash(head->hash, r);
  if (hash.size() != kHashSize) return absl::InternalError("SHA-256 failed");

  auto changed = tx.Execute(
      absl::StrCat("INSERT INTO ", table.table, " (", kColumns,
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                   "$12, $13, $14, $15, $16)"),
      {Value(r.seq), Value(absl::ToUnixMicros(r.time)), Value(r.agency_id),
       Value(r.legal_domain), Value(r.actor), Value(r.purpose),
       Value(r.operation), Value(Bytes{r.resource}),
       Value(absl::StrJoin(r.data_categories, ",")),
       Value(std::string(OutcomeName(r.outcome))), Value(r.reason),
       Value(Bytes{head->hash}), Value(Bytes{hash}),
       Value(static_cast<int64_t>(r.format)),
       Value(absl::StrJoin(r.persons, ",")),
       Value(EncodeBases(r.legal_bases))});
  if (!changed.ok()) return changed.status();
  for (const std::string& person : r.persons) {
    auto indexed = tx.Execute(absl::StrCat("INSERT INTO ", table.persons,
                                           " (person_id, seq) VALUES ($1, $2)"),
                              {Value(person), Value(r.seq)});
    if (!indexed.ok()) return indexed.status();
  }
  return absl::OkStatus();
}

absl::Status AppendAuditStandalone(storage::Database& db,
                                   const AuditRecord& record, Chain chain) {
  return storage::RunInTransaction(db, [&](storage::Transaction& tx) {
    return AppendAudit(tx, record, chain);
  });
}

absl::Status AppendFailedCallAudit(storage::Database& db, AuditRecord record,
                                   const absl::Status& failure, Chain chain) {
  record.outcome = failure.code() == absl::StatusCode::kPermissionDenied
                       ? Outcome::kDenied
                       : Outcome::kError;
  record.reason =
      ReasonOf(failure).value_or(absl::StatusCodeToString(failure.code()));
  return AppendAuditStandalone(db, record, chain);
}

absl::StatusOr<AuditHead> ReadAuditHead(storage::Database& db, Chain chain) {
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  return ReadHeadInTx(**tx, chain);
}

absl::StatusOr<VerifyReport> VerifyAuditChain(storage::Database& db,
                                              const VerifyOptions& options) {
  const int page_size = std::max(1, options.page_size);
  const ChainTable chain_table = TableOf(options.chain);
  const char* table = chain_table.table;
  VerifyReport report;
  report.head.hash = ZeroHash();
  auto fail = [&report](int64_t seq, std::string problem) {
    report.intact = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
    return report;
  };

  // Start below any seq so that forged rows with seq <= 0 are seen too.
  int64_t cursor = std::numeric_limits<int64_t>::min();
  std::string prev_hash = ZeroHash();
  int64_t expected_seq = 1;
  // A pruned chain starts after its base: the first remaining row must
  // follow the base's seq and link to its hash, so a changed base, or rows
  // deleted or inserted before the first remaining one, break the chain
  // there.
  std::optional<AuditHead> base;
  {
    auto tx = db.Begin(storage::TxMode::kReadOnly);
    if (!tx.ok()) return tx.status();
    absl::StatusOr<std::optional<AuditHead>> read =
        ReadBaseInTx(**tx, options.chain);
    if (!read.ok()) return read.status();
    base = *std::move(read);
  }
  if (base.has_value()) {
    prev_hash = base->hash;
    expected_seq = base->seq + 1;
    report.head = *base;
  }
  // The persons side table is checked page by page against the persons the
  // hashed rows name: a row deleted from it would hide a record from the
  // person filter, an added one would show it to the wrong person.
  const auto persons_problem = [](int64_t seq) {
    return absl::StrCat(
        "persons index mismatch: the person filter's index "
        "does not list the persons of seq ",
        seq);
  };
  while (true) {
    // One short read-only transaction per page keeps memory and lock time
    // bounded; rows appended meanwhile only extend the chain.
    auto tx = db.Begin(storage::TxMode::kReadOnly);
    if (!tx.ok()) return tx.status();
    auto rows =
        (*tx)->Query(absl::StrCat("SELECT ", kColumns, " FROM ", table,
                                  " WHERE seq > $1 ORDER BY seq LIMIT $2"),
                     {Value(cursor), Value(static_cast<int64_t>(page_size))});
    if (!rows.ok()) return rows.status();
    tx->reset();

    // The first page also covers side rows below seq 1 (or below the base:
    // the persons of pruned rows go with them).
    const int64_t page_after = report.rows_checked == 0
                                   ? std::numeric_limits<int64_t>::min()
                                   : report.head.seq;
    std::map<int64_t, std::vector<std::string>> page_persons;
    // A break in the chain at `seq` is reported unless the persons index of
    // a row before it, already hashed and linked, disagrees.
    const auto chain_fail =
        [&](int64_t seq, std::string problem) -> absl::StatusOr<VerifyReport> {
      absl::StatusOr<std::optional<int64_t>> mismatch = FirstPersonsMismatch(
          db, chain_table, page_after, std::min(seq - 1, report.head.seq),
          page_persons);
      if (!mismatch.ok()) return mismatch.status();
      if (*mismatch) return fail(**mismatch, persons_problem(**mismatch));
      return fail(seq, std::move(problem));
    };
    for (const Row& row : *rows) {
      auto seq = row.GetInt(0);
      if (!seq.ok()) return seq.status();
      cursor = *seq;
      if (*seq != expected_seq) {
        return chain_fail(std::min(*seq, expected_seq),
                          absl::StrCat("sequence gap: expected seq ",
                                       expected_seq, ", found ", *seq));
      }
      auto record = ParseRow(row);
      if (!record.ok()) {
        return chain_fail(*seq,
                          absl::StrCat("bad row: ", record.status().message()));
      }
      if (record->format != 1 &&
          !std::is_sorted(record->persons.begin(), record->persons.end())) {
        // The hash covers the list as stored; AppendAudit stores it sorted.
        return chain_fail(*seq, "bad row: persons not in canonical order");
      }
      if (record->prev_hash != prev_hash) {
        return chain_fail(
            *seq, absl::StrCat("prev_hash does not link: seq ", *seq,
                               " does not name the hash of seq ", *seq - 1));
      }
      if (ComputeAuditHash(prev_hash, *record) != record->hash) {
        return chain_fail(
            *seq, absl::StrCat("hash mismatch: the contents of seq ", *seq,
                               " were changed"));
      }
      ++report.rows_checked;
      if (!record->persons.empty()) page_persons[*seq] = record->persons;
      prev_hash = record->hash;
      report.head.seq = *seq;
      report.head.hash = record->hash;
      ++expected_seq;
    }
    {
      absl::StatusOr<std::optional<int64_t>> mismatch = FirstPersonsMismatch(
          db, chain_table, page_after, report.head.seq, page_persons);
      if (!mismatch.ok()) return mismatch.status();
      if (*mismatch) return fail(**mismatch, persons_problem(**mismatch));
    }
    if (static_cast<int>(rows->size()) < page_size) break;
  }

  if (options.expected_head) {
    const AuditHead& want = *options.expected_head;
    if (report.head.seq < want.seq) {
      return fail(report.head.seq + 1,
                  absl::StrCat("truncated: chain ends at seq ", report.head.seq,
                               ", expected head at seq ", want.seq));
    }
    // The expected head lies inside the chain; walking it again would cost a
    // second pass, so only the common case (it is the last row) is compared
    // here and otherwise its seq is looked up directly.
    std::string hash_at_want = report.head.hash;
    // A head pruned by retention has nothing left to compare it with; the
    // base, which the remaining rows link to, stands for what was before.
    const bool pruned = base.has_value() && want.seq < base->seq;
    if (pruned) {
      hash_at_want = want.hash;
    } else if (base.has_value() && want.seq == base->seq) {
      hash_at_want = base->hash;
    } else if (report.head.seq != want.seq && want.seq > 0) {
      auto tx = db.Begin(storage::TxMode::kReadOnly);
      if (!tx.ok()) return tx.status();
      auto rows = (*tx)->Query(
          absl::StrCat("SELECT hash FROM ", table, " WHERE seq = $1"),
          {Value(want.seq)});
      if (!rows.ok()) return rows.status();
      if (rows->empty()) {
        return fail(want.seq, "truncated: expected head row is missing");
      }
      auto h = (*rows)[0].GetBytes(0);
      if (!h.ok()) return h.status();
      hash_at_want = *h;
    } else if (want.seq == 0) {
      hash_at_want = ZeroHash();
    }
    if (want.seq > 0 && hash_at_want != want.hash) {
      return fail(want.seq, absl::StrCat("head hash mismatch: seq ", want.seq,
                                         " has ", Hex(hash_at_want),
                                         ", expected ", Hex(want.hash)));
    }
  }
  // Side rows past the last record walked name a record that does not
  // exist.
  {
    auto tx = db.Begin(storage::TxMode::kReadOnly);
    if (!tx.ok()) return tx.status();
    // Records appended since the walk ended have side rows of their own.
    auto rows = (*tx)->Query(
        absl::StrCat("SELECT MIN(p.seq) FROM ", chain_table.persons,
                     " p WHERE p.seq > $1 AND NOT EXISTS (SELECT 1 FROM ",
                     table, " t WHERE t.seq = p.seq)"),
        {Value(report.head.seq)});
    if (!rows.ok()) return rows.status();
    if (!rows->empty() && !(*rows)[0].IsNull(0)) {
      auto seq = (*rows)[0].GetInt(0);
      if (!seq.ok()) return seq.status();
      return fail(*seq, persons_problem(*seq));
    }
  }
  return report;
}

absl::StatusOr<std::vector<AuditRecord>> ListAuditForResource(
    storage::Database& db, const std::string& resource,
    const ListAuditOptions& options) {
  if (resource.empty()) {
    return absl::InvalidArgumentError("resource is required");
  }
  const int64_t limit = std::clamp(options.page_size, 1, 1000);
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  // Children are the byte range ["<resource>/", "<resource>0"): '0' is the
  // byte after '/'. Both ranges use the (resource, seq) index.
  auto rows = (*tx)->Query(
      absl::StrCat("SELECT ", kColumns, " FROM ", TableOf(options.chain).table,
                   " WHERE (resource = $1 OR "
                   "(resource >= $2 AND resource < $3)) AND seq > $4 "
                   "ORDER BY seq LIMIT $5"),
      {Value(Bytes{resource}), Value(Bytes{resource + "/"}),
       Value(Bytes{resource + "0"}), Value(options.after_seq), Value(limit)});
  if (!rows.ok()) return rows.status();
  std::vector<AuditRecord> out;
  out.reserve(rows->size());
  for (const Row& row : *rows) {
    auto record = ParseRow(row);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
  return out;
}

namespace {

// One chain's rows matching `filter` with seq > after_seq, by seq, at most
// `limit`. Only table names from TableOf are spliced into the SQL; every
// value is a parameter.
absl::StatusOr<std::vector<AuditRecord>> QueryChain(storage::Database& db,
                                                    Chain chain,
                                                    const AuditFilter& filter,
                                                    int64_t after_seq,
                                                    int64_t limit) {
  const ChainTable table = TableOf(chain);
  std::vector<Value> params = {Value(after_seq)};
  auto param = [&params](Value v) {
    params.push_back(std::move(v));
    return absl::StrCat("$", params.size());
  };
  std::string sql = absl::StrCat("SELECT ", kColumns, " FROM ", table.table,
                                 " WHERE seq > $1");
  if (!filter.person_ids.empty()) {
    std::vector<std::string> placeholders;
    for (const std::string& p : filter.person_ids) {
      placeholders.push_back(param(Value(p)));
    }
    absl::StrAppend(&sql, " AND seq IN (SELECT seq FROM ", table.persons,
                    " WHERE person_id IN (", absl::StrJoin(placeholders, ", "),
                    "))");
  }
  if (!filter.agency_id.empty()) {
    absl::StrAppend(&sql, " AND agency_id = ", param(Value(filter.agency_id)));
  }
  if (filter.start != absl::InfinitePast()) {
    absl::StrAppend(&sql, " AND time_micros >= ",
                    param(Value(absl::ToUnixMicros(filter.start))));
  }
  if (filter.end != absl::InfiniteFuture()) {
    absl::StrAppend(&sql, " AND time_micros < ",
                    param(Value(absl::ToUnixMicros(filter.end))));
  }
  absl::StrAppend(&sql, " ORDER BY seq LIMIT ", param(Value(limit)));
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(sql, params);
  if (!rows.ok()) return rows.status();
  std::vector<AuditRecord> out;
  out.reserve(rows->size());
  for (const Row& row : *rows) {
    auto record = ParseRow(row);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
  return out;
}

}  // namespace

absl::StatusOr<AuditRecordPage> ListAuditRecords(const AuditDatabases& dbs,
                                                 const AuditFilter& filter,
                                                 const AuditCursor& cursor,
                                                 int page_size) {
  if (dbs.changes == nullptr) {
    return absl::InvalidArgumentError("no audit database");
  }
  const size_t limit = static_cast<size_t>(std::clamp(page_size, 1, 1000));
  std::vector<Chain> chains = {Chain::kChanges, Chain::kReads};
  if (filter.chain) chains = {*filter.chain};
  auto first = std::find(chains.begin(), chains.end(), cursor.chain);
  if (first == chains.end()) {
    return absl::InvalidArgumentError("the cursor names another chain");
  }
  AuditRecordPage page;
  int64_t after = cursor.after_seq;
  for (auto it = first; it != chains.end(); ++it, after = 0) {
    const size_t want = limit - page.records.size();
    // One row more than wanted tells whether the chain has more.
    auto rows = QueryChain(dbs.For(*it), *it, filter, after,
                           static_cast<int64_t>(want) + 1);
    if (!rows.ok()) return rows.status();
    const bool more = rows->size() > want;
    if (more) rows->resize(want);
    for (AuditRecord& r : *rows) {
      page.records.push_back({*it, std::move(r)});
    }
    if (more) {
      page.next = AuditCursor{*it, page.records.back().record.seq};
      return page;
    }
    if (page.records.size() == limit && std::next(it) != chains.end()) {
      page.next = AuditCursor{*std::next(it), 0};
      return page;
    }
  }
  return page;
}

absl::StatusOr<int64_t> PruneAuditChain(storage::Database& db, Chain chain,
                                        absl::Time cutoff, int max_rows) {
  if (max_rows < 1) {
    return absl::InvalidArgumentError("max_rows must be at least 1");
  }
  const ChainTable table = TableOf(chain);
  const int64_t cutoff_micros = absl::ToUnixMicros(cutoff);
  int64_t deleted = 0;
  absl::Status s = storage::RunInTransaction(
      db, [&](storage::Transaction& tx) -> absl::Status {
        deleted = 0;
        // Under the chain's lock no row is appended meanwhile, so the head read
        // here stays the head and is never deleted.
        if (absl::Status l = tx.LockNamed(table.lock); !l.ok()) return l;
        absl::StatusOr<AuditHead> head = ReadHeadInTx(tx, chain);
        if (!head.ok()) return head.status();
        // The oldest rows by seq, up to the first that is not yet due: times
        // need not grow with seq (a record may carry the time of the call it
        // records), and the chain can only lose a prefix.
        auto rows = tx.Query(
            absl::StrCat("SELECT seq, time_micros, hash FROM ", table.table,
                         " WHERE seq < $1 ORDER BY seq LIMIT $2"),
            {Value(head->seq), Value(static_cast<int64_t>(max_rows))});
        if (!rows.ok()) return rows.status();
        std::optional<AuditHead> last;
        for (const Row& row : *rows) {
          auto time = row.GetInt(1);
          if (!time.ok()) return time.status();
          if (*time >= cutoff_micros) break;
          auto seq = row.GetInt(0);
          if (!seq.ok()) return seq.status();
          auto hash = row.GetBytes(2);
          if (!hash.ok()) return hash.status();
          last = AuditHead{*seq, *std::move(hash)};
          ++deleted;
        }
        if (!last.has_value()) return absl::OkStatus();
        for (const char* t : {table.persons, table.table}) {
          auto gone =
              tx.Execute(absl::StrCat("DELETE FROM ", t, " WHERE seq <= $1"),
                         {Value(last->seq)});
          if (!gone.ok()) return gone.status();
        }
        auto based = tx.Execute(
            absl::StrCat("INSERT INTO ", table.table,
                         "_base (id, seq, hash) VALUES (1, $1, $2) ON CONFLICT "
                         "(id) DO UPDATE SET seq = excluded.seq, hash = "
                         "excluded.hash"),
            {Value(last->seq), Value(Bytes{last->hash})});
        return based.status();
      });
  if (!s.ok()) return s;
  return deleted;
}

absl::StatusOr<std::optional<AuditHead>> ReadAuditBase(storage::Database& db,
                                                       Chain chain) {
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  return ReadBaseInTx(**tx, chain);
}

AuditRecord RestoreAuditRecord(absl::string_view service,
                               absl::string_view source) {
  AuditRecord record;
  record.agency_id = absl::StrCat("svc-", service);
  record.legal_domain = "SERVICE";
  record.actor = "operator";
  record.purpose = "restore-from-backup";
  record.operation = kRestoreOperation;
  record.resource = std::string(source);
  record.reason = "RESTORED";
  return record;
}

absl::StatusOr<std::vector<RestoreRecord>> ListRestoreRecords(
    storage::Database& db, Chain chain) {
  auto tx = db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  auto rows = (*tx)->Query(
      absl::StrCat("SELECT seq, time_micros, resource FROM ",
                   TableOf(chain).table, " WHERE operation = $1 ORDER BY seq"),
      {Value(std::string(kRestoreOperation))});
  if (!rows.ok()) return rows.status();
  std::vector<RestoreRecord> out;
  for (const Row& row : *rows) {
    auto seq = row.GetInt(0);
    if (!seq.ok()) return seq.status();
    auto micros = row.GetInt(1);
    if (!micros.ok()) return micros.status();
    auto resource = row.GetBytes(2);
    if (!resource.ok()) return resource.status();
    out.push_back({*seq, absl::FromUnixMicros(*micros), *std::move(resource)});
  }
  return out;
}

}  // namespace lotse::audit
