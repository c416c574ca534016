// Checkpoint kernels: the dedup entries a batch adds (collect_accepted) and the open groups
// (snapshot) restored into fresh tables (insert_entries, restore) give a table that behaves
// exactly as the uninterrupted one: same statuses and same emitted rows for the rest of the
// stream, on every backend, over many seeds, cut points, table growth and hopping windows. The
// incremental form: snapshots of the groups updated since the previous one (snapshot_updated),
// taken at random batch boundaries after a full one, merged (merge_snapshots) into the state at
// the cut — which must be the full snapshot's groups, and restore a table that continues alike.
#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "kernel_driver.hpp"

namespace trove::test {
namespace {

/// The groups of a snapshot by identity (the slot's first 24 bytes: key fingerprint, window),
/// each with its slot bytes and key record. Two header words are the table's bookkeeping, not the
/// group's state, and are masked: the key record's arena offset (bytes 24..27; a rebuild moves
/// records, restore() takes record_offsets instead) and the "updated" mark (bytes 44..47).
std::map<std::string, std::pair<std::string, std::vector<std::uint64_t>>> groups_of(
    const kernels::agg_snapshot& snap) {
  std::vector<std::uint64_t> starts(snap.record_offsets);
  std::sort(starts.begin(), starts.end());
  std::map<std::string, std::pair<std::string, std::vector<std::uint64_t>>> out;
  for (std::size_t row = 0; row < snap.rows; ++row) {
    const auto* slot = reinterpret_cast<const char*>(snap.slots.data() + row * snap.stride);
    const std::uint64_t at = snap.record_offsets[row];
    const auto next = std::upper_bound(starts.begin(), starts.end(), at);
    const std::uint64_t end = next == starts.end() ? snap.records.size() : *next;
    std::string bytes(slot, snap.stride);
    std::fill(bytes.begin() + 24, bytes.begin() + 28, '\0');
    std::fill(bytes.begin() + 44, bytes.begin() + 48, '\0');
    auto [it, fresh] = out.emplace(
        std::string(slot, 24),
        std::make_pair(std::move(bytes),
                       std::vector<std::uint64_t>(snap.records.begin() + static_cast<long>(at),
                                                  snap.records.begin() + static_cast<long>(end))));
    EXPECT_TRUE(fresh) << "a group twice in one snapshot";
  }
  return out;
}

void expect_same_groups(const kernels::agg_snapshot& expected, const kernels::agg_snapshot& got,
                        const std::string& context) {
  EXPECT_EQ(got.rows, expected.rows) << context;
  EXPECT_TRUE(groups_of(expected) == groups_of(got))
      << context << ": the merged chain holds other groups or values than the full snapshot";
}

template <class P>
class CheckpointKernelTest : public backend_test<P> {
 protected:
  /// Runs `events` in batches through an uninterrupted driver and, from batch `cut` on, through
  /// a second one restored from the first one's state at the cut; compares every batch's
  /// statuses and every extraction, and both with the plain reference.
  /// With `incremental_seed`, the state at the cut is the merge of a chain (see the file comment):
  /// a full snapshot at a random batch, then snapshots of the updated groups at random batches.
  void run(const std::vector<ref_event>& events, std::size_t batch_size, std::size_t cut,
           const driver_options& options, const std::string& context,
           std::uint64_t incremental_seed = 0) {
    driver_options whole_options = options;
    if (incremental_seed) {
      whole_options.track_checkpoint = true;
      // Odd seeds also keep update emission's own list, emptied every batch (extract_updated).
      whole_options.track_updates = incremental_seed % 2 == 1;
    }
    std::mt19937_64 chain_rng(incremental_seed);
    std::vector<kernels::agg_snapshot> chain;
    std::size_t deltas = 0;
    kernel_driver<CheckpointKernelTest> whole(*this, whole_options);
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
                                           watermark, this->stream());
          EXPECT_LE(resumed->dedup()->stats().entries, whole.collected().size()) << context;
        }
        kernels::agg_snapshot snap = whole.table().snapshot({});
        EXPECT_EQ(snap.rows, whole.table().stats().entries) << context;
        // A snapshot does not change the table it was taken from.
        EXPECT_EQ(whole.table().snapshot({}).slots, snap.slots) << context;
        if (incremental_seed) {
          if (chain.empty()) chain.push_back(whole.table().snapshot({}));  // the chain's start
          chain.push_back(whole.table().snapshot_updated({}));
          const kernels::agg_snapshot merged =
              kernels::merge_snapshots(chain, options.size_ms, whole.table().emitted_watermark());
          expect_same_groups(snap, merged,
                             context + " (" + std::to_string(chain.size()) + " snapshots, " +
                                 std::to_string(deltas) + " of them of updates)");
          snap = merged;
        }
        resumed->table().restore(snap, whole.table().emitted_watermark(), this->stream());
        EXPECT_EQ(resumed->table().stats().entries, snap.rows) << context;
        EXPECT_EQ(resumed->table().emitted_watermark(), whole.table().emitted_watermark());
      }
      if (incremental_seed && !resumed && batch_index > 0) {
        // A checkpoint between two batches before the cut: full (the chain starts again) or of
        // the groups updated since the previous one.
        const std::uint64_t pick = chain_rng() % 8;
        if (pick == 0) {
          chain.clear();
          chain.push_back(whole.table().snapshot({}));
          whole.table().forget_updated({});
          EXPECT_EQ(whole.table().updated_count(), 0u) << context;
        } else if (pick < 5 && !chain.empty()) {
          const std::size_t listed = whole.table().updated_count();
          chain.push_back(whole.table().snapshot_updated({}));
          EXPECT_LE(chain.back().rows, listed) << context;
          EXPECT_EQ(whole.table().updated_count(), 0u) << context;
          ++deltas;
        }
      }
      const std::size_t end = std::min(events.size(), begin + batch_size);
      const std::vector<ref_event> batch(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                         events.begin() + static_cast<std::ptrdiff_t>(end));
      const auto expected_status = ref.process(batch, watermark);
      const auto status = whole.process(batch, watermark);
      ASSERT_EQ(expected_status, status) << context << " batch " << batch_index;
      if (whole_options.track_updates) (void)whole.table().extract_updated({});  // a changelog
      if (resumed) {
        ASSERT_EQ(status, resumed->process(batch, watermark))
            << context << " batch " << batch_index << " (restored at batch " << cut << ")";
      }
      for (const auto& e : batch) max_ts = std::max(max_ts, e.ts);
      watermark = max_ts - options.lateness_ms;
      const auto expected = ref.extract_closed(watermark);
      const auto rows = to_rows(whole.table().extract_closed(watermark, this->stream()));
      expect_same_rows(expected, rows, context + " batch " + std::to_string(batch_index));
      if (resumed) {
        expect_same_rows(rows, to_rows(resumed->table().extract_closed(watermark, this->stream())),
                         context + " restored, batch " + std::to_string(batch_index));
        compared_rows += rows.size();
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    ASSERT_TRUE(resumed) << context << ": the cut lies past the end";
    const auto rows = to_rows(whole.table().extract_closed(INT64_MAX, this->stream()));
    expect_same_rows(rows, to_rows(resumed->table().extract_closed(INT64_MAX, this->stream())),
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

TYPED_TEST(CheckpointKernelTest, AChainOfUpdatedGroupsMergesIntoTheStateAtTheCut) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    event_shape shape;
    shape.events = 8000;
    shape.users = seed % 2 ? 60 : 4000;
    shape.zipf = seed % 3 == 0 ? 1.1 : 0.0;
    shape.duplicate_ratio = 0.1;
    shape.disorder_ms = seed % 4 == 0 ? 3000 : 500;
    shape.string_keys = seed % 2 == 0;
    const auto events = make_events(shape, seed);
    driver_options o;
    o.size_ms = seed % 3 == 2 ? 5'000 : 20'000;  // short windows: many close inside the chain
    o.slide_ms = seed % 4 == 3 ? o.size_ms / 4 : o.size_ms;
    o.lateness_ms = 1'000;
    o.agg_capacity = seed % 5 == 0 ? 1024 : 1u << 16;  // growth (rehash) inside the chain
    o.string_dedup = shape.string_keys;
    const std::size_t batch = 100 + rng() % 400;
    const std::size_t batches = (events.size() + batch - 1) / batch;
    const std::size_t cut = batches / 2 + rng() % (batches / 2);
    this->run(events, batch, cut, o,
              "seed " + std::to_string(seed) + " batch " + std::to_string(batch) + " cut " +
                  std::to_string(cut),
              seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TYPED_TEST(CheckpointKernelTest, MergeKeepsTheNewestVersionAndDropsEmittedWindows) {
  // Three snapshots of one table: the merge of any chain ending in the newest equals it.
  driver_options o;
  o.size_ms = 10'000;
  o.slide_ms = 10'000;
  o.track_checkpoint = true;
  kernel_driver<TestFixture> d(*this, o);
  auto ev = [](std::uint64_t user, std::int64_t ts) {
    ref_event e;
    e.event_id = user * 1'000'000 + static_cast<std::uint64_t>(ts);
    e.user = user;
    e.ts = ts;
    e.type = "t";
    e.amount = 1.0;
    return e;
  };
  (void)d.process({ev(1, 1000), ev(2, 1500), ev(3, 12'000)}, INT64_MIN);
  std::vector<kernels::agg_snapshot> chain;
  chain.push_back(d.table().snapshot({}));
  d.table().forget_updated({});
  (void)d.process({ev(1, 2000), ev(4, 13'000)}, INT64_MIN);  // user 1 updated, user 4 new
  chain.push_back(d.table().snapshot_updated({}));
  EXPECT_EQ(chain.back().rows, 2u);
  (void)d.table().extract_closed(10'000,
                                 this->stream());  // window [0, 10 s) emitted: users 1 and 2 go
  (void)d.process({ev(3, 14'000)}, 10'000);
  chain.push_back(d.table().snapshot_updated({}));
  EXPECT_EQ(chain.back().rows, 1u);
  const auto merged = kernels::merge_snapshots(chain, o.size_ms, d.table().emitted_watermark());
  expect_same_groups(d.table().snapshot({}), merged, "three snapshots");
  EXPECT_EQ(merged.rows, 2u);  // users 3 and 4 in [10 s, 20 s)
  // Without the frontier the emitted groups would come back, user 1 with its newer count.
  const auto unfiltered = kernels::merge_snapshots(chain, o.size_ms, INT64_MIN);
  EXPECT_EQ(unfiltered.rows, 4u);
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
  auto set = this->be().make_dedup_set(d, this->stream());
  // Key 5 accepted at 10, expired, accepted again at 300; key 6 only at 10 (expired at 250).
  std::vector<kernels::dedup_entry> entries(3);
  entries[0].key = {5, 0};
  entries[0].first_seen = 10;
  entries[1].key = {6, 0};
  entries[1].first_seen = 10;
  entries[2].key = {5, 0};
  entries[2].first_seen = 300;
  set->insert_entries(entries.data(), entries.size(), 250, this->stream());
  EXPECT_EQ(set->stats().entries, 1u);
  // A batch at watermark 350: key 5 (live until 400) is a duplicate, key 6 is accepted again.
  const std::vector<kernels::hash128> keys = {{5, 0}, {6, 0}};
  const std::vector<std::int64_t> times = {350, 350};
  auto d_keys = this->upload(keys);
  auto d_times = this->upload(times);
  auto d_status =
      this->upload(std::vector<std::uint8_t>{kernels::status_accepted, kernels::status_accepted});
  set->apply(d_keys.template as<kernels::hash128>(), d_times.template as<std::int64_t>(),
             d_status.template as<std::uint8_t>(), 2, 350, this->stream());
  EXPECT_EQ(this->template download<std::uint8_t>(d_status, 2),
            (std::vector<std::uint8_t>{kernels::status_duplicate, kernels::status_accepted}));
}

TYPED_TEST(CheckpointKernelTest, ASnapshotOfAnotherLayoutIsRefused) {
  kernels::agg_options a;
  a.key_is_string = {false};
  a.fields = {kernels::value_kind::i64};
  a.window = {1000, 1000};
  auto table = this->be().make_agg_table(a, this->stream());
  kernels::agg_snapshot snap;
  snap.rows = 1;
  snap.stride = 48;  // one field takes 48 + 32 bytes
  snap.slots.resize(48);
  snap.records = {0, 1};
  snap.record_offsets = {0};
  EXPECT_THROW(table->restore(snap, INT64_MIN, this->stream()), std::logic_error);
  snap.stride = 80;
  snap.slots.assign(80, 0);
  snap.record_offsets = {5};  // past the records
  EXPECT_THROW(table->restore(snap, INT64_MIN, this->stream()), std::logic_error);
}

}  // namespace
}  // namespace trove::test
