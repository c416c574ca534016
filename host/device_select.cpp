#include "host/device_select.hpp"

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

selected_backend select_backend(device_choice choice) {
  if (choice == device_choice::cpu) {
    return {kernels::make_cpu_backend(), "--device cpu requested"};
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
  return {kernels::make_cpu_backend(), "no usable CUDA device (" + probe.reason + ")"};
}

}  // namespace trove::host
