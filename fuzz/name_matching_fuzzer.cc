// Fuzz target: name normalisation and duplicate matching with ICU
// (services/identity/domain/name_matching.h). The input builds two person
// records (names in any script and bytes, birth dates, places,
// nationalities) and a stored prepared form. Checked: text that is not
// UTF-8 is INVALID_ARGUMENT and nothing else fails; scores lie in [0, 1],
// agree with their level, are symmetric and equal Score(); a prepared form
// survives its encoding; a record shares a blocking key with its own
// lookup keys; stored bytes that do not decode are refused, not crashed on.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/string_view.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {
namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "name matching invariant broken: %s\n", what);
  std::abort();
}

MatchRecord RecordFrom(FuzzedDataProvider& in) {
  MatchRecord r;
  const int spellings = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < spellings; ++i) {
    NameSpelling s;
    s.given_names = in.ConsumeRandomLengthString(48);
    s.family_names = in.ConsumeRandomLengthString(48);
    r.names.spellings.push_back(s);
  }
  r.birth_date.year = in.ConsumeIntegralInRange(-1, 3000);
  r.birth_date.month = in.ConsumeIntegralInRange(-1, 13);
  r.birth_date.day = in.ConsumeIntegralInRange(-1, 32);
  r.birth_place = in.ConsumeRandomLengthString(32);
  const int nationalities = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < nationalities; ++i) {
    r.nationality_codes.push_back(in.ConsumeRandomLengthString(4));
  }
  r.sex = static_cast<RecordedSex>(in.ConsumeIntegralInRange(0, 4));
  return r;
}

void CheckResult(const MatchResult& m) {
  if (!(m.score >= 0 && m.score <= 1)) Broken("score outside [0, 1]");
  if (m.strength != StrengthOfScore(m.score)) Broken("level not the score's");
}

}  // namespace
}  // namespace lotse::identity

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::lotse::identity;  // NOLINT: one target, one namespace
  static const DuplicateMatcher* const matcher = [] {
    absl::StatusOr<std::unique_ptr<DuplicateMatcher>> m =
        DuplicateMatcher::Create();
    if (!m.ok()) Broken("no matcher (ICU transforms missing)");
    return m->release();
  }();

  FuzzedDataProvider in(data, size);
  const MatchRecord a = RecordFrom(in);
  const MatchRecord b = RecordFrom(in);
  const std::string stored = in.ConsumeRemainingBytesAsString();

  absl::StatusOr<PreparedRecord> decoded = matcher->DecodePrepared(stored);
  if (!decoded.ok() && decoded.status().code() != absl::StatusCode::kDataLoss &&
      decoded.status().code() != absl::StatusCode::kFailedPrecondition) {
    Broken("stored form refused with an unexpected code");
  }

  absl::StatusOr<PreparedRecord> pa = matcher->Prepare(a);
  absl::StatusOr<PreparedRecord> pb = matcher->Prepare(b);
  for (const auto* p : {&pa, &pb}) {
    if (!p->ok() && p->status().code() != absl::StatusCode::kInvalidArgument) {
      Broken("Prepare failed with an unexpected code");
    }
  }
  if (!pa.ok()) return 0;

  if (decoded.ok()) {
    CheckResult(matcher->Compare(*pa, *decoded));
    matcher->BlockingKeys(*decoded);
    matcher->LookupKeys(*decoded);
  }

  const std::vector<std::string> blocking = matcher->BlockingKeys(*pa);
  const std::vector<std::string> lookup = matcher->LookupKeys(*pa);
  if (!blocking.empty() && !absl::c_any_of(lookup, [&](const std::string& k) {
        return absl::c_linear_search(blocking, k);
      })) {
    Broken("a record does not find its own keys");
  }
  absl::StatusOr<std::vector<std::string>> from_names =
      matcher->BlockingKeys(a.names, a.birth_date);
  if (!from_names.ok() || *from_names != blocking) {
    Broken("blocking keys differ between the two forms");
  }

  absl::StatusOr<PreparedRecord> round_trip =
      matcher->DecodePrepared(matcher->EncodePrepared(*pa));
  if (!round_trip.ok()) Broken("an encoded prepared form does not decode");

  if (!pb.ok()) return 0;
  const MatchResult ab = matcher->Compare(*pa, *pb);
  const MatchResult ba = matcher->Compare(*pb, *pa);
  CheckResult(ab);
  CheckResult(ba);
  if (std::fabs(ab.score - ba.score) > 1e-6) {
    std::fprintf(stderr, "scores %.9f and %.9f\n", ab.score, ba.score);
    Broken("score not symmetric");
  }
  if (std::fabs(matcher->Score(*pa, *pb) - ab.score) > 1e-9) {
    Broken("Score differs from Compare");
  }
  if (std::fabs(matcher->Compare(*round_trip, *pb).score - ab.score) > 1e-9) {
    Broken("a decoded prepared form compares differently");
  }
  return 0;
}
