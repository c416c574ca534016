// Backend interface: memory round trips, fills and a Thrust reduction, on every backend.
#include <numeric>
#include <random>

#include "backend_fixture.hpp"

namespace trove::test {
namespace {

template <class P>
using BackendTest = backend_test<P>;
TYPED_TEST_SUITE(BackendTest, all_backends, backend_names);

TYPED_TEST(BackendTest, DeviceBufferRoundTrip) {
  std::mt19937_64 rng(7);
  for (std::size_t n : {1u, 7u, 4096u, 1u << 20}) {
    std::vector<std::uint64_t> values(n);
    for (auto& v : values) v = rng();
    auto buffer = this->upload(values);
    kernels::device_buffer copy(this->be(), n * sizeof(std::uint64_t));
    this->be().copy_on_device(copy.data(), buffer.data(), n * sizeof(std::uint64_t),
                              this->stream());
    EXPECT_EQ(this->template download<std::uint64_t>(copy, n), values) << "n=" << n;
  }
}

TYPED_TEST(BackendTest, PinnedHostMemoryIsUsable) {
  const std::size_t bytes = 1 << 16;
  auto* host = static_cast<unsigned char*>(this->be().allocate_host(bytes));
  ASSERT_NE(host, nullptr);
  for (std::size_t i = 0; i < bytes; ++i) host[i] = static_cast<unsigned char>(i * 31);
  kernels::device_buffer buffer(this->be(), bytes);
  this->be().copy_to_device(buffer.data(), host, bytes, this->stream());
  std::vector<unsigned char> back(bytes);
  this->be().copy_to_host(back.data(), buffer.data(), bytes, this->stream());
  this->be().synchronize({});
  EXPECT_EQ(0, std::memcmp(back.data(), host, bytes));
  this->be().deallocate_host(host, bytes);
}

TYPED_TEST(BackendTest, FillBytes) {
  kernels::device_buffer buffer(this->be(), 1000);
  this->be().fill_bytes(buffer.data(), 0xAB, 1000, this->stream());
  for (auto b : this->template download<unsigned char>(buffer, 1000)) ASSERT_EQ(b, 0xAB);
}

TYPED_TEST(BackendTest, ThrustReductionMatchesStdAccumulate) {
  std::mt19937_64 rng(11);
  for (std::size_t n : {0u, 1u, 1000u, 1000003u}) {
    std::vector<std::int64_t> values(n);
    for (auto& v : values) v = static_cast<std::int64_t>(rng() % 2000001) - 1000000;
    auto buffer = this->upload(values);
    const std::int64_t expected = std::accumulate(values.begin(), values.end(), std::int64_t{0});
    EXPECT_EQ(this->be().reduce_sum(buffer.template as<std::int64_t>(), n, this->stream()),
              expected);
  }
}

TYPED_TEST(BackendTest, StreamsCanBeCreatedAndSynchronized) {
  auto stream = this->be().create_stream();
  kernels::device_buffer buffer(this->be(), 64, stream);
  this->be().fill_bytes(buffer.data(), 1, 64, stream);
  this->be().synchronize(stream);
  this->be().destroy_stream(stream);
  SUCCEED();
}

TEST(CudaProbe, ReportsDevicesOrAReason) {
  const kernels::cuda_probe probe = kernels::probe_cuda();
  if (probe.usable()) {
    EXPECT_FALSE(probe.devices.front().name.empty());
  } else {
    EXPECT_FALSE(probe.reason.empty()) << "no device must come with a reason";
  }
}

}  // namespace
}  // namespace trove::test
