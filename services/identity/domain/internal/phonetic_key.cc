#include "services/identity/domain/internal/phonetic_key.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"

namespace lotse::identity::internal {
namespace {

// Marks a vowel sound in the symbol stream; never part of the final key
// except as the leading "A".
constexpr char kVowel = '*';

bool IsVowelLetter(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y' ||
         c == 'j';
}

struct Rule {
  absl::string_view spelling;
  char sound;
};

// Latin spellings of one sound in the transliteration traditions that meet
// in German offices (German, English, French, Turkish, BGN, ISO 9, the
// Serbian and Croatian Latin alphabet). Longest first. j is a vowel:
// German writes j for English y (Jusuf, Jelena, Marjam), and the English j
// of Jafari is German dsch, folded likewise. kh, ch (German for kh, and
// the Slavic ch of tsch/tch/cz) and h are one guttural; the French ch of
// sh is a reading of its own (latin_folding.cc). Letters whose sound
// depends on the tradition keep a symbol of their own, which
// SoftKeyDistance lets meet its neighbours at a reduced cost: g (Ukrainian
// h for Russian g, Egyptian g for j, Persian gh for q), q, a lone c (k, ts,
// the Turkish dsch, or a c with its diacritic dropped), th (t or s).
constexpr Rule kRules[] = {
    {"dsch", kVowel}, {"tsch", 'H'},  {"dzh", kVowel}, {"sch", 'S'},
    {"tch", 'H'},     {"dj", kVowel}, {"sh", 'S'},     {"zh", 'S'},
    {"ch", 'H'},      {"cz", 'H'},    {"kh", 'H'},     {"gh", 'G'},
    {"ph", 'F'},      {"th", 'Y'},    {"dh", 'D'},     {"ck", 'K'},
    {"ts", 'S'},      {"tz", 'S'},
};

char SingleLetterSound(char c) {
  switch (c) {
    case 'b':
    case 'p':  // Arabic has no p: Aleppo / Halab, Habib / Hapib.
      return 'B';
    case 'k':
      return 'K';
    case 'c':
      return 'C';
    case 'q':
      return 'Q';
    case 'g':
      return 'G';
    case 'h':
      return 'H';
    case 'd':
      return 'D';
    case 't':
      return 'T';
    case 'f':
      return 'F';
    case 'v':
    case 'w':
      return 'V';
    case 's':
    case 'z':
      return 'S';
    case 'l':
      return 'L';
    case 'm':
      return 'M';
    case 'n':
      return 'N';
    case 'r':
      return 'R';
    default:
      return IsVowelLetter(c) ? kVowel : '\0';
  }
}

// By the first vowel of the group: two vowels in a row are either one
// sound written two ways (ou, ei, ae) or a hiatus where a letter was
// dropped (Erdoan for Erdogan), and the first carries the name either way.
VowelClass ClassifyVowels(absl::string_view vowels) {
  for (char c : vowels) {
    if (c == 'a') return VowelClass::kOpen;
    if (c == 'o' || c == 'u') return VowelClass::kRounded;
    if (c == 'e' || c == 'i') return VowelClass::kFront;
  }
  return VowelClass::kUnknown;
}

}  // namespace

PhoneticKey ComputePhoneticKey(absl::string_view part) {
  std::string letters;
  letters.reserve(part.size());
  for (char c : part) {
    if (c >= 'a' && c <= 'z') letters.push_back(c);
  }
  // A final h after a vowel or sonorant is silent (Fatemeh / Fatima,
  // Abdullah / Abdulla); after c, k, s, ... it belongs to a digraph.
  if (letters.size() > 2 && letters.back() == 'h' &&
      absl::string_view("cksgtpdz").find(letters[letters.size() - 2]) ==
          absl::string_view::npos) {
    letters.pop_back();
  }

  std::string sounds;  // one symbol per sound, vowels as kVowel
  std::string first_vowel_group;
  bool seen_consonant = false;
  bool first_group_closed = false;
  absl::string_view rest(letters);
  while (!rest.empty()) {
    char sound = '\0';
    size_t consumed = 1;
    for (const Rule& rule : kRules) {
      if (rule.spelling[0] == rest[0] &&
          absl::StartsWith(rest, rule.spelling)) {
        sound = rule.sound;
        consumed = rule.spelling.size();
        break;
      }
    }
    // French romanisation writes the consonant w as ou before a vowel
    // (Ouahid / Wahid, Marouane / Marwan).
    if (sound == '\0' && rest.size() > 2 && rest[0] == 'o' && rest[1] == 'u' &&
        IsVowelLetter(rest[2]) && rest[2] != 'u') {
      sound = 'V';
      consumed = 2;
    }
    if (sound == '\0') sound = SingleLetterSound(rest.front());
    if (sound == kVowel) {
      if (seen_consonant && !first_group_closed) {
        first_vowel_group.append(rest.data(), consumed);
      }
    } else if (sound != '\0') {
      // Only a vowel right after the first consonant counts: where a
      // consonant follows it, that vowel was left out or moved (Hdan /
      // Hodan, Kwoalenko) or never written (Vladimir / Volodymyr).
      if (seen_consonant) first_group_closed = true;
      seen_consonant = true;
    }
    if (sound != '\0') sounds.push_back(sound);
    // x is two sounds (Alexander / Oleksandr).
    if (rest.front() == 'x') {
      sounds.push_back('K');
      sounds.push_back('S');
      seen_consonant = true;
      if (!first_vowel_group.empty()) first_group_closed = true;
    }
    rest.remove_prefix(consumed);
  }
  // Turkish and German write a final d as t (Ahmet / Ahmed, Murat / Murad).
  if (!sounds.empty() && sounds.back() == 'D') sounds.back() = 'T';

  PhoneticKey result;
  result.first_vowel = ClassifyVowels(first_vowel_group);
  if (sounds.empty()) return result;
  if (sounds.front() == kVowel) result.key.push_back('A');
  for (char sound : sounds) {
    if (sound == kVowel) continue;
    if (!result.key.empty() && result.key.back() == sound) continue;
    result.key.push_back(sound);
  }
  return result;
}

bool VowelsCompatible(VowelClass a, VowelClass b) {
  return !((a == VowelClass::kOpen && b == VowelClass::kRounded) ||
           (a == VowelClass::kRounded && b == VowelClass::kOpen));
}

namespace {

// Cost of replacing key symbol x by y in SoftKeyDistance, in tenths.
int ComputeSubstitutionCost(char x, char y) {
  if (x == y) return 0;
  auto pair = [x, y](char p, char q) {
    return (x == p && y == q) || (x == q && y == p);
  };
  // Sounds one letter stands for in different traditions, or one sound
  // different traditions write differently.
  if (pair('C', 'K') || pair('C', 'S') || pair('C', 'H') || pair('G', 'H') ||
      pair('Q', 'K') || pair('Q', 'G') || pair('Y', 'T') || pair('Y', 'S') ||
      pair('D', 'T') || pair('G', 'A')) {
    return kSoftEdit;
  }
  return kHardEdit;
}

// The same from a table built once: it sits in the innermost loop.
int SubstitutionCost(char x, char y) {
  static const auto* const kTable = [] {
    auto* table = new std::array<std::array<unsigned char, 26>, 26>();
    for (int i = 0; i < 26; ++i) {
      for (int j = 0; j < 26; ++j) {
        (*table)[i][j] = static_cast<unsigned char>(ComputeSubstitutionCost(
            static_cast<char>('A' + i), static_cast<char>('A' + j)));
      }
    }
    return table;
  }();
  if (x < 'A' || x > 'Z' || y < 'A' || y > 'Z') {
    return ComputeSubstitutionCost(x, y);
  }
  return (*kTable)[x - 'A'][y - 'A'];
}

// Cost of inserting or deleting key symbol x. A g is a glide some
// spellings write and others leave out: Turkish ğ is silent or not
// written (Erdoğan / Erdoan), and a final Ukrainian h, silent in the key,
// is the Russian g (Oleh / Oleg). In short keys w and c are too: w
// between vowels (Dawud / Daud, Louai / Luay), c for the Turkish dsch that
// other spellings render as a vowel-like j (Avci / Avdschi). In longer
// keys they are not, or every -vić and -ić would fall away (Petrović /
// Petrić / Petrov).
int IndelCost(char x, bool short_keys) {
  if (x == 'G') return kGlideEdit;
  return short_keys && (x == 'V' || x == 'C') ? kGlideEdit : kHardEdit;
}

}  // namespace

int SoftKeyDistance(absl::string_view a, absl::string_view b, int limit) {
  const int n = static_cast<int>(a.size());
  const int m = static_cast<int>(b.size());
  // Every symbol of the length difference must be inserted: at least a
  // glide each.
  if (std::abs(n - m) * kGlideEdit > limit) return limit + 1;
  // Most compared keys belong to different names and already differ in
  // their first symbol, which then costs a hard edit unless it is a soft
  // pair or a glide: answer those without the table.
  const bool short_keys = std::max(n, m) <= 3;
  if (limit < kHardEdit && n > 0 && m > 0 &&
      SubstitutionCost(a[0], b[0]) >= kHardEdit &&
      IndelCost(a[0], short_keys) >= kHardEdit &&
      IndelCost(b[0], short_keys) >= kHardEdit) {
    return limit + 1;
  }
  absl::InlinedVector<int, 24> two_back(m + 1), previous(m + 1), current(m + 1);
  previous[0] = 0;
  for (int j = 1; j <= m; ++j)
    previous[j] = previous[j - 1] + IndelCost(b[j - 1], short_keys);
  for (int i = 1; i <= n; ++i) {
    current[0] = previous[0] + IndelCost(a[i - 1], short_keys);
    int row_min = current[0];
    for (int j = 1; j <= m; ++j) {
      int best =
          std::min({previous[j] + IndelCost(a[i - 1], short_keys),
                    current[j - 1] + IndelCost(b[j - 1], short_keys),
                    previous[j - 1] + SubstitutionCost(a[i - 1], b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, two_back[j - 2] + kHardEdit);
      }
      current[j] = best;
      row_min = std::min(row_min, best);
    }
    if (row_min > limit) return limit + 1;
    std::swap(two_back, previous);
    std::swap(previous, current);
  }
  return std::min(previous[m], limit + 1);
}

bool SameUpToOneSoftPair(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  char x = 0, y = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    if (x == 0) {
      if (SubstitutionCost(a[i], b[i]) != kSoftEdit) return false;
      x = a[i];
      y = b[i];
    } else if (a[i] != x || b[i] != y) {
      return false;
    }
  }
  return true;
}

char CoarseSymbol(char symbol) {
  switch (symbol) {
    case 'C':
    case 'G':
    case 'Q':
    case 'H':
      return 'K';
    case 'Y':
    case 'D':
      return 'T';
    default:
      return symbol;
  }
}

std::string CoarseKey(absl::string_view key) {
  std::string coarse;
  coarse.reserve(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] == 'V' && i > 0) continue;  // a glide some spellings omit
    const char symbol = CoarseSymbol(key[i]);
    if (!coarse.empty() && coarse.back() == symbol) continue;
    coarse.push_back(symbol);
  }
  return coarse;
}

int OsaDistance(absl::string_view a, absl::string_view b, int limit) {
  const int n = static_cast<int>(a.size());
  const int m = static_cast<int>(b.size());
  if (std::abs(n - m) > limit) return limit + 1;
  // Three rolling rows: two back for transpositions.
  absl::InlinedVector<int, 24> two_back(m + 1), previous(m + 1), current(m + 1);
  for (int j = 0; j <= m; ++j) previous[j] = j;
  for (int i = 1; i <= n; ++i) {
    current[0] = i;
    int row_min = current[0];
    for (int j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = std::min(
          {previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, two_back[j - 2] + 1);
      }
      current[j] = best;
      row_min = std::min(row_min, best);
    }
    if (row_min > limit) return limit + 1;
    std::swap(two_back, previous);
    std::swap(previous, current);
  }
  return std::min(previous[m], limit + 1);
}

}  // namespace lotse::identity::internal
