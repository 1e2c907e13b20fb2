#include "common/lifecycle/person_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors/status.h"

namespace lotse::lifecycle {
namespace {

constexpr absl::string_view kMagic = "LSK1";
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// Callers may pass "persons/{id}" or the bare id; keys and the additional
// authenticated data always use the bare id, so both spellings seal and
// open alike.
absl::string_view BareId(absl::string_view person) {
  absl::ConsumePrefix(&person, "persons/");
  return person;
}

absl::Status CheckPerson(absl::string_view person) {
  if (person.empty()) {
    return InvalidArgumentError({{"person", "must not be empty"}});
  }
  return absl::OkStatus();
}

// The additional authenticated data: the format marker, the person id
// with its length in front (so that no person/context split is ambiguous),
// and the context.
std::string Aad(absl::string_view person, absl::string_view context) {
  std::string aad(kMagic);
  const uint32_t n = static_cast<uint32_t>(person.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    aad.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  absl::StrAppend(&aad, person, context);
  return aad;
}

absl::Status ShreddedError() {
  return ErrorWithReason(absl::StatusCode::kNotFound, "PERSON_KEY_SHREDDED",
                         "the person's data key was shredded");
}

absl::Status ErasedError() {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "PERSON_ERASED",
                         "the person was erased; nothing new is kept about "
                         "them");
}

// What the key table holds for a person.
struct KeyRow {
  bool exists = false;    // a row exists
  bool shredded = false;  // the row is a shredded marker
  std::string key;        // the data key when neither
};

absl::StatusOr<KeyRow> ReadKey(storage::Transaction& tx,
                               absl::string_view person) {
  absl::StatusOr<storage::Rows> rows =
      tx.Query("SELECT data_key FROM lifecycle_person_keys WHERE person = $1",
               {storage::Value(std::string(person))});
  if (!rows.ok()) return rows.status();
  KeyRow out;
  if (rows->empty()) return out;
  out.exists = true;
  const storage::Row& row = rows->front();
  if (row.IsNull(0)) {
    out.shredded = true;
    return out;
  }
  absl::StatusOr<std::string> key = row.GetBytes(0);
  if (!key.ok()) return key.status();
  if (key->size() != kKeyBytes) {
    return absl::DataLossError("person data key has the wrong length");
  }
  out.key = *std::move(key);
  return out;
}

// The person's key, made in `tx` when they have none. Under concurrency
// only one key is ever kept: a second writer's insert yields to the first
// (ON CONFLICT DO NOTHING, which on PostgreSQL waits for the first
// writer's commit), and the key is read back after the insert.
absl::StatusOr<std::string> KeyForSealing(storage::Transaction& tx,
                                          absl::string_view person) {
  absl::StatusOr<KeyRow> row = ReadKey(tx, person);
  if (!row.ok()) return row.status();
  if (row->shredded) return ErasedError();
  if (row->exists) return std::move(row->key);

  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()),
                 static_cast<int>(key.size())) != 1) {
    return absl::InternalError("no random bytes for a person data key");
  }
  absl::StatusOr<int64_t> inserted = tx.Execute(
      "INSERT INTO lifecycle_person_keys (person, data_key, create_us) "
      "VALUES ($1, $2, $3) ON CONFLICT (person) DO NOTHING",
      {storage::Value(std::string(person)), storage::Value(storage::Bytes{key}),
       storage::Value(absl::ToUnixMicros(absl::Now()))});
  if (!inserted.ok()) return inserted.status();
  if (*inserted == 1) return key;
  row = ReadKey(tx, person);
  if (!row.ok()) return row.status();
  if (row->shredded) return ErasedError();
  if (!row->exists) return absl::InternalError("person data key vanished");
  return std::move(row->key);
}

}  // namespace

std::vector<storage::Migration> PersonKeyMigrations() {
  // A shredded person keeps a row without key (data_key NULL, shredded_us
  // set), so that sealing refuses to start a new key for them. IF NOT
  // EXISTS: the outbox's migration (events/outbox.h) runs this script too,
  // since the outbox seals with these keys, and either may come first.
  return {{"common.lifecycle.0002_person_keys", R"sql(
CREATE TABLE IF NOT EXISTS lifecycle_person_keys (
  person TEXT PRIMARY KEY,
  data_key {{BLOB}},
  create_us BIGINT NOT NULL,
  shredded_us BIGINT,
  CHECK ((data_key IS NULL) = (shredded_us IS NOT NULL))
);
)sql"}};
}

absl::StatusOr<std::string> SealForPerson(storage::Transaction& tx,
                                          absl::string_view person,
                                          absl::string_view context,
                                          absl::string_view plaintext) {
  person = BareId(person);
  if (absl::Status s = CheckPerson(person); !s.ok()) return s;
  absl::StatusOr<std::string> key = KeyForSealing(tx, person);
  if (!key.ok()) return key.status();

  std::string out(kMagic);
  out.resize(kMagic.size() + kNonceBytes + plaintext.size() + kTagBytes);
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + kMagic.size());
  if (RAND_bytes(nonce, kNonceBytes) != 1) {
    return absl::InternalError("no random bytes for a nonce");
  }
  unsigned char* cipher = nonce + kNonceBytes;
  const std::string aad = Aad(person, context);

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes,
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key->data()),
                         nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(
          ctx.get(), cipher, &len,
          reinterpret_cast<const unsigned char*>(plaintext.data()),
          static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), cipher + total, &len) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  total += len;
  if (static_cast<size_t>(total) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          cipher + total) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> OpenForPerson(storage::Transaction& tx,
                                          absl::string_view person,
                                          absl::string_view context,
                                          absl::string_view sealed) {
  person = BareId(person);
  if (absl::Status s = CheckPerson(person); !s.ok()) return s;
  if (!IsSealed(sealed) ||
      sealed.size() < kMagic.size() + kNonceBytes + kTagBytes) {
    return absl::DataLossError("value is not in the sealed format");
  }
  absl::StatusOr<KeyRow> row = ReadKey(tx, person);
  if (!row.ok()) return row.status();
  // A person without a key row never had anything sealed here; for the
  // caller the value is as unreadable as a shredded one.
  if (!row->exists || row->shredded) return ShreddedError();

  const auto* nonce =
      reinterpret_cast<const unsigned char*>(sealed.data() + kMagic.size());
  const unsigned char* cipher = nonce + kNonceBytes;
  const size_t cipher_len =
      sealed.size() - kMagic.size() - kNonceBytes - kTagBytes;
  const unsigned char* tag = cipher + cipher_len;
  const std::string aad = Aad(person, context);

  std::string plain(cipher_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes,
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(
          ctx.get(), nullptr, nullptr,
          reinterpret_cast<const unsigned char*>(row->key.data()),
          nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, cipher,
                        static_cast<int>(cipher_len)) != 1) {
    return absl::InternalError("AES-256-GCM decryption failed");
  }
  const int total = len;
  // OpenSSL takes the expected tag through a non-const pointer but does not
  // write to it.
  unsigned char expected[kTagBytes];
  std::copy(tag, tag + kTagBytes, expected);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          expected) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + total, &len) != 1) {
    return absl::DataLossError(
        "sealed value does not verify for this person and context");
  }
  plain.resize(total + len);
  return plain;
}

bool IsSealed(absl::string_view value) {
  return absl::StartsWith(value, kMagic);
}

absl::Status ShredPersonKey(storage::Transaction& tx,
                            absl::string_view person) {
  person = BareId(person);
  if (absl::Status s = CheckPerson(person); !s.ok()) return s;
  const int64_t now = absl::ToUnixMicros(absl::Now());
  // The key's bytes are overwritten in the row (data_key NULL); the first
  // shredding time is kept when shredded again.
  return tx
      .Execute(
          "INSERT INTO lifecycle_person_keys "
          "(person, data_key, create_us, shredded_us) "
          "VALUES ($1, NULL, $2, $2) ON CONFLICT (person) DO UPDATE SET "
          "data_key = NULL, shredded_us = COALESCE("
          "lifecycle_person_keys.shredded_us, excluded.shredded_us)",
          {storage::Value(std::string(person)), storage::Value(now)})
      .status();
}

absl::StatusOr<bool> IsPersonShredded(storage::Transaction& tx,
                                      absl::string_view person) {
  person = BareId(person);
  if (absl::Status s = CheckPerson(person); !s.ok()) return s;
  absl::StatusOr<KeyRow> row = ReadKey(tx, person);
  if (!row.ok()) return row.status();
  return row->shredded;
}

}  // namespace lotse::lifecycle
