#pragma once
/// @file backend_fixture.hpp
/// @brief Typed-test fixture that instantiates a kernel test over every backend compiled in.
/// CUDA instantiations are named "Cuda" (so CTest labels them gpu) and skip with the reason when
/// no device is usable.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/column_view.hpp"

namespace trove::test {

struct cpu_param {
  static constexpr const char* name = "Cpu";
  static std::unique_ptr<kernels::backend> make(std::string&) {
    return kernels::make_cpu_backend();
  }
};

/// The CPU backend running the GPU's shared-slot (atomic) kernels.
struct cpu_atomic_param {
  static constexpr const char* name = "CpuAtomic";
  static std::unique_ptr<kernels::backend> make(std::string&) {
    return kernels::make_cpu_backend(kernels::cpu_strategy::atomic);
  }
};

/// CUDA: the tests' work runs on a stream of the backend's own (non-blocking, as the runtime's),
/// never on the legacy default stream.
struct cuda_param {
  static constexpr const char* name = "Cuda";
  static constexpr bool own_stream = true;
  static std::unique_ptr<kernels::backend> make(std::string& skip_reason) {
    const kernels::cuda_probe probe = kernels::probe_cuda();
    if (!probe.usable()) {
      skip_reason = "no usable CUDA device: " + probe.reason;
      return nullptr;
    }
    return kernels::make_cuda_backend(probe.devices.front().ordinal);
  }
};

struct backend_names {
  template <class T>
  static std::string GetName(int) {
    return T::name;
  }
};

using all_backends = ::testing::Types<cpu_param, cpu_atomic_param, cuda_param>;

/// @brief Fixture holding the backend under test and helpers to move data to and from it.
template <class Param>
class backend_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    be_ = Param::make(reason);
    if (!be_) GTEST_SKIP() << reason;
    if constexpr (requires { Param::own_stream; }) {
      if (Param::own_stream) stream_ = be_->create_stream();
    }
  }
  void TearDown() override {
    keep_.clear();
    if (be_) be_->destroy_stream(stream_);
  }

 public:
  kernels::backend& be() { return *be_; }
  /// The stream the fixture's copies (and kernel_driver's work) run on: the legacy default
  /// stream, or one of the backend's own for a Param with own_stream = true.
  [[nodiscard]] kernels::stream_view stream() const noexcept { return stream_; }

  /// Copies a host vector into a new device buffer.
  template <class T>
  kernels::device_buffer upload(const std::vector<T>& values) {
    kernels::device_buffer buffer(*be_, std::max<std::size_t>(values.size(), 1) * sizeof(T),
                                  stream_);
    be_->copy_to_device(buffer.data(), values.data(), values.size() * sizeof(T), stream_);
    be_->synchronize(stream_);
    return buffer;
  }

  /// Copies n elements of a device buffer back to the host.
  template <class T>
  std::vector<T> download(const kernels::device_buffer& buffer, std::size_t n) {
    std::vector<T> values(n);
    be_->copy_to_host(values.data(), buffer.data(), n * sizeof(T), stream_);
    be_->synchronize(stream_);
    return values;
  }

  /// Uploads a fixed-width column (8-byte words) and keeps its memory alive in the fixture.
  kernels::column_view fixed_column(const std::vector<std::uint64_t>& values,
                                    const std::vector<bool>& valid = {}) {
    kernels::column_view view;
    keep_.push_back(upload(values));
    view.d_values = keep_.back().template as<std::uint64_t>();
    if (!valid.empty()) view.d_validity = validity(valid);
    return view;
  }

  /// Uploads a string column.
  kernels::column_view string_column(const std::vector<std::string>& values,
                                     const std::vector<bool>& valid = {}) {
    std::vector<std::uint32_t> offsets{0};
    std::vector<char> chars;
    for (const auto& s : values) {
      chars.insert(chars.end(), s.begin(), s.end());
      offsets.push_back(static_cast<std::uint32_t>(chars.size()));
    }
    kernels::column_view view;
    view.is_string = true;
    keep_.push_back(upload(offsets));
    view.d_offsets = keep_.back().template as<std::uint32_t>();
    keep_.push_back(upload(chars));
    view.d_chars = keep_.back().template as<char>();
    if (!valid.empty()) view.d_validity = validity(valid);
    return view;
  }

  const std::uint8_t* validity(const std::vector<bool>& valid) {
    std::vector<std::uint8_t> bits((valid.size() + 7) / 8, 0);
    for (std::size_t i = 0; i < valid.size(); ++i) {
      if (valid[i]) bits[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
    }
    keep_.push_back(upload(bits));
    return keep_.back().template as<std::uint8_t>();
  }

  /// Releases the columns uploaded so far (call between batches of a long test).
  void release_columns() { keep_.clear(); }

  std::unique_ptr<kernels::backend> be_;
  kernels::stream_view stream_{};
  std::vector<kernels::device_buffer> keep_;
};

}  // namespace trove::test
