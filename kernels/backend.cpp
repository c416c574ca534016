#include "kernels/backend.hpp"

namespace trove::kernels {

const char* to_string(backend_kind kind) noexcept {
  return kind == backend_kind::cuda ? "cuda" : "cpu";
}

const char* to_string(cpu_strategy strategy) noexcept {
  return strategy == cpu_strategy::atomic ? "atomic" : "owned";
}

}  // namespace trove::kernels
