// lotsectl report: reports for the municipality's steering staff, read
// from the services' statistics (aggregates only, never a person).
#ifndef LOTSE_TOOLS_LOTSECTL_REPORT_H_
#define LOTSE_TOOLS_LOTSECTL_REPORT_H_

#include <ostream>
#include <string>
#include <vector>

#include "tools/lotsectl/internal/options.h"

namespace lotse::lotsectl {

// The usage text of the report command.
std::string ReportHelp();

// Runs `report <args>`: today only "steering --municipality AGS [--from
// YYYY-MM-DD] [--to YYYY-MM-DD]" (tools/steering/steering_report.h; from
// defaults to the first day of the month five months before to, to to
// today). Writes HTML, or JSON with -o json / -o FILE.json, to
// options.output_file or `out`. Returns an exit code (exit_codes.h):
// usage errors before anything is sent, kExitConnection when a service did
// not answer, kExitRpcError when one refused.
int RunReport(const std::vector<std::string>& args,
              const GlobalOptions& options, std::ostream& out,
              std::ostream& err);

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_REPORT_H_
