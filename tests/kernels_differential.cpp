// Differential tests: the kernels (classify → dedup → aggregate → extract) against the plain
// reference, over many seeds and shapes, on every backend.
#include <bit>
#include <string>

#include "kernel_driver.hpp"

namespace trove::test {
namespace {

template <class P>
class DifferentialTest : public backend_test<P> {
 protected:
  /// Feeds events in batches of `batch_size` through kernels and reference, advancing the
  /// watermark to max event time − lateness after each batch and emitting closed windows; at the
  /// end the watermark goes to +infinity. Compares statuses per batch and every emitted row.
  void run(const std::vector<ref_event>& events, std::size_t batch_size,
           const driver_options& options, const std::string& context) {
    kernel_driver<DifferentialTest> driver(*this, options);
    reference ref(options.ttl_ms, options.size_ms, options.slide_ms, options.dedup,
                  options.string_dedup);
    std::int64_t watermark = INT64_MIN;
    std::int64_t max_ts = INT64_MIN;
    std::size_t emitted = 0;
    for (std::size_t begin = 0; begin < events.size() || begin == 0; begin += batch_size) {
      const std::size_t end = std::min(events.size(), begin + batch_size);
      std::vector<ref_event> batch(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                   events.begin() + static_cast<std::ptrdiff_t>(end));
      const auto expected_status = ref.process(batch, watermark);
      const auto actual_status = driver.process(batch, watermark);
      ASSERT_EQ(expected_status, actual_status) << context << " batch at " << begin;
      for (const auto& e : batch) max_ts = std::max(max_ts, e.ts);
      if (max_ts != INT64_MIN) watermark = max_ts - options.lateness_ms;
      auto expected = ref.extract_closed(watermark);
      auto actual = to_rows(driver.table().extract_closed(watermark, this->stream()));
      emitted += expected.size();
      expect_same_rows(expected, actual, context + " batch at " + std::to_string(begin));
      if (::testing::Test::HasFatalFailure()) return;
      if (batch_size == 0 || end == events.size()) break;
    }
    auto expected = ref.extract_closed(INT64_MAX);
    auto actual = to_rows(driver.table().extract_closed(INT64_MAX, this->stream()));
    emitted += expected.size();
    expect_same_rows(expected, actual, context + " final");
    EXPECT_EQ(driver.table().stats().entries, 0u) << context << ": groups left after +inf";
    if (!events.empty()) {
      EXPECT_GT(emitted, 0u) << context;
    }
  }
};
TYPED_TEST_SUITE(DifferentialTest, all_backends, backend_names);

TYPED_TEST(DifferentialTest, RandomShapesAndSeeds) {
  int cases = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    for (std::size_t batch : {1u, 7u, 333u, 4096u}) {
      event_shape shape;
      shape.events = batch == 1 ? 300 : 5000;
      shape.users = seed % 2 ? 50 : 5000;
      shape.zipf = seed % 3 == 0 ? 1.1 : 0.0;
      shape.duplicate_ratio = seed % 2 ? 0.05 : 0.3;
      shape.step_ms = 37;
      shape.disorder_ms = seed % 2 ? 0 : 20'000;
      shape.null_ratio = seed == 4 ? 0.2 : 0.0;
      driver_options options;
      options.ttl_ms = seed % 2 ? 600'000 : 15'000;
      options.lateness_ms = seed % 2 ? 0 : 5'000;
      options.size_ms = 60'000;
      options.slide_ms = seed == 5 ? 20'000 : 60'000;
      this->run(make_events(shape, seed), batch, options,
                "seed " + std::to_string(seed) + " batch " + std::to_string(batch));
      if (::testing::Test::HasFatalFailure()) return;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 24);
}

TYPED_TEST(DifferentialTest, EmptyInput) {
  this->run({}, 100, driver_options{}, "empty");
}

TYPED_TEST(DifferentialTest, SingleEvent) {
  event_shape shape;
  shape.events = 1;
  this->run(make_events(shape, 3), 100, driver_options{}, "single");
}

TYPED_TEST(DifferentialTest, AllDuplicates) {
  std::vector<ref_event> events(5000, make_events(event_shape{}, 5).front());
  this->run(events, 777, driver_options{}, "all duplicates");
}

TYPED_TEST(DifferentialTest, NoDuplicatesOneHotKey) {
  event_shape shape;
  shape.events = 20000;
  shape.users = 1;
  shape.types = 1;
  shape.duplicate_ratio = 0.0;
  this->run(make_events(shape, 9), 4096, driver_options{}, "hot key");
}

TYPED_TEST(DifferentialTest, HoppingWindowsOverlap) {
  event_shape shape;
  shape.events = 8000;
  shape.users = 300;
  shape.step_ms = 100;
  shape.disorder_ms = 3000;
  driver_options options;
  options.size_ms = 10'000;
  options.slide_ms = 2'500;
  options.lateness_ms = 1'000;
  this->run(make_events(shape, 21), 512, options, "hopping");
}

TYPED_TEST(DifferentialTest, StringDedupKeysByFingerprint) {
  event_shape shape;
  shape.events = 6000;
  shape.string_keys = true;
  shape.duplicate_ratio = 0.2;
  driver_options options;
  options.string_dedup = true;
  this->run(make_events(shape, 33), 1000, options, "string dedup");
}

TYPED_TEST(DifferentialTest, TableGrowthFromTinyCapacity) {
  event_shape shape;
  shape.events = 60000;
  shape.users = 20000;
  shape.step_ms = 5;
  driver_options options;
  options.dedup_capacity = 1;  // rounded up to the minimum, then grown many times
  options.agg_capacity = 1;
  this->run(make_events(shape, 44), 8192, options, "growth");
}

TYPED_TEST(DifferentialTest, DisorderProducesLateRows) {
  event_shape shape;
  shape.events = 6000;
  shape.step_ms = 50;
  shape.disorder_ms = 120'000;  // far more than the window: many rows arrive after their window
  driver_options options;
  options.size_ms = 10'000;
  options.slide_ms = 10'000;
  options.ttl_ms = 30'000;
  this->run(make_events(shape, 55), 256, options, "late rows");
}

TYPED_TEST(DifferentialTest, NoDedupConfigured) {
  event_shape shape;
  shape.events = 3000;
  shape.duplicate_ratio = 0.5;
  driver_options options;
  options.dedup = false;
  this->run(make_events(shape, 66), 500, options, "no dedup");
}

}  // namespace
}  // namespace trove::test
