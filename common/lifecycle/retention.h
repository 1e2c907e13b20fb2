// Retention rules (DESIGN.md section 4, "Data leaves"): how long each kind
// of record is kept, from which moment, and whether an erasure of the
// person may remove it early. Configuration, like the access rules: every
// service loads the same file (--retention_rules, config/retention.conf)
// at start-up, and a file that does not parse stops start-up.
//
// File format, one rule per line ('#' starts a comment, blank lines are
// skipped):
//
//   retain <kind> category=<CATEGORY> keep=<N>d|<N>m|<N>y from=<ANCHOR>
//          [erasure=erase|keep] basis="<legal reference>"
//
// (on one line). <kind> is one of the resource kinds of KnownResourceKinds()
// (e.g. "case", "course-result"); each kind at most once. <CATEGORY> is the
// kind's data category as DataCategory names it without prefix
// (CASE_STATUS, LANGUAGE, ...), or AUDIT for "audit-record"; it must be the
// category the kind belongs to, so the file reads true. keep: a whole
// number of days, calendar months or calendar years, at least 1. <ANCHOR>
// is the moment the period starts from, one of the anchors the kind allows
// (ResourceKind::anchors). erasure=keep: a legal duty keeps records of this
// kind when their person is erased, until the period ends (ErasePerson
// reports them as kept by rule); erase (the default) removes them with the
// person. basis: the legal reference, 1..200 characters, required.
//
// A kind without a rule is never purged: its records are kept until the
// person is erased.
#ifndef LOTSE_COMMON_LIFECYCLE_RETENTION_H_
#define LOTSE_COMMON_LIFECYCLE_RETENTION_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lotse::lifecycle {

// A kind of record that retention rules can name, and where it lives.
struct ResourceKind {
  std::string name;      // "case"
  std::string service;   // "cases"; "*" for kinds every service has
  std::string category;  // "CASE_STATUS"; "AUDIT" for audit records
  // The anchors a rule for this kind may name, e.g. {"CLOSE"}.
  std::vector<std::string> anchors;
  // One sentence for operators: what the record is and what each anchor
  // means for it.
  std::string description;
};

// Every kind, in a fixed order:
//   identity:  person-revision (CORE_IDENTITY; SUPERSEDED: when a
//              correction replaced it), residence-status (RESIDENCE_STATUS;
//              SUPERSEDED: when a newer status was recorded; END: its
//              valid_until), consent (CORE_IDENTITY; END: withdrawn or
//              expired)
//   cases:     case (CASE_STATUS; CLOSE), note (PRIVATE_NOTES; CLOSE: the
//              case's closing)
//   courses:   booking (LANGUAGE; END: cancelled, expired or the course
//              finished), waitlist-entry (LANGUAGE; END), attendance
//              (LANGUAGE; END: the course finished), course-result
//              (LANGUAGE; CREATE), entitlement (LANGUAGE; END: revoked or
//              valid_until passed)
//   placement: candidate-profile (EMPLOYMENT; LAST_CHANGE), placement
//              (EMPLOYMENT; END: hired, rejected or withdrawn), offer
//              (EMPLOYMENT; WITHDRAW)
//   every service: audit-record (AUDIT; CREATE), both chains
// The precise list is in retention.cc; the test of config/retention.conf
// checks the shipped file against it.
const std::vector<ResourceKind>& KnownResourceKinds();

// One parsed rule.
struct RetentionRule {
  std::string kind;      // e.g. "course-result"
  std::string category;  // e.g. "LANGUAGE"
  // The period: exactly one of days, months, years is non-zero.
  int days = 0;
  int months = 0;
  int years = 0;
  std::string anchor;  // e.g. "CREATE"
  bool keep_on_erasure = false;
  std::string basis;  // the legal reference
  int line = 0;       // where in the file

  // The latest anchor time whose records are due at `now`: now minus the
  // period, in calendar terms (UTC). A record is due when its anchor is at
  // or before the cutoff.
  absl::Time Cutoff(absl::Time now) const;
  // When a record anchored at `anchor_time` is due: anchor plus the period.
  absl::Time DueAt(absl::Time anchor_time) const;
  // "3y", "18m", "90d".
  std::string PeriodText() const;
};

class RetentionRules {
 public:
  // No rules: nothing is purged, and erasure removes everything.
  RetentionRules() = default;

  // Parses a rules file's text. INVALID_ARGUMENT naming the line and the
  // problem ("line 7: unknown category FOO", "line 3: keep must be at
  // least 1", "line 9: kind case allows from=CLOSE, not CREATE", "line 4:
  // duplicate rule for kind booking", ...) at the first bad line.
  static absl::StatusOr<RetentionRules> Parse(absl::string_view text);
  // Reads and parses a file; NOT_FOUND when it cannot be read, and the
  // parse errors prefixed with the path.
  static absl::StatusOr<RetentionRules> Load(const std::string& path);

  // The rule for `kind`, or null when the file has none.
  const RetentionRule* Find(absl::string_view kind) const;
  const std::vector<RetentionRule>& rules() const { return rules_; }

 private:
  std::vector<RetentionRule> rules_;
};

}  // namespace lotse::lifecycle

#endif  // LOTSE_COMMON_LIFECYCLE_RETENTION_H_
