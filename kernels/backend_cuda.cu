/// @file backend_cuda.cu
/// @brief The CUDA backend: stream-ordered device memory pool, pinned host memory, async copies,
/// and the CUDA instantiation of every kernel template (the same single-source code the CPU
/// backend runs).

#include <cuda_runtime.h>
#include <thrust/copy.h>
#include <thrust/reduce.h>

#include <string>

#include "kernels/agg_table_impl.hpp"
#include "kernels/backend.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set_impl.hpp"
#include "kernels/error.hpp"
#include "kernels/exec_cuda.cuh"

namespace trove::kernels {

cuda_probe probe_cuda() noexcept {
  cuda_probe probe;
  probe.compiled_in = true;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    probe.reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    if (status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice) {
      probe.reason += " (no usable NVIDIA driver or GPU on this machine)";
    }
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return probe;
  }
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) continue;
    probe.devices.push_back(
        cuda_device_info{ordinal, prop.name, prop.totalGlobalMem, prop.major, prop.minor});
  }
  if (probe.devices.empty()) probe.reason = "the CUDA runtime reports no devices";
  return probe;
}

namespace {

class cuda_backend final : public backend {
 public:
  explicit cuda_backend(int ordinal) : ordinal_(ordinal) {
    TROVE_CUDA_TRY(cudaSetDevice(ordinal));
    TROVE_CUDA_TRY(cudaGetDeviceProperties(&prop_, ordinal));
    // Keep freed blocks in the stream-ordered pool instead of returning them to the driver: the
    // runtime allocates per-batch scratch, which must not cost a driver call each time.
    cudaMemPool_t pool;
    TROVE_CUDA_TRY(cudaDeviceGetDefaultMemPool(&pool, ordinal));
    std::uint64_t threshold = ~std::uint64_t{0};
    TROVE_CUDA_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }

  [[nodiscard]] backend_kind kind() const noexcept override { return backend_kind::cuda; }
  [[nodiscard]] std::string description() const override {
    return "cuda:" + std::to_string(ordinal_) + " " + prop_.name + " (sm_" +
           std::to_string(prop_.major) + std::to_string(prop_.minor) + ")";
  }
  void* allocate(std::size_t bytes, stream_view stream) override {
    bind();
    void* ptr = nullptr;
    TROVE_CUDA_TRY(cudaMallocAsync(&ptr, bytes, to_cuda(stream)));
    return ptr;
  }
  void deallocate(void* ptr, std::size_t, stream_view stream) noexcept override {
    cudaFreeAsync(ptr, to_cuda(stream));
  }
  void* allocate_host(std::size_t bytes) override {
    void* ptr = nullptr;
    // Portable: the source thread allocates it, the device thread copies from it.
    TROVE_CUDA_TRY(cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable));
    return ptr;
  }
  void deallocate_host(void* ptr, std::size_t) noexcept override { cudaFreeHost(ptr); }
  void copy_to_device(void* d_dst, const void* h_src, std::size_t bytes,
                      stream_view stream) override {
    bind();
    TROVE_CUDA_TRY(cudaMemcpyAsync(d_dst, h_src, bytes, cudaMemcpyHostToDevice, to_cuda(stream)));
  }
  void copy_to_host(void* h_dst, const void* d_src, std::size_t bytes,
                    stream_view stream) override {
    bind();
    TROVE_CUDA_TRY(cudaMemcpyAsync(h_dst, d_src, bytes, cudaMemcpyDeviceToHost, to_cuda(stream)));
  }
  void copy_on_device(void* d_dst, const void* d_src, std::size_t bytes,
                      stream_view stream) override {
    bind();
    TROVE_CUDA_TRY(cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, to_cuda(stream)));
  }
  void fill_bytes(void* d_dst, int value, std::size_t bytes, stream_view stream) override {
    bind();
    TROVE_CUDA_TRY(cudaMemsetAsync(d_dst, value, bytes, to_cuda(stream)));
  }
  stream_view create_stream() override {
    bind();
    cudaStream_t stream = nullptr;
    TROVE_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    return stream_view{stream};
  }
  void destroy_stream(stream_view stream) noexcept override {
    if (stream.handle) cudaStreamDestroy(to_cuda(stream));
  }
  void synchronize(stream_view stream) override {
    TROVE_CUDA_TRY(cudaStreamSynchronize(to_cuda(stream)));
  }
  std::int64_t reduce_sum(const std::int64_t* d_values, std::size_t n,
                          stream_view stream) override {
    bind();
    return thrust::reduce(detail::cuda_policy(to_cuda(stream)), d_values, d_values + n,
                          std::int64_t{0});
  }
  void classify(const classify_input& input, std::uint8_t* d_status, hash128* d_dedup_keys,
                stream_view stream) override {
    bind();
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    thrust::for_each(detail::cuda_policy(to_cuda(stream)), rows, rows + input.num_rows,
                     detail::classify_fn{input, d_status, d_dedup_keys});
  }
  void count_status(const std::uint8_t* d_status, std::size_t n, std::uint64_t* counts,
                    stream_view stream) override {
    bind();
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    const detail::status_counts total = thrust::transform_reduce(
        detail::cuda_policy(to_cuda(stream)), rows, rows + n, detail::status_one_fn{d_status},
        detail::status_counts{}, detail::status_merge_fn{});
    for (int s = 0; s < status_count; ++s) counts[s] = total.counts[s];
  }
  std::size_t select_rows(const std::uint8_t* d_status, std::size_t n, std::uint8_t status,
                          std::uint32_t* d_rows, stream_view stream) override {
    bind();
    const auto rows = thrust::counting_iterator<std::uint32_t>(0);
    std::uint32_t* end = thrust::copy_if(detail::cuda_policy(to_cuda(stream)), rows,
                                         rows + static_cast<std::uint32_t>(n), d_status, d_rows,
                                         detail::status_is_fn{status});
    return static_cast<std::size_t>(end - d_rows);
  }
  std::unique_ptr<dedup_set> make_dedup_set(const dedup_options& options,
                                            stream_view stream) override {
    bind();
    return detail::make_dedup_set(detail::cuda_exec{this, stream, ordinal_}, options);
  }
  std::unique_ptr<agg_table> make_agg_table(const agg_options& options,
                                            stream_view stream) override {
    bind();
    return std::make_unique<detail::agg_table_impl<detail::cuda_exec>>(
        detail::cuda_exec{this, stream, ordinal_}, options);
  }

 private:
  /// The current device is a per-thread setting and the backend is used from several threads
  /// (made on the main thread, driven from the device thread): every call that touches the
  /// device makes this backend's device current first (a thread-local switch, no driver work).
  void bind() const { TROVE_CUDA_TRY(cudaSetDevice(ordinal_)); }
  static cudaStream_t to_cuda(stream_view stream) noexcept {
    return static_cast<cudaStream_t>(stream.handle);
  }
  int ordinal_;
  cudaDeviceProp prop_{};
};

}  // namespace

std::unique_ptr<backend> make_cuda_backend(int ordinal) {
  const cuda_probe probe = probe_cuda();
  if (!probe.usable()) throw cuda_error("no usable CUDA device: " + probe.reason);
  if (ordinal < 0 || ordinal >= static_cast<int>(probe.devices.size())) {
    throw cuda_error("CUDA device " + std::to_string(ordinal) + " does not exist (" +
                     std::to_string(probe.devices.size()) + " usable)");
  }
  return std::make_unique<cuda_backend>(ordinal);
}

}  // namespace trove::kernels
