// Source-partition tags of aggregation groups on every backend: each (group, window) remembers the
// partition of the row that created it (owner-partitioned CPU: the first row in arrival order;
// atomic strategies: one of the rows that reached it), snapshots carry the tags, select_partitions
// and append_snapshot split and join snapshots by partition, and cross_partition_rows() counts the
// updates of groups created by another partition. Tags are read back through the public API only
// (a snapshot split by partition, restored and extracted) and compared with a plain model that
// replays the rows in arrival order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "backend_fixture.hpp"
#include "io/batch.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/error.hpp"
#include "kernels/row_status.hpp"

namespace trove::test {
namespace {

/// One input row: group key (user, type), event time, one i64 field and its source partition.
struct prow {
  std::uint64_t user = 0;
  std::string type;
  std::int64_t t = 0;
  std::int64_t qty = 0;
  std::int32_t partition = 0;
};

using group_id = std::tuple<std::int64_t, std::uint64_t, std::string>;  // (window, user, type)

/// Aggregates of one group as the table reports them.
struct group_value {
  std::uint64_t count = 0;
  std::int64_t sum = 0;
  std::int64_t min = 0;
  std::int64_t max = 0;
  bool operator==(const group_value&) const = default;
};

/// Starts of every window containing t, by brute force over multiples of the slide.
std::vector<std::int64_t> windows_of(std::int64_t t, std::int64_t size, std::int64_t slide) {
  const std::int64_t latest = t - (((t % slide) + slide) % slide);
  std::vector<std::int64_t> starts;
  for (std::int64_t s = latest; s + size > t; s -= slide) starts.push_back(s);
  return starts;
}

/// The plain model: every row updates each of its windows (no window is emitted in these tests);
/// a group's creator is its first row in arrival order.
struct partition_model {
  struct group {
    group_value value;
    std::int32_t creator = 0;
    std::vector<std::int32_t> partitions;  // of every update, in arrival order
  };
  std::int64_t size;
  std::int64_t slide;
  std::map<group_id, group> groups;

  void feed(const std::vector<prow>& rows) {
    for (const prow& r : rows) {
      for (std::int64_t s : windows_of(r.t, size, slide)) {
        auto [it, created] = groups.try_emplace(group_id{s, r.user, r.type});
        group& g = it->second;
        if (created) {
          g.creator = r.partition;
          g.value = {0, 0, r.qty, r.qty};
        }
        ++g.value.count;
        g.value.sum += r.qty;
        g.value.min = std::min(g.value.min, r.qty);
        g.value.max = std::max(g.value.max, r.qty);
        g.partitions.push_back(r.partition);
      }
    }
  }

  [[nodiscard]] std::size_t updates() const {
    std::size_t n = 0;
    for (const auto& [id, g] : groups) n += g.partitions.size();
    return n;
  }

  /// Updates whose partition differs from `tag_of` their group.
  template <class TagOf>
  [[nodiscard]] std::uint64_t mismatches(TagOf&& tag_of) const {
    std::uint64_t n = 0;
    for (const auto& [id, g] : groups) {
      const std::int32_t tag = tag_of(id, g);
      for (std::int32_t p : g.partitions) n += p != tag ? 1 : 0;
    }
    return n;
  }
};

/// A plain hash of the group key (not the table's fingerprint).
std::int32_t key_partition(std::uint64_t user, const std::string& type, std::int32_t partitions) {
  std::uint64_t h = user * 0x9E3779B97F4A7C15ull;
  for (unsigned char c : type) h = (h ^ c) * 0x100000001B3ull;
  return static_cast<std::int32_t>((h >> 17) % static_cast<std::uint64_t>(partitions));
}

/// How a batch hands its partitions to the table.
enum class partition_column {
  packed,     // int32 per row (stride 1)
  positions,  // the partition member of an array of io::source_position (stride 4)
  none,       // d_partition null: every row is partition 0
};

/// The key record of snapshot row i, decoded from the documented record format
/// ([validity mask][user][type length][type bytes, little-endian words]).
std::pair<std::uint64_t, std::string> record_key(const kernels::agg_snapshot& snap, std::size_t i) {
  const std::uint64_t* rec = snap.records.data() + snap.record_offsets[i];
  const std::uint64_t len = rec[2];
  std::string type(len, '\0');
  for (std::uint64_t b = 0; b < len; ++b) {
    type[b] = static_cast<char>((rec[3 + b / 8] >> (8 * (b % 8))) & 0xFF);
  }
  return {rec[1], type};
}

template <class P>
class AggPartitionTest : public backend_test<P> {
 public:
  static constexpr bool owned_strategy = std::is_same_v<P, cpu_param>;

  kernels::agg_options options(std::int64_t size, std::int64_t slide,
                               std::size_t capacity = 1024) const {
    kernels::agg_options o;
    o.key_is_string = {false, true};
    o.fields = {kernels::value_kind::i64};
    o.field_nullable = {false};
    o.window = {size, slide};
    o.initial_capacity = capacity;
    return o;
  }

  /// Uploads rows and applies them (columns released afterwards).
  void aggregate(kernels::agg_table& table, const std::vector<prow>& rows, partition_column how,
                 const std::vector<std::int64_t>& row_frontier = {}) {
    const std::size_t n = rows.size();
    std::vector<std::uint64_t> users(n), times(n), qty(n);
    std::vector<std::string> types(n);
    std::vector<std::int32_t> packed(n);
    std::vector<io::source_position> positions(n);
    kernels::agg_input in;
    in.num_rows = n;
    for (std::size_t i = 0; i < n; ++i) {
      users[i] = rows[i].user;
      types[i] = rows[i].type;
      times[i] = static_cast<std::uint64_t>(rows[i].t);
      qty[i] = static_cast<std::uint64_t>(rows[i].qty);
      packed[i] = rows[i].partition;
      // The offset's bytes must not be read as a partition: give them a distinct pattern.
      positions[i] = {rows[i].partition, static_cast<std::int64_t>(0x7777'0000'0000'0000ll + i)};
      in.key_string_bytes += types[i].size();
    }
    in.keys.count = 2;
    in.keys.columns[0] = this->fixed_column(users);
    in.keys.columns[1] = this->string_column(types);
    in.d_event_time = reinterpret_cast<const std::int64_t*>(this->fixed_column(times).d_values);
    this->keep_.push_back(this->upload(std::vector<std::uint8_t>(n, kernels::status_accepted)));
    in.d_status = this->keep_.back().template as<std::uint8_t>();
    in.fields[0] = this->fixed_column(qty);
    if (how == partition_column::packed) {
      this->keep_.push_back(this->upload(packed));
      in.d_partition = this->keep_.back().template as<std::int32_t>();
      in.partition_stride = 1;
    } else if (how == partition_column::positions) {
      this->keep_.push_back(this->upload(positions));
      in.d_partition =
          reinterpret_cast<const std::int32_t*>(this->keep_.back().template as<unsigned char>() +
                                                offsetof(io::source_position, partition));
      in.partition_stride = sizeof(io::source_position) / sizeof(std::int32_t);
    }
    if (!row_frontier.empty()) {
      std::vector<std::uint64_t> words(row_frontier.begin(), row_frontier.end());
      in.d_row_frontier = reinterpret_cast<const std::int64_t*>(this->fixed_column(words).d_values);
    }
    table.aggregate(in, this->stream());
    this->release_columns();
  }

  /// Every group of a table (restored from a snapshot into a fresh one, then extracted).
  std::map<group_id, group_value> groups_of(const kernels::agg_options& o,
                                            const kernels::agg_snapshot& snap) {
    auto table = this->be().make_agg_table(o, this->stream());
    table->restore(snap, INT64_MIN, this->stream());
    const kernels::agg_result r = table->extract_closed(INT64_MAX, this->stream());
    std::map<group_id, group_value> out;
    for (std::size_t i = 0; i < r.rows; ++i) {
      const auto& type = r.keys[1];
      const group_id id{r.window_start[i], r.keys[0].values[i],
                        type.chars.substr(type.offsets[i], type.offsets[i + 1] - type.offsets[i])};
      const group_value v{r.count[i], static_cast<std::int64_t>(r.fields[0].sum[i]),
                          static_cast<std::int64_t>(r.fields[0].min[i]),
                          static_cast<std::int64_t>(r.fields[0].max[i])};
      EXPECT_TRUE(out.emplace(id, v).second) << "group restored twice";
    }
    return out;
  }

  /// The tag of every group of a snapshot: the snapshot split by partition, each part restored
  /// into a fresh table and extracted. Also checks the parts' partitions vectors.
  std::map<group_id, std::int32_t> tags_of(const kernels::agg_options& o,
                                           const kernels::agg_snapshot& snap) {
    EXPECT_EQ(snap.partitions.size(), snap.rows);
    std::map<group_id, std::int32_t> tags;
    const std::set<std::int32_t> present(snap.partitions.begin(), snap.partitions.end());
    for (std::int32_t q : present) {
      const kernels::agg_snapshot part =
          kernels::select_partitions(snap, [q](std::int32_t p) { return p == q; });
      EXPECT_EQ(part.rows, static_cast<std::size_t>(
                               std::count(snap.partitions.begin(), snap.partitions.end(), q)))
          << "partition " << q;
      EXPECT_EQ(part.partitions, std::vector<std::int32_t>(part.rows, q)) << "partition " << q;
      for (const auto& [id, value] : groups_of(o, part)) {
        EXPECT_TRUE(tags.emplace(id, q).second) << "a group in two partitions";
      }
    }
    EXPECT_EQ(tags.size(), snap.rows);
    return tags;
  }

  /// The model's groups whose creator's partition is kept.
  static std::map<group_id, group_value> expected(const partition_model& model,
                                                  const std::function<bool(std::int32_t)>& keep) {
    std::map<group_id, group_value> out;
    for (const auto& [id, g] : model.groups) {
      if (keep(g.creator)) out.emplace(id, g.value);
    }
    return out;
  }
};
TYPED_TEST_SUITE(AggPartitionTest, all_backends, backend_names);

std::vector<prow> random_rows(std::mt19937_64& rng, std::size_t n, std::uint64_t users,
                              std::int64_t span, std::int32_t partitions, bool by_key) {
  static const char* types[] = {"view", "click", "", "a type longer than eight bytes"};
  std::vector<prow> rows(n);
  for (auto& r : rows) {
    r.user = rng() % users;
    r.type = types[rng() % 4];
    r.t = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span)) - span / 4;
    r.qty = static_cast<std::int64_t>(rng() % 2001) - 1000;
    r.partition = by_key
                      ? key_partition(r.user, r.type, partitions)
                      : static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(partitions));
  }
  return rows;
}

TYPED_TEST(AggPartitionTest, InputPartitionedByKeyTagsGroupsAndSplitsSnapshots) {
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    const std::string context = "seed " + std::to_string(seed);
    std::mt19937_64 rng(seed);
    const auto partitions = static_cast<std::int32_t>(2 + seed % 7);
    const bool hopping = seed % 2 == 0;
    const std::int64_t size = 3000;
    const std::int64_t slide = hopping ? 1000 : 3000;
    const auto o = this->options(size, slide);
    auto table = this->be().make_agg_table(o, this->stream());
    partition_model model{size, slide, {}};
    for (int batch = 0; batch < 3; ++batch) {
      const auto rows =
          random_rows(rng, 300 + rng() % 900, 40 + seed * 30, 20'000, partitions, true);
      model.feed(rows);
      this->aggregate(*table, rows,
                      batch % 2 ? partition_column::positions : partition_column::packed);
    }
    EXPECT_EQ(table->cross_partition_rows(), 0u) << context;

    const kernels::agg_snapshot snap = table->snapshot({});
    ASSERT_EQ(snap.rows, model.groups.size()) << context;
    ASSERT_EQ(snap.partitions.size(), snap.rows) << context;
    for (std::size_t i = 0; i < snap.rows; ++i) {
      const auto [user, type] = record_key(snap, i);
      ASSERT_EQ(snap.partitions[i], key_partition(user, type, partitions))
          << context << " row " << i << " user " << user << " type '" << type << "'";
    }
    const auto tags = this->tags_of(o, snap);
    for (const auto& [id, g] : model.groups) {
      const auto it = tags.find(id);
      ASSERT_NE(it, tags.end()) << context << ": group missing";
      ASSERT_EQ(it->second, g.creator) << context;
    }

    // A random subset of the partitions, alone and joined with its complement.
    std::set<std::int32_t> subset;
    for (std::int32_t p = 0; p < partitions; ++p) {
      if (rng() % 2) subset.insert(p);
    }
    const auto in_subset = [&](std::int32_t p) { return subset.count(p) > 0; };
    const auto outside = [&](std::int32_t p) { return subset.count(p) == 0; };
    const kernels::agg_snapshot sub = kernels::select_partitions(snap, in_subset);
    EXPECT_EQ(this->groups_of(o, sub), this->expected(model, in_subset)) << context << " subset";
    kernels::agg_snapshot joined = kernels::select_partitions(snap, outside);
    EXPECT_EQ(this->groups_of(o, joined), this->expected(model, outside)) << context;
    kernels::append_snapshot(joined, sub);
    EXPECT_EQ(joined.rows, snap.rows) << context;
    EXPECT_EQ(this->groups_of(o, joined), this->expected(model, [](std::int32_t) { return true; }))
        << context << " complement + subset";

    // Restored tables keep the tags, and go on counting against them.
    auto restored = this->be().make_agg_table(o, this->stream());
    restored->restore(joined, INT64_MIN, this->stream());
    EXPECT_EQ(this->tags_of(o, restored->snapshot({})), tags) << context << " restored";
    const auto more = random_rows(rng, 200, 40 + seed * 30, 20'000, partitions, true);
    this->aggregate(*restored, more, partition_column::packed);
    EXPECT_EQ(restored->cross_partition_rows(), 0u) << context;
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TYPED_TEST(AggPartitionTest, UnpartitionedInputTagsTheCreatorAndCountsCrossRows) {
  std::size_t rebuilt = 0;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const std::string context = "seed " + std::to_string(seed);
    std::mt19937_64 rng(100 + seed);
    const auto partitions = static_cast<std::int32_t>(2 + seed % 5);
    const bool hopping = seed % 3 == 0;
    const std::int64_t size = 4000;
    const std::int64_t slide = hopping ? 2000 : 4000;
    auto o = this->options(size, slide);
    if (seed % 4 == 1) o.prefill_min_slots = 0;  // rebuilds into prefilled tables
    auto table = this->be().make_agg_table(o, this->stream());
    partition_model model{size, slide, {}};
    // Few keys in the first batches (mostly updates), many later (growth in the middle).
    for (int batch = 0; batch < 5; ++batch) {
      const std::uint64_t users = batch < 2 ? 20 : 200 + 300 * seed;
      const auto rows = random_rows(rng, 500 + rng() % 1500, users, 40'000, partitions, false);
      model.feed(rows);
      this->aggregate(*table, rows,
                      batch % 2 ? partition_column::packed : partition_column::positions);
    }
    rebuilt += table->stats().rebuilds > 0 ? 1 : 0;

    const auto tags = this->tags_of(o, table->snapshot({}));
    ASSERT_EQ(tags.size(), model.groups.size()) << context;
    for (const auto& [id, g] : model.groups) {
      const auto it = tags.find(id);
      ASSERT_NE(it, tags.end()) << context << ": group missing";
      if constexpr (TestFixture::owned_strategy) {
        ASSERT_EQ(it->second, g.creator) << context << " window " << std::get<0>(id);
      } else {
        ASSERT_NE(std::find(g.partitions.begin(), g.partitions.end(), it->second),
                  g.partitions.end())
            << context << ": tag " << it->second << " of no row of the group";
      }
    }
    // Every update of a group counts when its partition differs from the group's tag: exact for
    // any creator, since the creating row always matches.
    const std::uint64_t cross = table->cross_partition_rows();
    EXPECT_EQ(cross, model.mismatches([&](const group_id& id, const auto&) { return tags.at(id); }))
        << context;
    if constexpr (TestFixture::owned_strategy) {
      EXPECT_EQ(cross, model.mismatches([](const group_id&, const auto& g) { return g.creator; }))
          << context;
    }
    EXPECT_LE(cross, model.updates()) << context;
    EXPECT_GT(cross, 0u) << context;  // random partitions over few keys: some rows must cross

    // A restored table has the same tags and counts new rows against them.
    auto restored = this->be().make_agg_table(o, this->stream());
    restored->restore(table->snapshot({}), INT64_MIN, this->stream());
    EXPECT_EQ(restored->cross_partition_rows(), 0u) << context;
    partition_model extra{size, slide, {}};
    const auto more = random_rows(rng, 400, 20, 40'000, partitions, false);
    extra.feed(more);
    this->aggregate(*restored, more, partition_column::packed);
    const auto after = this->tags_of(o, restored->snapshot({}));
    for (const auto& [id, tag] : tags) ASSERT_EQ(after.at(id), tag) << context << " restored";
    EXPECT_EQ(restored->cross_partition_rows(), extra.mismatches([&](const group_id& id,
                                                                     const auto&) {
      return after.at(id);
    })) << context;
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(rebuilt, 6u) << "growth in the middle of the runs was not exercised";
}

TYPED_TEST(AggPartitionTest, AGroupKeepsTheTagOfTheBatchThatCreatedIt) {
  const auto o = this->options(1000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  this->aggregate(*table, {{1, "a", 10, 1, 3}}, partition_column::packed);
  EXPECT_EQ(table->cross_partition_rows(), 0u);
  this->aggregate(*table,
                  {{1, "a", 20, 2, 5},
                   {1, "a", 30, 3, 5},
                   {2, "b", 40, 4, 5},
                   {1, "a", 50, 5, 3},
                   {1, "a", 1500, 6, 5},
                   {2, "b", 60, 7, 5}},
                  partition_column::positions);
  // Rows 20 and 30 update (1, a) created by partition 3; the others match their creator.
  EXPECT_EQ(table->cross_partition_rows(), 2u);
  const std::map<group_id, std::int32_t> expected = {
      {{0, 1, "a"}, 3}, {{0, 2, "b"}, 5}, {{1000, 1, "a"}, 5}};
  EXPECT_EQ(this->tags_of(o, table->snapshot({})), expected);
}

TYPED_TEST(AggPartitionTest, AHoppingRowTagsEveryWindowItCreates) {
  const auto o = this->options(3000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  this->aggregate(*table, {{7, "x", 2500, 1, 7}}, partition_column::packed);  // 0, 1000, 2000
  // In windows 2000 (existing, tagged 7) and 3000, 4000 (new, tagged 2): one cross update.
  this->aggregate(*table, {{7, "x", 4100, 1, 2}}, partition_column::packed);
  EXPECT_EQ(table->cross_partition_rows(), 1u);
  const std::map<group_id, std::int32_t> expected = {{{0, 7, "x"}, 7},
                                                     {{1000, 7, "x"}, 7},
                                                     {{2000, 7, "x"}, 7},
                                                     {{3000, 7, "x"}, 2},
                                                     {{4000, 7, "x"}, 2}};
  EXPECT_EQ(this->tags_of(o, table->snapshot({})), expected);
}

// A hopping row of a partition whose frontier is ahead of the table's (it moved from an instance
// that had emitted further) skips the windows that frontier emitted; a row without one does not.
TYPED_TEST(AggPartitionTest, ARowFrontierSkipsTheHoppingWindowsItsPartitionEmitted) {
  const auto o = this->options(3000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  // Windows of t=2500 start at 0, 1000, 2000 (ends 3000, 4000, 5000); frontier 3500 emitted the
  // first. The second row (frontier INT64_MIN) creates all three of its own key.
  this->aggregate(*table, {{7, "x", 2500, 1, 3}, {8, "y", 2500, 1, 4}}, partition_column::packed,
                  {3500, INT64_MIN});
  const std::map<group_id, std::int32_t> expected = {{{1000, 7, "x"}, 3},
                                                     {{2000, 7, "x"}, 3},
                                                     {{0, 8, "y"}, 4},
                                                     {{1000, 8, "y"}, 4},
                                                     {{2000, 8, "y"}, 4}};
  EXPECT_EQ(this->tags_of(o, table->snapshot({})), expected);
}

TYPED_TEST(AggPartitionTest, WithoutAPartitionColumnEveryRowIsPartitionZero) {
  std::mt19937_64 rng(5);
  const auto o = this->options(2000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  partition_model model{2000, 1000, {}};
  for (int batch = 0; batch < 3; ++batch) {
    // Partitions set in the rows, but not handed to the table.
    const auto rows = random_rows(rng, 2000, 500, 30'000, 9, false);
    model.feed(rows);
    this->aggregate(*table, rows, partition_column::none);
  }
  EXPECT_EQ(table->cross_partition_rows(), 0u);
  const kernels::agg_snapshot snap = table->snapshot({});
  EXPECT_EQ(snap.rows, model.groups.size());
  EXPECT_EQ(snap.partitions, std::vector<std::int32_t>(snap.rows, 0));
}

TYPED_TEST(AggPartitionTest, SnapshotsWithoutAPartitionsVectorRestoreTheTagsFromTheSlots) {
  std::mt19937_64 rng(6);
  const auto o = this->options(5000, 5000);
  auto table = this->be().make_agg_table(o, this->stream());
  const auto rows = random_rows(rng, 3000, 300, 20'000, 6, true);
  this->aggregate(*table, rows, partition_column::packed);
  kernels::agg_snapshot snap = table->snapshot({});
  const auto tags = this->tags_of(o, snap);
  kernels::agg_snapshot old = snap;
  old.partitions.clear();  // as decoded from a checkpoint that does not store the vector
  auto restored = this->be().make_agg_table(o, this->stream());
  restored->restore(old, INT64_MIN, this->stream());
  const kernels::agg_snapshot again = restored->snapshot({});
  EXPECT_EQ(this->tags_of(o, again), tags);
  // The helpers read the tags from the slots too.
  const auto odd = [](std::int32_t p) { return p % 2 == 1; };
  const kernels::agg_snapshot from_old = kernels::select_partitions(old, odd);
  const kernels::agg_snapshot from_new = kernels::select_partitions(snap, odd);
  EXPECT_EQ(from_old.partitions, from_new.partitions);
  EXPECT_EQ(from_old.slots, from_new.slots);
  EXPECT_EQ(from_old.records, from_new.records);
  EXPECT_EQ(from_old.record_offsets, from_new.record_offsets);
  kernels::agg_snapshot joined;
  kernels::append_snapshot(joined, old);
  EXPECT_EQ(joined.partitions, snap.partitions);
}

TYPED_TEST(AggPartitionTest, SnapshotHelpersEdgeCases) {
  std::mt19937_64 rng(7);
  const auto o = this->options(5000, 5000);
  auto table = this->be().make_agg_table(o, this->stream());
  this->aggregate(*table, random_rows(rng, 500, 50, 20'000, 4, true), partition_column::packed);
  const kernels::agg_snapshot snap = table->snapshot({});
  ASSERT_GT(snap.rows, 0u);

  const kernels::agg_snapshot none =
      kernels::select_partitions(snap, [](std::int32_t) { return false; });
  EXPECT_EQ(none.rows, 0u);
  EXPECT_EQ(none.stride, snap.stride);
  EXPECT_TRUE(none.slots.empty() && none.records.empty() && none.record_offsets.empty() &&
              none.partitions.empty());
  EXPECT_TRUE(this->groups_of(o, none).empty());

  const kernels::agg_snapshot all =
      kernels::select_partitions(snap, [](std::int32_t) { return true; });
  EXPECT_EQ(this->groups_of(o, all), this->groups_of(o, snap));

  kernels::agg_snapshot into;  // empty: takes the stride of what is appended
  kernels::append_snapshot(into, none);
  EXPECT_EQ(into.rows, 0u);
  kernels::append_snapshot(into, snap);
  EXPECT_EQ(into.stride, snap.stride);
  EXPECT_EQ(into.slots, snap.slots);
  EXPECT_EQ(into.partitions, snap.partitions);

  kernels::agg_snapshot other = snap;
  other.stride += 32;  // another layout
  other.slots.resize(other.rows * other.stride);
  EXPECT_THROW(kernels::append_snapshot(into, other), std::logic_error);
  EXPECT_EQ(into.rows, snap.rows);  // unchanged

  // A partitions vector that contradicts the slots is refused by restore.
  kernels::agg_snapshot contradicting = snap;
  contradicting.partitions[0] += 1;
  auto fresh = this->be().make_agg_table(o, this->stream());
  EXPECT_THROW(fresh->restore(contradicting, INT64_MIN, this->stream()), std::logic_error);
}

TYPED_TEST(AggPartitionTest, AKeyArenaBeyond32BitOffsetsIsACapacityError) {
  auto o = this->options(5000, 5000);
  o.max_bytes = std::size_t{1} << 46;  // far beyond what the arena's 32-bit offsets address
  auto table = this->be().make_agg_table(o, this->stream());
  this->aggregate(*table, {{1, "a", 10, 1, 0}}, partition_column::packed);

  // A batch claiming enough string key bytes that its key records could pass 2^32 words.
  kernels::agg_input in;
  const std::vector<std::uint64_t> users = {2};
  const std::vector<std::string> types = {"b"};
  in.num_rows = 1;
  in.keys.count = 2;
  in.keys.columns[0] = this->fixed_column(users);
  in.keys.columns[1] = this->string_column(types);
  in.key_string_bytes = std::size_t{8} << 32;
  in.d_event_time = reinterpret_cast<const std::int64_t*>(
      this->fixed_column(std::vector<std::uint64_t>{20}).d_values);
  this->keep_.push_back(this->upload(std::vector<std::uint8_t>{kernels::status_accepted}));
  in.d_status = this->keep_.back().template as<std::uint8_t>();
  in.fields[0] = this->fixed_column(std::vector<std::uint64_t>{1});
  try {
    table->aggregate(in, this->stream());
    ADD_FAILURE() << "no capacity_error";
  } catch (const capacity_error& e) {
    EXPECT_NE(std::string(e.what()).find("window.max_bytes"), std::string::npos) << e.what();
  }
  this->release_columns();
  // The table is as it was and keeps working.
  this->aggregate(*table, {{1, "a", 30, 2, 0}}, partition_column::packed);
  const auto groups = this->groups_of(o, table->snapshot({}));
  const std::map<group_id, group_value> expected = {{{0, 1, "a"}, {2, 3, 1, 2}}};
  EXPECT_EQ(groups, expected);
}

}  // namespace
}  // namespace trove::test
