#pragma once
/// @file cli.hpp
/// @brief The `trove` command line: subcommands and exit codes.

namespace trove::host {

/// @brief Exit codes of every trove command (documented in `trove run --help`).
enum exit_code : int {
  exit_ok = 0,
  exit_runtime_error = 1,  ///< I/O, device or Kafka failure; a strict-mode bad record
  exit_config_error = 2,   ///< invalid configuration or command line
};

/// @brief Parses argv and runs the subcommand; returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace trove::host
