/// @file backend_cuda_stub.cpp
/// @brief Stands in for backend_cuda.cu in builds without the CUDA backend (TROVE_CUDA=OFF).

#include "kernels/backend.hpp"
#include "kernels/error.hpp"

namespace trove::kernels {

cuda_probe probe_cuda() noexcept {
  cuda_probe probe;
  probe.compiled_in = false;
  probe.reason = "this build has no CUDA backend (configured with TROVE_CUDA=OFF or without nvcc)";
  return probe;
}

std::unique_ptr<backend> make_cuda_backend(int) {
  throw cuda_error("CUDA backend unavailable: " + probe_cuda().reason);
}

}  // namespace trove::kernels
