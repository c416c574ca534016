/// @file main.cpp
/// @brief The `trove` command line.

#include <unistd.h>

#include <cstdlib>

#include "host/cli.hpp"

int main(int argc, char** argv) {
  // The CPU backend's OpenMP team shares the machine with trove's own source and sink threads:
  // threads spinning at OpenMP barriers would steal the cores those threads need (measured: twice
  // slower end to end on 2 cores). libgomp reads its settings when it is loaded, before main, so
  // trove re-executes itself once with a short spin unless the user chose a policy.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT") &&
      !std::getenv("TROVE_NO_REEXEC")) {
    setenv("GOMP_SPINCOUNT", "1000", 1);
    setenv("TROVE_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // on failure, carry on with the defaults
  }
  return trove::host::run_cli(argc, argv);
}
