#pragma once
/// @file backend.hpp
/// @brief The small interface the runtime uses to drive a device: memory, copies, streams and the
/// factories of the per-backend kernel objects. Raw pointers and sizes only cross this boundary;
/// Thrust types never do (the CPU and CUDA builds of Thrust differ).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace trove::kernels {

class dedup_set;
class agg_table;
struct dedup_options;
struct agg_options;
struct classify_input;
struct hash128;

/// @brief Which backend executes the kernels.
enum class backend_kind { cpu, cuda };

/// @brief "cpu" or "cuda".
const char* to_string(backend_kind kind) noexcept;

/// @brief A non-owning handle on a stream of work (a cudaStream_t on CUDA; unused on the CPU).
struct stream_view {
  void* handle = nullptr;
};

/// @brief Description of one CUDA device as seen by the runtime.
struct cuda_device_info {
  int ordinal = 0;
  std::string name;
  std::size_t total_memory = 0;
  int cc_major = 0;
  int cc_minor = 0;
};

/// @brief What the CUDA runtime reports: usable devices, or why none is usable.
struct cuda_probe {
  bool compiled_in = false;  ///< built with the CUDA backend
  std::vector<cuda_device_info> devices;
  std::string reason;  ///< why no device is usable (empty when one is)
  [[nodiscard]] bool usable() const noexcept { return compiled_in && !devices.empty(); }
};

/// @brief Queries the CUDA runtime; never throws (a missing driver is a reason, not an error).
cuda_probe probe_cuda() noexcept;

/// @brief Number of threads the CPU backend (Thrust OpenMP system) runs on.
int cpu_backend_threads() noexcept;

/// @brief A device with its memory, copies, streams and kernel objects.
class backend {
 public:
  virtual ~backend() = default;

  /// @brief The kind of this backend.
  [[nodiscard]] virtual backend_kind kind() const noexcept = 0;
  /// @brief Human-readable description, e.g. "cpu (2 OpenMP threads)", "cpu (2 OpenMP threads,
  /// atomic)" (the atomic strategy) or "cuda:0 NVIDIA H100 (sm_90)".
  [[nodiscard]] virtual std::string description() const = 0;

  /// @brief Allocates device memory (stream-ordered on CUDA). Throws on failure.
  virtual void* allocate(std::size_t bytes, stream_view stream) = 0;
  /// @brief Frees memory from allocate() (stream-ordered on CUDA).
  virtual void deallocate(void* ptr, std::size_t bytes, stream_view stream) noexcept = 0;
  /// @brief Allocates host staging memory: pinned on CUDA, 64-byte aligned on the CPU.
  virtual void* allocate_host(std::size_t bytes) = 0;
  /// @brief Frees memory from allocate_host().
  virtual void deallocate_host(void* ptr, std::size_t bytes) noexcept = 0;

  /// @brief Copies host → device, asynchronously with respect to the host on CUDA.
  virtual void copy_to_device(void* d_dst, const void* h_src, std::size_t bytes,
                              stream_view stream) = 0;
  /// @brief Copies device → host, asynchronously with respect to the host on CUDA.
  virtual void copy_to_host(void* h_dst, const void* d_src, std::size_t bytes,
                            stream_view stream) = 0;
  /// @brief Copies device → device.
  virtual void copy_on_device(void* d_dst, const void* d_src, std::size_t bytes,
                              stream_view stream) = 0;
  /// @brief Fills device memory with a byte value.
  virtual void fill_bytes(void* d_dst, int value, std::size_t bytes, stream_view stream) = 0;

  /// @brief Creates an independent stream (CUDA) or a null handle (CPU).
  virtual stream_view create_stream() = 0;
  /// @brief Destroys a stream from create_stream().
  virtual void destroy_stream(stream_view stream) noexcept = 0;
  /// @brief Blocks until all work queued on the stream is done.
  virtual void synchronize(stream_view stream) = 0;

  /// @brief Sum of an int64 device array (a Thrust reduction with this backend's policy).
  virtual std::int64_t reduce_sum(const std::int64_t* d_values, std::size_t n,
                                  stream_view stream) = 0;

  /// @brief Filter, late check and dedup keys of a batch (see classify.hpp): writes every row's
  /// status (accepted, filtered or late) and, for accepted rows, its dedup key.
  virtual void classify(const classify_input& input, std::uint8_t* d_status, hash128* d_dedup_keys,
                        stream_view stream) = 0;
  /// @brief Counts rows per status (counts has row_status::status_count entries).
  virtual void count_status(const std::uint8_t* d_status, std::size_t n, std::uint64_t* counts,
                            stream_view stream) = 0;

  /// @brief Stream compaction of the status mask: writes the indices of the rows whose status is
  /// `status` to d_rows (room for n), in row order, and returns how many (forwarded outputs).
  virtual std::size_t select_rows(const std::uint8_t* d_status, std::size_t n, std::uint8_t status,
                                  std::uint32_t* d_rows, stream_view stream) = 0;

  /// @brief Creates an empty device-resident dedup set whose work runs on `stream` (like cuco's
  /// containers): its memory is allocated, zeroed and freed there and its kernels run there, so
  /// nothing it does can race the work of another stream; every call must pass this stream.
  virtual std::unique_ptr<dedup_set> make_dedup_set(const dedup_options& options,
                                                    stream_view stream) = 0;
  /// @brief Creates an empty device-resident aggregation table whose work runs on `stream` (as
  /// make_dedup_set); every call must pass this stream.
  virtual std::unique_ptr<agg_table> make_agg_table(const agg_options& options,
                                                    stream_view stream) = 0;
};

/// @brief One operation a recording CPU backend saw, with the stream it was issued on: what the
/// tests of stream ordering check (the CPU runs every call at once, so order is not observable
/// otherwise, but the stream each operation was issued on is).
struct backend_op {
  enum class kind { allocate, deallocate, fill, copy, kernel, allocate_host, deallocate_host };
  kind what = kind::kernel;
  void* stream = nullptr;        ///< stream_view::handle it was issued on (host memory: null)
  const void* memory = nullptr;  ///< allocate, deallocate, fill, copy (destination); kernels: null
  std::size_t bytes = 0;         ///< allocations, fills and copies
  bool to_host = false;          ///< a copy device → host
};

/// @brief The operations of a recording CPU backend, in issue order (thread-safe).
class backend_op_log {
 public:
  /// @brief Appends one operation.
  void record(const backend_op& op) {
    std::lock_guard lock(mutex_);
    ops_.push_back(op);
  }
  /// @brief A copy of the operations so far.
  [[nodiscard]] std::vector<backend_op> ops() const {
    std::lock_guard lock(mutex_);
    return ops_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<backend_op> ops_;
};

/// @brief How the CPU backend runs the table passes (dedup, aggregate).
enum class cpu_strategy {
  /// Each thread owns a share of the table's slots and applies the rows whose key lives there in
  /// arrival order: no atomics on aggregates, float sums identical for any thread count.
  owned,
  /// Rows in parallel with atomics on shared slots, exactly as the GPU runs the same kernels:
  /// what lets the CPU exercise the CUDA path's logic (float sums may differ in their last bits).
  atomic,
};

/// @brief "owned" or "atomic".
const char* to_string(cpu_strategy strategy) noexcept;

/// @brief The CPU backend (always available), running the table passes with `strategy`.
/// @param log when not null, every memory operation and kernel is recorded there with its stream,
///        and create_stream() hands out distinct non-null handles (never dereferenced on the CPU)
///        so that a test can tell the streams apart
std::unique_ptr<backend> make_cpu_backend(cpu_strategy strategy = cpu_strategy::owned,
                                          backend_op_log* log = nullptr);
/// @brief The CUDA backend on the given device; throws trove::cuda_error when none is usable.
std::unique_ptr<backend> make_cuda_backend(int ordinal = 0);

/// @brief RAII host staging memory owned through a backend (allocate_host: pinned on CUDA, so
/// that a device → host copy into it is a real asynchronous DMA, not a staged pageable copy),
/// kept across calls and grown on demand.
class host_buffer {
 public:
  host_buffer() = default;
  host_buffer(const host_buffer&) = delete;
  host_buffer& operator=(const host_buffer&) = delete;
  host_buffer(host_buffer&& other) noexcept { swap(other); }
  host_buffer& operator=(host_buffer&& other) noexcept {
    host_buffer tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  ~host_buffer() { release(); }
  /// @brief At least `bytes` of staging (its contents are not kept when it grows).
  void reserve(backend& be, std::size_t bytes) {
    if (bytes <= bytes_ && backend_ == &be) return;
    release();
    const std::size_t size = std::max(bytes, 2 * bytes_);
    data_ = be.allocate_host(size);
    backend_ = &be;
    bytes_ = size;
  }
  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_; }

 private:
  void release() noexcept {
    if (data_) backend_->deallocate_host(data_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void swap(host_buffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
  }
  backend* backend_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// @brief RAII device allocation owned through a backend. It is freed on the stream of the last
/// work that used it (use_on()), by default the stream it was allocated on: a free on another
/// stream could hand the memory out again while that work still reads it.
class device_buffer {
 public:
  device_buffer() = default;
  device_buffer(backend& be, std::size_t bytes, stream_view stream = {})
      : backend_(&be), bytes_(bytes), stream_(stream) {
    data_ = bytes ? be.allocate(bytes, stream) : nullptr;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept { swap(other); }
  device_buffer& operator=(device_buffer&& other) noexcept {
    device_buffer tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  ~device_buffer() {
    if (data_) backend_->deallocate(data_, bytes_, stream_);
  }
  [[nodiscard]] void* data() const noexcept { return data_; }
  template <class T>
  [[nodiscard]] T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_; }
  /// @brief The stream the buffer will be freed on.
  [[nodiscard]] stream_view stream() const noexcept { return stream_; }
  /// @brief Work on `stream` uses the buffer from now on: it is freed there, after that work.
  /// The caller orders that work after the buffer's earlier work (e.g. by synchronizing).
  void use_on(stream_view stream) noexcept { stream_ = stream; }

 private:
  void swap(device_buffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    std::swap(stream_, o.stream_);
  }
  backend* backend_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  stream_view stream_{};
};

}  // namespace trove::kernels
