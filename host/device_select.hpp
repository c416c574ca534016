#pragma once
/// @file device_select.hpp
/// @brief Picks the backend for `--device auto|cpu|cuda`.

#include <memory>
#include <string>
#include <string_view>

#include "host/config.hpp"
#include "kernels/backend.hpp"

namespace trove::host {

/// @brief Parses "auto", "cpu" or "cuda"; false otherwise.
bool parse_device_choice(std::string_view text, device_choice& out) noexcept;

/// @brief A chosen backend and the reason it was chosen (logged at start-up).
struct selected_backend {
  std::unique_ptr<kernels::backend> backend;
  std::string reason;
};

/// @brief auto: CUDA when a device is usable, else CPU (the reason says why); cuda: a usable
/// device or trove::cuda_error with the reason none is usable; cpu: the CPU backend.
selected_backend select_backend(device_choice choice);

}  // namespace trove::host
