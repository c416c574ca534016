#include "host/device_select.hpp"

#include <cstdlib>
#include <string>

#include "kernels/error.hpp"

namespace trove::host {

bool parse_device_choice(std::string_view text, device_choice& out) noexcept {
  if (text == "auto") {
    out = device_choice::automatic;
  } else if (text == "cpu") {
    out = device_choice::cpu;
  } else if (text == "cuda") {
    out = device_choice::cuda;
  } else {
    return false;
  }
  return true;
}

bool parse_cpu_strategy(std::string_view text, kernels::cpu_strategy& out) noexcept {
  if (text == "owned") {
    out = kernels::cpu_strategy::owned;
  } else if (text == "atomic") {
    out = kernels::cpu_strategy::atomic;
  } else {
    return false;
  }
  return true;
}

kernels::cpu_strategy cpu_strategy_from_env() {
  const char* value = std::getenv(cpu_strategy_env);
  kernels::cpu_strategy strategy = kernels::cpu_strategy::owned;
  if (value == nullptr || *value == '\0') return strategy;
  if (!parse_cpu_strategy(value, strategy)) {
    throw logic_error(std::string(cpu_strategy_env) + "='" + value +
                      "' is not a CPU strategy: use owned (the default) or atomic");
  }
  return strategy;
}

selected_backend select_backend(device_choice choice) {
  const kernels::cpu_strategy strategy = cpu_strategy_from_env();
  if (choice == device_choice::cpu) {
    return {kernels::make_cpu_backend(strategy), "--device cpu requested"};
  }
  const kernels::cuda_probe probe = kernels::probe_cuda();
  if (probe.usable()) {
    auto backend = kernels::make_cuda_backend(probe.devices.front().ordinal);
    return {std::move(backend), choice == device_choice::cuda ? "--device cuda requested"
                                                              : "a usable CUDA device was found"};
  }
  if (choice == device_choice::cuda) {
    throw cuda_error("--device cuda: no usable CUDA device: " + probe.reason +
                     " (run `trove devices` for details, or use --device cpu)");
  }
  return {kernels::make_cpu_backend(strategy), "no usable CUDA device (" + probe.reason + ")"};
}

}  // namespace trove::host
