// Real service processes for end-to-end tests: start a binary with flags,
// wait until its JSON log says it is serving, signal it, wait for its exit.
#ifndef LOTSE_TESTS_SUPPORT_PROCESS_H_
#define LOTSE_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lotse::testing {

class ServiceProcess {
 public:
  // Starts `binary` with `args`; its stderr goes to `log_path`.
  static absl::StatusOr<ServiceProcess> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::string& log_path);
  ServiceProcess(ServiceProcess&& other) noexcept;
  ServiceProcess& operator=(ServiceProcess&&) = delete;
  ~ServiceProcess();  // SIGKILLs a process still running

  // Waits for the {"msg":"serving",...,"port":N} log line; returns N.
  absl::StatusOr<int> WaitServing(absl::Duration timeout);
  void Signal(int signal_number);
  // Waits for exit; returns the exit code (128+signal when killed), or
  // DEADLINE_EXCEEDED.
  absl::StatusOr<int> WaitExit(absl::Duration timeout);
  std::string ReadLog() const;
  pid_t pid() const { return pid_; }

 private:
  ServiceProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  std::string log_path_;
};

// What a command that ran to its end left behind.
struct CommandResult {
  int exit_code = -1;  // 128+signal when killed
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs `binary` with `args` to its end, stdout and stderr kept apart (for
// command-line behaviour such as --help). DEADLINE_EXCEEDED, after killing
// it, when it has not exited within `timeout`.
absl::StatusOr<CommandResult> RunCommand(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout);

// A TCP port free on 127.0.0.1 when called (bound to 0, read, closed), for
// a process that must be told another's port before that one runs. Prefer
// --listen=127.0.0.1:0 and WaitServing where nothing needs the port first.
int FreeLocalPort();

// A plain HTTP/1.0 GET of `path` on 127.0.0.1:`port`, as a Prometheus
// scrape does; the whole response (status line, headers, body), or "" when
// nothing answers.
std::string HttpGet(int port, const std::string& path);

// Calls `done` every 200 ms until it returns true or `timeout` passes;
// returns its last answer. For effects that arrive asynchronously, e.g.
// events delivered between processes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout);

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_PROCESS_H_
