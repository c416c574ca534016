/// @file main.cpp
/// @brief The `trove` command line.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "host/cli.hpp"

int main(int argc, char** argv) {
  return trove::host::run_cli(argc, argv);
}
