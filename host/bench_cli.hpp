#pragma once
/// @file bench_cli.hpp
/// @brief The `trove bench` subcommand (the load harness, host/load_harness.hpp), registered by
/// host/cli.cpp; kept apart so the CLI file only names it.

#include <functional>

namespace CLI {
class App;
}

namespace trove::host {

/// @brief A registered subcommand and what runs it once parsed.
struct bench_command {
  CLI::App* subcommand = nullptr;  ///< parsed() tells whether the user asked for it
  std::function<int()> run;        ///< returns the exit code (throws like the other commands)
};

/// @brief Adds `trove bench` and its options to app.
bench_command add_bench_command(CLI::App& app);

}  // namespace trove::host
