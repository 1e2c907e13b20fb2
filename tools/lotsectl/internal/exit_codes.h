// The exit status of lotsectl, the one contract scripts rely on besides the
// -o json output. docs/lotsectl.md lists the same table.
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_EXIT_CODES_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_EXIT_CODES_H_

namespace lotse::lotsectl {

enum ExitCode : int {
  // The command did what it was asked to.
  kExitOk = 0,
  // A service answered with an error status (INVALID_ARGUMENT,
  // PERMISSION_DENIED, NOT_FOUND, ...); stderr shows its code, reason and
  // field violations.
  kExitRpcError = 1,
  // The command line was wrong: unknown verb, flag or method, a flag value
  // that does not parse, JSON that does not match the request message, or
  // a verb this build does not include. Nothing was sent.
  kExitUsage = 2,
  // No conversation with the service: certificate files unreadable, the
  // TLS handshake refused, or the service unreachable (UNAVAILABLE).
  kExitConnection = 3,
};

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_EXIT_CODES_H_
