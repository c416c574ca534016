// A shared checkpoint.dir: member slots are exclusive while held, epochs of a partition only grow
// and name their claimer, a holder of an older epoch is fenced, retention keeps an older
// checkpoint while a partition's next owner still needs it, and load_partitions finds each
// partition's newest state at its latest epoch — falling back past an owner that left none.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "e2e_util.hpp"
#include "host/checkpoint/ownership.hpp"
#include "host/checkpoint/partition_restore.hpp"
#include "host/checkpoint/store.hpp"

namespace trove::host {
namespace {

namespace e2e = trove::test::e2e;
namespace fs = std::filesystem;

TEST(PartitionOwnership, MemberSlotsAreExclusiveWhileHeldAndReusedAfter) {
  e2e::temp_dir dir;
  auto first = std::make_unique<partition_ownership>(dir.file("s"), "");
  partition_ownership second(dir.file("s"), "");
  EXPECT_EQ(first->member(), "m0");
  EXPECT_EQ(second.member(), "m1");
  EXPECT_TRUE(fs::is_directory(second.member_dir()));
  first.reset();  // the process ends: its slot is free again
  partition_ownership third(dir.file("s"), "");
  EXPECT_EQ(third.member(), "m0");
  partition_ownership pod(dir.file("s"), "pod-3");
  EXPECT_EQ(pod.member(), "pod-3");
  EXPECT_THROW(partition_ownership(dir.file("s"), "pod-3"), std::runtime_error);
  EXPECT_THROW(partition_ownership(dir.file("s"), "a/b"), std::runtime_error);
}

TEST(PartitionOwnership, EpochsGrowAcrossMembersAndAnOlderHolderIsFenced) {
  e2e::temp_dir dir;
  partition_ownership a(dir.file("s"), "");
  partition_ownership b(dir.file("s"), "");
  EXPECT_EQ(a.claim("events", 3), 1u);
  EXPECT_NO_THROW(a.check_owner("events", 3, 1));
  EXPECT_EQ(b.claim("events", 3), 2u);
  EXPECT_EQ(a.claim("events", 4), 1u);  // epochs are per partition
  const auto claims = a.claims("events", 3);
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_EQ(claims[0].epoch, 2u);
  EXPECT_EQ(claims[0].member, "m1");
  EXPECT_EQ(claims[1].member, "m0");
  EXPECT_THROW(a.check_owner("events", 3, 1), fenced_error);
  EXPECT_NO_THROW(b.check_owner("events", 3, 2));
  EXPECT_TRUE(b.claimed("events", 3, 1));
  b.release_older("events", 3, 2);
  EXPECT_FALSE(b.claimed("events", 3, 1));
  EXPECT_TRUE(b.claimed("events", 3, 2));
  EXPECT_EQ(a.claim("events", 3), 3u);  // still above every epoch ever claimed
}

checkpoint_state chain_state(std::uint64_t id, const std::vector<kafka_position>& positions,
                             const std::vector<dedup_record>& entries,
                             std::shared_ptr<std::vector<dedup_record>>& keep) {
  checkpoint_state st;
  st.id = id;
  st.compat = {{"group_by", "[user_id:u64]"}};
  st.source.kafka = positions;
  st.watermark = static_cast<std::int64_t>(1000 * id);
  st.emitted_watermark = static_cast<std::int64_t>(900 * id);
  for (const auto& k : positions) {
    st.partitions.push_back({k.partition, static_cast<std::int64_t>(2000 * id) + k.partition});
  }
  keep = std::make_shared<std::vector<dedup_record>>(entries);
  st.new_entries = {std::span<const dedup_record>(*keep)};
  return st;
}

TEST(CheckpointStore, AnOlderCheckpointStaysWhileItsPartitionEpochIsPinned) {
  e2e::temp_dir dir;
  checkpoint_store store(dir.file("chain"));
  std::shared_ptr<std::vector<dedup_record>> keep;
  // Checkpoint 1 holds partition 5 (epoch 1); later ones no longer do (it moved away).
  auto first = chain_state(1, {{"events", 5, 40, 1}, {"events", 6, 7, 1}},
                           {{10, 1, 1, 5, 0}, {11, 2, 2, 6, 0}}, keep);
  store.write(first, 2);
  bool pinned = true;
  auto pin = [&](const kafka_position& k) { return pinned && k.partition == 5 && k.epoch == 1; };
  for (std::uint64_t id = 2; id <= 4; ++id) {
    auto st = chain_state(id, {{"events", 6, static_cast<std::int64_t>(7 + id), 1}}, {}, keep);
    store.write(st, 2, pin);
  }
  std::set<std::uint64_t> ids;
  for (const auto& item : store.list()) ids.insert(item.id);
  EXPECT_EQ(ids, (std::set<std::uint64_t>{1, 3, 4}));
  // The pinned checkpoint stays loadable, its segment with it.
  const auto loaded = store.load_newest([](const checkpoint_state& m) {
    for (const auto& k : m.source.kafka) {
      if (k.partition == 5) return true;
    }
    return false;
  });
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->id, 1u);
  EXPECT_EQ(loaded->dedup_entries.size(), 2u);
  pinned = false;  // the next owner has checkpointed partition 5
  auto st = chain_state(5, {{"events", 6, 12, 1}}, {}, keep);
  store.write(st, 2, pin);
  ids.clear();
  for (const auto& item : store.list()) ids.insert(item.id);
  EXPECT_EQ(ids, (std::set<std::uint64_t>{4, 5}));
}

TEST(PartitionRestore, EachPartitionComesFromItsNewestClaimWithAState) {
  e2e::temp_dir dir;
  const std::string root = dir.file("s");
  partition_ownership m0(root, "");
  partition_ownership m1(root, "");
  std::shared_ptr<std::vector<dedup_record>> keep;
  // m0 owned partitions 0 and 1 at epoch 1 and checkpointed them (checkpoint 7).
  ASSERT_EQ(m0.claim("events", 0), 1u);
  ASSERT_EQ(m0.claim("events", 1), 1u);
  {
    checkpoint_store chain(m0.member_dir());
    auto st = chain_state(7, {{"events", 0, 100, 1}, {"events", 1, 200, 1}},
                          {{5, 1, 0, 0, 0}, {6, 2, 0, 1, 0}, {7, 3, 0, 1, 0}}, keep);
    chain.write(st, 3);
  }
  // m1 took partition 1 over (epoch 2), checkpointed it further (checkpoint 3) ...
  ASSERT_EQ(m1.claim("events", 1), 2u);
  {
    checkpoint_store chain(m1.member_dir());
    auto st = chain_state(3, {{"events", 1, 250, 2}},
                          {{6, 2, 0, 1, 0}, {7, 3, 0, 1, 0}, {8, 4, 0, 1, 0}}, keep);
    chain.write(st, 3);
  }
  // ... and partition 0 was claimed by m1 at epoch 2 but m1 died before checkpointing it.
  ASSERT_EQ(m1.claim("events", 0), 2u);
  partition_ownership m2(root, "pod-x");
  std::size_t compat_checks = 0;
  const partitions_state ps =
      load_partitions(m2, {{"events", 0, 0}, {"events", 1, 1}, {"events", 2, 2}},
                      [&](const checkpoint_state&) { ++compat_checks; });
  ASSERT_EQ(ps.partitions.size(), 3u);
  // Partition 0: the claim of epoch 2 left nothing; epoch 1 (m0, checkpoint 7) has it.
  EXPECT_EQ(ps.partitions[0].epoch, 3u);
  EXPECT_TRUE(ps.partitions[0].found);
  EXPECT_EQ(ps.partitions[0].member, "m0");
  EXPECT_EQ(ps.partitions[0].checkpoint_id, 7u);
  EXPECT_EQ(ps.partitions[0].next_offset, 100);
  // Partition 1: m1's checkpoint at epoch 2 wins over m0's older one.
  EXPECT_EQ(ps.partitions[1].epoch, 3u);
  EXPECT_EQ(ps.partitions[1].member, "m1");
  EXPECT_EQ(ps.partitions[1].next_offset, 250);
  // Partition 2 was never owned: it starts fresh.
  EXPECT_EQ(ps.partitions[2].epoch, 1u);
  EXPECT_FALSE(ps.partitions[2].found);
  // Entries: partition 0's from m0 (key 1), partition 1's from m1 (keys 2, 3, 4).
  std::multiset<std::uint64_t> keys;
  for (const auto& e : ps.entries) keys.insert(e.key_hi);
  EXPECT_EQ(keys, (std::multiset<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(ps.marks.size(), 2u);
  // The lowest of the sources (m1's checkpoint 3), so that no loaded partition finds its open
  // windows closed by a frontier another one pushed ahead.
  EXPECT_EQ(ps.watermark, 3000);
  EXPECT_EQ(ps.emitted_watermark, 2700);
  EXPECT_EQ(compat_checks, 2u);
  // The new claims fence the old owners.
  EXPECT_THROW(m1.check_owner("events", 1, 2), fenced_error);
}

TEST(PartitionRestore, ACorruptCheckpointFallsBackToTheOneBeforeItOfThatPartition) {
  e2e::temp_dir dir;
  const std::string root = dir.file("s");
  partition_ownership m0(root, "");
  std::shared_ptr<std::vector<dedup_record>> keep;
  ASSERT_EQ(m0.claim("events", 0), 1u);
  {
    checkpoint_store chain(m0.member_dir());
    auto older = chain_state(1, {{"events", 0, 100, 1}}, {{5, 1, 0, 0, 0}}, keep);
    chain.write(older, 3);
    auto newer = chain_state(2, {{"events", 0, 180, 1}}, {{6, 2, 0, 0, 0}}, keep);
    chain.write(newer, 3);
  }
  // The newest checkpoint's manifest is torn (a crash on a file system without atomic rename).
  const fs::path manifest = m0.member_dir() / "checkpoint-000000000002.ckpt";
  ASSERT_TRUE(fs::exists(manifest));
  fs::resize_file(manifest, fs::file_size(manifest) / 2);
  partition_ownership m1(root, "");
  const partitions_state ps =
      load_partitions(m1, {{"events", 0, 0}}, [](const checkpoint_state&) {});
  ASSERT_TRUE(ps.partitions[0].found);
  EXPECT_EQ(ps.partitions[0].checkpoint_id, 1u);
  EXPECT_EQ(ps.partitions[0].next_offset, 100);
  ASSERT_EQ(ps.entries.size(), 1u);
  EXPECT_EQ(ps.entries[0].key_hi, 1u);
}

// An upgrade: a trove from before shared directories kept one chain at the top of
// checkpoint.dir, its partitions at epoch 0. The first take-over continues from it.
TEST(PartitionRestore, ThePreSharedChainAtTheTopOfTheDirectoryIsEpochZero) {
  e2e::temp_dir dir;
  const std::string root = dir.file("s");
  std::shared_ptr<std::vector<dedup_record>> keep;
  {
    checkpoint_store legacy(root);
    auto st = chain_state(12, {{"events", 0, 500, 0}, {"events", 1, 600, 0}},
                          {{5, 1, 0, 0, 0}, {6, 2, 0, 1, 0}}, keep);
    legacy.write(st, 3);
  }
  partition_ownership m0(root, "");
  const partitions_state ps =
      load_partitions(m0, {{"events", 1, 1}, {"events", 2, 2}}, [](const checkpoint_state&) {});
  ASSERT_TRUE(ps.partitions[0].found);
  EXPECT_EQ(ps.partitions[0].member, "");
  EXPECT_EQ(ps.partitions[0].checkpoint_id, 12u);
  EXPECT_EQ(ps.partitions[0].next_offset, 600);
  EXPECT_EQ(ps.partitions[0].epoch, 1u);
  EXPECT_FALSE(ps.partitions[1].found);  // the old chain never held partition 2
  ASSERT_EQ(ps.entries.size(), 1u);
  EXPECT_EQ(ps.entries[0].key_hi, 2u);
}

}  // namespace
}  // namespace trove::host
