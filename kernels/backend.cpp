#include "kernels/backend.hpp"

namespace trove::kernels {

const char* to_string(backend_kind kind) noexcept {
  return kind == backend_kind::cuda ? "cuda" : "cpu";
}

}  // namespace trove::kernels
