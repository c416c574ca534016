// The checkpoint store: manifests and dedup segments round-trip exactly; any flipped byte or
// truncation is rejected (never loaded); load_latest falls back past a corrupt checkpoint or one
// whose segment is missing; retention keeps the newest checkpoints and the segments they use.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <string>
#include <tuple>

#include "e2e_util.hpp"
#include "host/checkpoint/coordinator.hpp"
#include "host/checkpoint/store.hpp"
#include "kernels/agg_slot.hpp"

namespace trove::host {
namespace {

namespace e2e = trove::test::e2e;
namespace fs = std::filesystem;

checkpoint_state sample_state(std::uint64_t id, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  checkpoint_state s;
  s.id = id;
  s.created_ms = 1'700'000'000'000 + static_cast<std::int64_t>(rng() % 1000);
  s.compat = {{"group_by", "[user_id:u64]"}, {"window.size", "60000ms"}};
  s.counters = {rng() % 100, rng() % 100, rng() % 100, rng() % 100,
                rng() % 100, rng() % 100, rng() % 100, rng() % 100};
  s.watermark = static_cast<std::int64_t>(rng() % 100000);
  s.max_event_time = s.watermark + 5;
  s.partitions = {{0, 17, 4}, {3, -5, INT64_MIN}, {1 << 20, INT64_MIN, 9}};
  s.emitted_watermark = s.watermark - 60000;
  s.source.file_offset = rng();
  s.source.file_line = rng() % 1000;
  s.source.generated = rng() % 1000;
  s.source.kafka = {{"events", 0, 12, 3}, {"events", 7, 0, 1}, {"other", 1, 99, 0}};
  s.sink_length = rng() % 100000;
  s.dead_letter_length = rng() % 1000;
  s.agg.rows = 3;
  s.agg.stride = 80;
  s.agg.slots.resize(240);
  for (auto& b : s.agg.slots) b = static_cast<unsigned char>(rng());
  s.agg.records = {1, 2, 3, 4, 5, 6};
  s.agg.record_offsets = {0, 2, 4};
  s.segments = {{1, 10, 500, 0xABCDEF}, {2, 3, 900, 0x123}};
  s.window_size_ms = 60'000;
  s.open_groups = 3;
  s.group_segments = {{id > 1 ? id - 1 : 0, 7, 0x77}};  // replaced by the store's write
  return s;
}

void expect_same(const checkpoint_state& a, const checkpoint_state& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.compat, b.compat);
  EXPECT_EQ(a.counters.in(), b.counters.in());
  EXPECT_EQ(a.counters.batches, b.counters.batches);
  EXPECT_EQ(a.watermark, b.watermark);
  EXPECT_EQ(a.max_event_time, b.max_event_time);
  ASSERT_EQ(a.partitions.size(), b.partitions.size());
  for (std::size_t i = 0; i < a.partitions.size(); ++i) {
    EXPECT_EQ(a.partitions[i].partition, b.partitions[i].partition);
    EXPECT_EQ(a.partitions[i].max_event_time, b.partitions[i].max_event_time);
    EXPECT_EQ(a.partitions[i].emitted_frontier, b.partitions[i].emitted_frontier);
  }
  EXPECT_EQ(a.emitted_watermark, b.emitted_watermark);
  EXPECT_EQ(a.source.file_offset, b.source.file_offset);
  EXPECT_EQ(a.source.file_line, b.source.file_line);
  EXPECT_EQ(a.source.generated, b.source.generated);
  ASSERT_EQ(a.source.kafka.size(), b.source.kafka.size());
  for (std::size_t i = 0; i < a.source.kafka.size(); ++i) {
    EXPECT_EQ(a.source.kafka[i].topic, b.source.kafka[i].topic);
    EXPECT_EQ(a.source.kafka[i].partition, b.source.kafka[i].partition);
    EXPECT_EQ(a.source.kafka[i].next_offset, b.source.kafka[i].next_offset);
    EXPECT_EQ(a.source.kafka[i].epoch, b.source.kafka[i].epoch);
  }
  EXPECT_EQ(a.sink_length, b.sink_length);
  EXPECT_EQ(a.dead_letter_length, b.dead_letter_length);
  EXPECT_EQ(a.window_size_ms, b.window_size_ms);
  EXPECT_EQ(a.open_groups, b.open_groups);
  ASSERT_EQ(a.group_segments.size(), b.group_segments.size());
  for (std::size_t i = 0; i < a.group_segments.size(); ++i) {
    EXPECT_EQ(a.group_segments[i].id, b.group_segments[i].id);
    EXPECT_EQ(a.group_segments[i].rows, b.group_segments[i].rows);
    EXPECT_EQ(a.group_segments[i].checksum, b.group_segments[i].checksum);
  }
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < a.segments.size(); ++i) {
    EXPECT_EQ(a.segments[i].id, b.segments[i].id);
    EXPECT_EQ(a.segments[i].entries, b.segments[i].entries);
    EXPECT_EQ(a.segments[i].max_first_seen, b.segments[i].max_first_seen);
    EXPECT_EQ(a.segments[i].checksum, b.segments[i].checksum);
  }
}

TEST(CheckpointStore, ManifestAndSegmentRoundTrip) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const checkpoint_state s = sample_state(seed, seed);
    const checkpoint_state back_state = decode_manifest(encode_manifest(s));
    expect_same(s, back_state);
    EXPECT_EQ(back_state.agg.rows, 0u) << "the groups are in group segments, not the manifest";
    const kernels::agg_snapshot groups = decode_groups(encode_groups(s.agg));
    EXPECT_EQ(groups.rows, s.agg.rows);
    EXPECT_EQ(groups.stride, s.agg.stride);
    EXPECT_EQ(groups.slots, s.agg.slots);
    EXPECT_EQ(groups.records, s.agg.records);
    EXPECT_EQ(groups.record_offsets, s.agg.record_offsets);
    std::vector<dedup_record> entries;
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 100; ++i) {
      entries.push_back({.first_seen = static_cast<std::int64_t>(rng()),
                         .key_hi = rng(),
                         .key_lo = rng(),
                         .partition = static_cast<std::int32_t>(rng() % 8)});
    }
    const auto back = decode_segment(encode_segment(entries));
    ASSERT_EQ(back.size(), entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(back[i].partition, entries[i].partition);
      EXPECT_EQ(back[i].first_seen, entries[i].first_seen);
      EXPECT_EQ(back[i].key_hi, entries[i].key_hi);
      EXPECT_EQ(back[i].key_lo, entries[i].key_lo);
    }
  }
}

// A manifest of format 1 (written before shared directories; tests/data/checkpoint-v1.ckpt is
// the fuzz seed of that version) still loads: an upgraded trove continues from the checkpoints it
// finds. Its Kafka positions get epoch 0 and its partitions no frontier of their own.
TEST(CheckpointStore, AFormatOneManifestStillLoads) {
  const std::string bytes =
      e2e::read_file(std::string(TROVE_SOURCE_DIR) + "/tests/data/checkpoint-v1.ckpt");
  ASSERT_GT(bytes.size(), 20u);
  ASSERT_EQ(bytes[8], 1) << "not a format 1 file";
  const checkpoint_state st = decode_manifest(bytes);
  EXPECT_EQ(st.id, 7u);
  ASSERT_EQ(st.source.kafka.size(), 3u);
  EXPECT_EQ(st.source.kafka[0].topic, "events");
  EXPECT_EQ(st.source.kafka[0].next_offset, 40'001);
  EXPECT_EQ(st.source.kafka[2].next_offset, 40'129);
  for (const auto& k : st.source.kafka) EXPECT_EQ(k.epoch, 0u);
  ASSERT_EQ(st.partitions.size(), 3u);
  EXPECT_EQ(st.partitions[1].max_event_time, 1'767'225'598'500);
  for (const auto& p : st.partitions) EXPECT_EQ(p.emitted_frontier, INT64_MIN);
  EXPECT_EQ(st.agg.rows, 3u);
  EXPECT_EQ(st.segments.size(), 2u);
  // A version this trove does not know is refused, naming it.
  std::string future = bytes;
  future[8] = 9;
  try {
    (void)decode_manifest(future);
    ADD_FAILURE() << "format 9 was accepted";
  } catch (const checkpoint_error& e) {
    EXPECT_NE(std::string(e.what()).find("version 9"), std::string::npos) << e.what();
  }
}

// Fuzz finding (tests/fuzz/corpus/checkpoint/bug_version_one_segment_reencoded.bin): a format-1
// segment is read, and written again it is a current-format segment with the same entries.
TEST(CheckpointStore, AFormatOneSegmentReadsAndIsWrittenAgainInTheCurrentFormat) {
  const std::vector<dedup_record> entries{dedup_record{1, 2, 3, 4, 0},
                                          dedup_record{-5, 6, 7, 8, 0}};
  std::string v1 = encode_segment(entries);
  ASSERT_EQ(v1[8], static_cast<char>(checkpoint_format_version));
  v1[8] = 1;  // the checksum covers the payload only: still a valid envelope
  const std::vector<dedup_record> read = decode_segment(v1);
  ASSERT_EQ(read.size(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(std::memcmp(&read[i], &entries[i], sizeof(dedup_record)), 0) << i;
  }
  const std::string again = encode_segment(read);
  EXPECT_EQ(again[8], static_cast<char>(checkpoint_format_version));
  EXPECT_EQ(again.substr(9), encode_segment(entries).substr(9));
}

TEST(CheckpointStore, EveryFlippedByteAndEveryTruncationIsRejected) {
  const std::string bytes = encode_manifest(sample_state(3, 9));
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    EXPECT_THROW((void)decode_manifest(bad), checkpoint_error) << "flipped byte " << at;
  }
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THROW((void)decode_manifest(bytes.substr(0, length)), checkpoint_error)
        << "cut to " << length;
  }
  EXPECT_THROW((void)decode_manifest(bytes + "x"), checkpoint_error);
  const std::string segment = encode_segment({dedup_record{1, 2, 3, 4, 0}});
  EXPECT_THROW((void)decode_manifest(segment), checkpoint_error) << "a segment is no manifest";
}

// Found by fuzz_checkpoint (input corpus/checkpoint/bug_segment_into_trailing_bytes.bin): a
// segment whose valid envelope holds bytes after its entries was rejected, but
// decode_segment_into left the entries it had read appended to `out`.
TEST(CheckpointStore, SegmentIntoTrailingBytesLeavesOutputUnchanged) {
  std::string payload(8 + sizeof(dedup_record) + 1, '\0');
  const std::uint64_t n = 1;
  std::memcpy(payload.data(), &n, sizeof n);
  std::string file = "TROVEDDS";
  const std::uint32_t version = 1;
  const std::uint64_t length = payload.size();
  const std::uint64_t checksum = XXH64(payload.data(), payload.size(), 0);
  file.append(reinterpret_cast<const char*>(&version), sizeof version);
  file.append(reinterpret_cast<const char*>(&length), sizeof length);
  file += payload;
  file.append(reinterpret_cast<const char*>(&checksum), sizeof checksum);

  std::vector<dedup_record> out = {dedup_record{5, 6, 7, 8, 0}};
  EXPECT_THROW(decode_segment_into(file, out), checkpoint_error);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first_seen, 5);
  EXPECT_EQ(out[0].key_hi, 6u);
  EXPECT_EQ(out[0].key_lo, 7u);
  EXPECT_EQ(out[0].partition, 8);
  EXPECT_THROW((void)decode_segment(file), checkpoint_error);
}

TEST(CheckpointStore, LoadLatestFallsBackAndRetentionKeepsWhatIsReferenced) {
  e2e::temp_dir dir;
  checkpoint_store store(dir.file("state"));
  EXPECT_FALSE(store.load_latest().has_value());
  std::vector<segment_ref> live;
  for (std::uint64_t id = 1; id <= 5; ++id) {
    checkpoint_state s = sample_state(id, id);
    s.segments = live;
    const std::vector<dedup_record> added = {
        dedup_record{static_cast<std::int64_t>(id * 100), id, id, 0, 0}};
    s.new_entries = {std::span<const dedup_record>(added)};
    store.write(s, 3);
    live = s.segments;  // with the new segment appended
    ASSERT_EQ(live.back().id, id);
  }
  // Three checkpoints kept; every segment stays (the newest references all five).
  std::size_t manifests = 0, segments = 0;
  for (const auto& entry : fs::directory_iterator(dir.file("state"))) {
    manifests += entry.path().extension() == ".ckpt" ? 1 : 0;
    segments += entry.path().filename().string().rfind("dedup-", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(manifests, 3u);
  EXPECT_EQ(segments, 5u);
  auto latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 5u);
  EXPECT_EQ(latest->dedup_entries.size(), 5u);
  // Segment 5 (only the newest checkpoint uses it) is lost: checkpoint 4 is loaded instead.
  fs::remove(dir.file("state") + "/dedup-000000000005.seg");
  latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 4u);
  EXPECT_EQ(latest->dedup_entries.size(), 4u);
  // A newer checkpoint that drops old segments lets retention delete them once no kept
  // checkpoint references them.
  for (std::uint64_t id = 6; id <= 8; ++id) {
    checkpoint_state s = sample_state(id, id);
    s.segments.clear();  // every earlier entry expired
    store.write(s, 2);
  }
  segments = 0;
  std::size_t group_segments = 0;
  for (const auto& entry : fs::directory_iterator(dir.file("state"))) {
    segments += entry.path().filename().string().rfind("dedup-", 0) == 0 ? 1 : 0;
    group_segments += entry.path().filename().string().rfind("groups-", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(segments, 0u);
  EXPECT_EQ(group_segments, 2u) << "each kept checkpoint wrote all its groups";
  const auto listed = store.list();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed.front().id, 8u);
  EXPECT_TRUE(listed.front().valid) << listed.front().problem;
}

/// A snapshot of hand-made groups (key fingerprint k0 = k1 = key, one key word each) in the
/// table's slot layout with one aggregated field: stride 48 + 32.
kernels::agg_snapshot groups_of(std::vector<std::tuple<std::uint64_t, std::int64_t, std::uint64_t>>
                                    rows /* key, window start, count */) {
  kernels::agg_snapshot g;
  g.stride = sizeof(kernels::detail::agg_header) + 32;
  for (const auto& [key, window_start, count] : rows) {
    kernels::detail::agg_header h{};
    h.k0 = key;
    h.k1 = key;
    h.window_start = window_start;
    h.partition = static_cast<std::int32_t>(key % 3);
    h.count = count;
    h.state = kernels::detail::agg_full;
    std::vector<unsigned char> slot(g.stride, 0);
    std::memcpy(slot.data(), &h, sizeof(h));
    g.slots.insert(g.slots.end(), slot.begin(), slot.end());
    g.record_offsets.push_back(g.records.size());
    g.records.push_back(1);  // the record's validity word
    g.records.push_back(key);
    g.partitions.push_back(h.partition);
    ++g.rows;
  }
  return g;
}

/// (key, window start) -> count of a loaded checkpoint's groups.
std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t> counts_of(
    const kernels::agg_snapshot& g) {
  std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t> out;
  for (std::size_t row = 0; row < g.rows; ++row) {
    kernels::detail::agg_header h;
    std::memcpy(&h, g.slots.data() + row * g.stride, sizeof(h));
    EXPECT_TRUE(out.emplace(std::make_pair(h.k0, h.window_start), h.count).second);
    EXPECT_EQ(g.records.at(g.record_offsets[row] + 1), h.k0) << "the group's own key record";
  }
  return out;
}

// The open groups as a chain: a checkpoint writes every open group, then those updated since the
// one before; loading merges the chain (newest wins, windows emitted since left out), refuses a
// chain that does not add up to the groups the checkpoint recorded, and retention keeps every
// group segment a kept checkpoint references.
TEST(CheckpointStore, GroupSegmentsAreAChainThatLoadsMerged) {
  e2e::temp_dir dir;
  const std::string state_dir = dir.file("state");
  checkpoint_store store(state_dir);
  auto cut = [&](std::uint64_t id, bool updates_only, const std::vector<group_segment_ref>& chain,
                 kernels::agg_snapshot groups, std::uint64_t open, std::int64_t emitted) {
    checkpoint_state s = sample_state(id, id);
    s.segments.clear();
    s.window_size_ms = 10'000;
    s.emitted_watermark = emitted;
    s.agg = std::move(groups);
    s.agg_updates_only = updates_only;
    s.group_segments = chain;
    s.open_groups = open;
    store.write(s, 3);
    return s.group_segments;
  };
  using counts = std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t>;
  auto chain = cut(1, false, {}, groups_of({{1, 0, 1}, {2, 0, 1}, {3, 10'000, 1}}), 3, INT64_MIN);
  ASSERT_EQ(chain.size(), 1u);
  chain = cut(2, true, chain, groups_of({{1, 0, 5}, {4, 10'000, 1}}), 4, INT64_MIN);
  ASSERT_EQ(chain.size(), 2u);
  auto latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(counts_of(latest->agg),
            (counts{{{1, 0}, 5}, {{2, 0}, 1}, {{3, 10'000}, 1}, {{4, 10'000}, 1}}));
  // Window [0, 10 s) emitted after checkpoint 2: its groups are gone at checkpoint 3.
  chain = cut(3, true, chain, groups_of({{3, 10'000, 2}}), 2, 10'000);
  ASSERT_EQ(chain.size(), 3u);
  latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 3u);
  EXPECT_EQ(counts_of(latest->agg), (counts{{{3, 10'000}, 2}, {{4, 10'000}, 1}}));
  EXPECT_EQ(latest->agg.partitions.size(), 2u);
  // A checkpoint whose chain adds up to other groups than it recorded is not loaded.
  const auto bad = cut(4, true, chain, groups_of({{5, 10'000, 1}}), 99, 10'000);
  latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 3u) << "checkpoint 4 says 99 open groups, its chain holds 3";
  // A missing group segment fails every checkpoint that references it.
  const std::string second = state_dir + "/groups-000000000002.seg";
  fs::rename(second, second + ".aside");
  latest = store.load_latest();
  EXPECT_FALSE(latest) << "checkpoints 2..4 reference groups-2; checkpoint 1 was not retained";
  fs::rename(second + ".aside", second);
  const auto listed = store.list();
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_TRUE(listed[0].valid) << listed[0].problem;  // 4: its files are all there
  EXPECT_EQ(listed[0].state.open_groups, 99u);
  // A full one starts the chain again; retention then drops the segments nothing kept needs.
  chain = cut(5, false, bad, groups_of({{3, 10'000, 2}, {4, 10'000, 1}}), 2, 10'000);
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0].id, 5u);
  checkpoint_state six = sample_state(6, 6);
  six.segments.clear();
  six.window_size_ms = 10'000;
  six.emitted_watermark = 10'000;
  six.open_groups = 2;
  six.agg_updates_only = true;
  six.group_segments = chain;  // nothing changed: no segment of its own
  six.agg = {};
  store.write(six, 1);
  EXPECT_EQ(six.group_segments.size(), 1u);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(state_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("groups-", 0) == 0) files.push_back(name);
  }
  EXPECT_EQ(files, std::vector<std::string>{"groups-000000000005.seg"});
  latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 6u);
  EXPECT_EQ(counts_of(latest->agg), (counts{{{3, 10'000}, 2}, {{4, 10'000}, 1}}));
}

// exactly_once: a checkpoint whose transaction has not committed is pending and never loaded
// (the previous one is); once committed it is; discard_newer_than clears what a restore passed
// over, marker and segment included, and retention never removes a pending marker's manifest
// while leaving the marker behind.
TEST(CheckpointStore, APendingTransactionIsNeverLoadedUntilCommitted) {
  e2e::temp_dir dir;
  const std::string state_dir = dir.file("state");
  checkpoint_store store(state_dir);
  std::vector<segment_ref> live;
  for (std::uint64_t id = 1; id <= 2; ++id) {
    checkpoint_state s = sample_state(id, id);
    s.segments = live;
    const std::vector<dedup_record> added = {
        dedup_record{static_cast<std::int64_t>(id * 100), id, id, 0, 0}};
    s.new_entries = {std::span<const dedup_record>(added)};
    s.transaction_pending = true;
    store.write(s, 2);
    live = s.segments;
    if (id == 1) store.mark_committed(1);
  }
  auto latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 1u) << "checkpoint 2's transaction never committed";
  const auto listed = store.list();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_TRUE(listed[0].transaction_pending);
  EXPECT_FALSE(listed[1].transaction_pending);

  store.mark_committed(2);
  latest = store.load_latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->id, 2u);
  EXPECT_EQ(latest->dedup_entries.size(), 2u);

  // A third, pending again; a restore that passes over it discards it whole.
  checkpoint_state third = sample_state(3, 3);
  third.segments = live;
  const std::vector<dedup_record> added = {dedup_record{300, 3, 3, 0, 0}};
  third.new_entries = {std::span<const dedup_record>(added)};
  third.transaction_pending = true;
  store.write(third, 2);
  EXPECT_TRUE(fs::exists(state_dir + "/checkpoint-000000000003.pending"));
  EXPECT_FALSE(fs::exists(state_dir + "/checkpoint-000000000001.ckpt")) << "retention";
  EXPECT_EQ(store.load_latest()->id, 2u);
  store.discard_newer_than(2);
  EXPECT_FALSE(fs::exists(state_dir + "/checkpoint-000000000003.ckpt"));
  EXPECT_FALSE(fs::exists(state_dir + "/checkpoint-000000000003.pending"));
  EXPECT_FALSE(fs::exists(state_dir + "/dedup-000000000003.seg"));
  EXPECT_TRUE(fs::exists(state_dir + "/dedup-000000000002.seg"));
  // The id is written again, now as an at-least-once checkpoint: nothing pending is left over.
  checkpoint_state again = sample_state(3, 4);
  again.segments = live;
  store.write(again, 2);
  EXPECT_EQ(store.load_latest()->id, 3u);
}

// Bug (found while testing exactly-once): the sink stage waited for "no checkpoint in flight"
// before committing checkpoint k's transaction; when the device thread began cut k+1 in the
// meantime, whose marker queues behind the sink stage itself, that wait never ended. Waiting
// for checkpoint k to be durable ends as soon as k is written, whatever was begun after it.
TEST(CheckpointCoordinator, WaitDurableDoesNotWaitForACutBegunAfterIt) {
  e2e::temp_dir dir;
  checkpoint_store store(dir.file("state"));
  checkpoint_coordinator coordinator(store, /*interval_ms=*/1, /*retain=*/2, /*next_id=*/1, {},
                                     nullptr, nullptr);
  std::vector<segment_ref> segments;
  const auto now = checkpoint_coordinator::clock::now();
  const std::uint64_t first = coordinator.begin_cut(now, INT64_MIN, 0, segments);
  auto state = std::make_unique<checkpoint_state>(sample_state(first, 1));
  state->segments.clear();
  coordinator.submit(std::move(state), 0.0);
  coordinator.wait_idle();
  // A second cut begun and not submitted (its marker is "behind" the waiter).
  const std::uint64_t second = coordinator.begin_cut(now, INT64_MIN, 0, segments);
  EXPECT_EQ(second, first + 1);
  EXPECT_TRUE(coordinator.in_flight());
  auto waited = std::async(std::launch::async, [&] { coordinator.wait_durable(first); });
  EXPECT_EQ(waited.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "wait_durable(" << first << ") waited for cut " << second;
  coordinator.cancel_cut();
  waited.wait();
}

}  // namespace
}  // namespace trove::host
