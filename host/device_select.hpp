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

/// @brief The environment variable choosing the CPU backend's strategy: `owned` (the default) or
/// `atomic` (the GPU's rows-in-parallel kernels, for the whole pipeline).
inline constexpr const char* cpu_strategy_env = "TROVE_CPU_STRATEGY";

/// @brief Parses "owned" or "atomic"; false otherwise.
bool parse_cpu_strategy(std::string_view text, kernels::cpu_strategy& out) noexcept;

/// @brief The strategy TROVE_CPU_STRATEGY asks for (unset or empty: owned); throws
/// trove::logic_error (a configuration error, exit 2) naming the variable and the allowed values
/// for anything else.
kernels::cpu_strategy cpu_strategy_from_env();

/// @brief A chosen backend and the reason it was chosen (logged at start-up).
struct selected_backend {
  std::unique_ptr<kernels::backend> backend;
  std::string reason;
};

/// @brief auto: CUDA when a device is usable, else CPU (the reason says why); cuda: a usable
/// device or trove::cuda_error with the reason none is usable; cpu: the CPU backend. The CPU
/// backend runs cpu_strategy_from_env(); a bad TROVE_CPU_STRATEGY is refused whatever the choice,
/// so that a typo never goes unnoticed until the day the CUDA device is missing.
selected_backend select_backend(device_choice choice);

}  // namespace trove::host
