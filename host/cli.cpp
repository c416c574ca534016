#include "host/cli.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "host/device_select.hpp"
#include "host/version.hpp"
#include "kernels/backend.hpp"
#include "kernels/error.hpp"

namespace trove::host {
namespace {

int cmd_devices() {
  const kernels::cuda_probe probe = kernels::probe_cuda();
  if (probe.usable()) {
    for (const auto& d : probe.devices) {
      fmt::print("cuda:{}  {}  {:.1f} GiB  compute capability {}.{}\n", d.ordinal, d.name,
                 static_cast<double>(d.total_memory) / (1u << 30), d.cc_major, d.cc_minor);
    }
  } else {
    fmt::print("cuda: no usable device: {}\n", probe.reason);
  }
  fmt::print("cpu:  {} OpenMP threads (Thrust OpenMP system)\n", kernels::cpu_backend_threads());
  const char* chosen = probe.usable() ? "cuda" : "cpu";
  fmt::print("--device auto would use: {}\n", chosen);
  return exit_ok;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "trove: a GPU-accelerated stream processor sidecar. Exact deduplication and windowed "
      "aggregation of event streams on CUDA, or on the CPU when no GPU is present.",
      "trove"};
  app.set_version_flag("--version", std::string("trove ") + trove::version);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 runtime error (I/O, device, Kafka), 2 configuration or usage "
      "error.\nRun `trove <command> --help` for a command's options.");

  auto* devices = app.add_subcommand("devices",
                                     "List CUDA devices (or why none is usable) and "
                                     "the CPU backend's threads");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_config_error;
  }
  try {
    if (devices->parsed()) return cmd_devices();
  } catch (const trove::cuda_error& e) {
    fmt::print(stderr, "trove: error: {}\n", e.what());
    return exit_runtime_error;
  } catch (const std::exception& e) {
    fmt::print(stderr, "trove: error: {}\n", e.what());
    return exit_runtime_error;
  }
  return exit_ok;
}

}  // namespace trove::host
