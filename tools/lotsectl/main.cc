// lotsectl: the command-line client of Lotse for operators and
// caseworkers' scripts. See docs/lotsectl.md; internal/cli.h is the whole
// behaviour, this file adds the process around it (arguments, environment,
// Ctrl-C).
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tools/lotsectl/internal/cli.h"
#include "tools/lotsectl/internal/client.h"

namespace {

void OnInterrupt(int) { lotse::lotsectl::RequestInterrupt(); }

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  std::vector<std::string> args(argv + 1, argv + argc);
  return lotse::lotsectl::RunCommandLine(
      std::move(args), [](const char* name) { return std::getenv(name); },
      std::cin, std::cout, std::cerr);
}
