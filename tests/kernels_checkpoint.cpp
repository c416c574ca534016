// Checkpoint kernels: the dedup entries a batch adds (collect_accepted) and the open groups
// (snapshot) restored into fresh tables (insert_entries, restore) give a table that behaves
// exactly as the uninterrupted one: same statuses and same emitted rows for the rest of the
// stream, on every backend, over many seeds, cut points, table growth and hopping windows.
#include <algorithm>
#include <random>
#include <string>

#include "kernel_driver.hpp"

namespace trove::test {
namespace {

template <class P>
class CheckpointKernelTest : public backend_test<P> {
 protected:
  /// Runs `events` in batches through an uninterrupted driver and, from batch `cut` on, through
  /// a second one restored from the first one's state at the cut; compares every batch's
  /// statuses and every extraction, and both with the plain reference.
  void run(const std::vector<ref_event>& events, std::size_t batch_size, std::size_t cut,
           const driver_options& options, const std::string& context) {
    kernel_driver<CheckpointKernelTest> whole(*this, options);
    whole.collect(true);
    reference ref(options.ttl_ms, options.size_ms, options.slide_ms, options.dedup,
                  options.string_dedup);
    std::unique_ptr<kernel_driver<CheckpointKernelTest>> resumed;
    std::int64_t watermark = INT64_MIN;
    std::int64_t max_ts = INT64_MIN;
    std::size_t batch_index = 0;
    std::size_t compared_rows = 0;
    for (std::size_t begin = 0; begin < events.size(); begin += batch_size, ++batch_index) {
      if (batch_index == cut) {
        // The cut: a fresh driver gets the dedup entries collected so far and the open groups.
        resumed = std::make_unique<kernel_driver<CheckpointKernelTest>>(*this, options);
        if (options.dedup) {
          resumed->dedup()->insert_entries(whole.collected().data(), whole.collected().size(),
                                           watermark, {});
          EXPECT_LE(resumed->dedup()->stats().entries, whole.collected().size()) << context;
        }
        const kernels::agg_snapshot snap = whole.table().snapshot({});
        EXPECT_EQ(snap.rows, whole.table().stats().entries) << context;
        resumed->table().restore(snap, whole.table().emitted_watermark(), {});
        EXPECT_EQ(resumed->table().stats().entries, snap.rows) << context;
        EXPECT_EQ(resumed->table().emitted_watermark(), whole.table().emitted_watermark());
        // A snapshot does not change the table it was taken from.
        EXPECT_EQ(whole.table().snapshot({}).slots, snap.slots) << context;
      }
      const std::size_t end = std::min(events.size(), begin + batch_size);
      const std::vector<ref_event> batch(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                         events.begin() + static_cast<std::ptrdiff_t>(end));
      const auto expected_status = ref.process(batch, watermark);
      const auto status = whole.process(batch, watermark);
      ASSERT_EQ(expected_status, status) << context << " batch " << batch_index;
      if (resumed) {
        ASSERT_EQ(status, resumed->process(batch, watermark))
            << context << " batch " << batch_index << " (restored at batch " << cut << ")";
      }
      for (const auto& e : batch) max_ts = std::max(max_ts, e.ts);
      watermark = max_ts - options.lateness_ms;
      const auto expected = ref.extract_closed(watermark);
      const auto rows = to_rows(whole.table().extract_closed(watermark, {}));
      expect_same_rows(expected, rows, context + " batch " + std::to_string(batch_index));
      if (resumed) {
        expect_same_rows(rows, to_rows(resumed->table().extract_closed(watermark, {})),
                         context + " restored, batch " + std::to_string(batch_index));
        compared_rows += rows.size();
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    ASSERT_TRUE(resumed) << context << ": the cut lies past the end";
    const auto rows = to_rows(whole.table().extract_closed(INT64_MAX, {}));
    expect_same_rows(rows, to_rows(resumed->table().extract_closed(INT64_MAX, {})),
                     context + " final");
    compared_rows += rows.size();
    EXPECT_GT(compared_rows, 0u) << context << ": nothing emitted after the cut";
  }
};
TYPED_TEST_SUITE(CheckpointKernelTest, all_backends, backend_names);

TYPED_TEST(CheckpointKernelTest, RestoredTablesContinueLikeTheUninterruptedOnes) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 rng(seed);
    event_shape shape;
    shape.events = 6000;
    shape.users = seed % 2 ? 40 : 3000;
    shape.zipf = seed % 3 == 0 ? 1.1 : 0.0;
    shape.duplicate_ratio = 0.1;
    shape.disorder_ms = seed % 4 == 0 ? 3000 : 500;
    shape.null_ratio = seed % 5 == 0 ? 0.1 : 0.0;
    shape.string_keys = seed % 2 == 0;
    const auto events = make_events(shape, seed);
    driver_options o;
    o.ttl_ms = seed % 3 == 1 ? 4'000 : 600'000;  // short: entries expire around the cut
    o.size_ms = 10'000;
    o.slide_ms = seed % 4 == 3 ? 2'500 : 10'000;
    o.lateness_ms = 1'000;
    o.string_dedup = shape.string_keys;
    const std::size_t batch = 200 + rng() % 700;
    const std::size_t batches = (events.size() + batch - 1) / batch;
    const std::size_t cut = 1 + rng() % (batches - 1);
    this->run(events, batch, cut, o,
              "seed " + std::to_string(seed) + " batch " + std::to_string(batch) + " cut " +
                  std::to_string(cut));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TYPED_TEST(CheckpointKernelTest, RestoreIntoTinyTablesGrowsThem) {
  event_shape shape;
  shape.events = 20'000;
  shape.users = 5'000;
  const auto events = make_events(shape, 42);
  driver_options o;
  o.size_ms = 60'000;
  o.slide_ms = 20'000;
  o.dedup_capacity = 1024;  // both tables start far smaller than the state restored into them
  o.agg_capacity = 1024;
  this->run(events, 1000, 15, o, "tiny tables");
}

TYPED_TEST(CheckpointKernelTest, AnEmptyStateRestoresToAnEmptyTable) {
  event_shape shape;
  shape.events = 500;
  const auto events = make_events(shape, 7);
  this->run(events, 100, 0, driver_options{}, "cut before the first batch");
}

TYPED_TEST(CheckpointKernelTest, AKeyGivenTwiceKeepsItsLatestStamp) {
  kernels::dedup_options d;
  d.ttl_ms = 100;
  d.exact_64bit_keys = true;
  auto set = this->be().make_dedup_set(d, {});
  // Key 5 accepted at 10, expired, accepted again at 300; key 6 only at 10 (expired at 250).
  std::vector<kernels::dedup_entry> entries(3);
  entries[0].key = {5, 0};
  entries[0].first_seen = 10;
  entries[1].key = {6, 0};
  entries[1].first_seen = 10;
  entries[2].key = {5, 0};
  entries[2].first_seen = 300;
  set->insert_entries(entries.data(), entries.size(), 250, {});
  EXPECT_EQ(set->stats().entries, 1u);
  // A batch at watermark 350: key 5 (live until 400) is a duplicate, key 6 is accepted again.
  const std::vector<kernels::hash128> keys = {{5, 0}, {6, 0}};
  const std::vector<std::int64_t> times = {350, 350};
  auto d_keys = this->upload(keys);
  auto d_times = this->upload(times);
  auto d_status =
      this->upload(std::vector<std::uint8_t>{kernels::status_accepted, kernels::status_accepted});
  set->apply(d_keys.template as<kernels::hash128>(), d_times.template as<std::int64_t>(),
             d_status.template as<std::uint8_t>(), 2, 350, {});
  EXPECT_EQ(this->template download<std::uint8_t>(d_status, 2),
            (std::vector<std::uint8_t>{kernels::status_duplicate, kernels::status_accepted}));
}

TYPED_TEST(CheckpointKernelTest, ASnapshotOfAnotherLayoutIsRefused) {
  kernels::agg_options a;
  a.key_is_string = {false};
  a.fields = {kernels::value_kind::i64};
  a.window = {1000, 1000};
  auto table = this->be().make_agg_table(a, {});
  kernels::agg_snapshot snap;
  snap.rows = 1;
  snap.stride = 48;  // one field takes 48 + 32 bytes
  snap.slots.resize(48);
  snap.records = {0, 1};
  snap.record_offsets = {0};
  EXPECT_THROW(table->restore(snap, INT64_MIN, {}), std::logic_error);
  snap.stride = 80;
  snap.slots.assign(80, 0);
  snap.record_offsets = {5};  // past the records
  EXPECT_THROW(table->restore(snap, INT64_MIN, {}), std::logic_error);
}

}  // namespace
}  // namespace trove::test
