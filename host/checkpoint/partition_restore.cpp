#include "host/checkpoint/partition_restore.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "host/checkpoint/store.hpp"

namespace trove::host {
namespace {

/// Whether checkpoint.dir holds checkpoints at its top (written before shared directories).
bool fs_has_legacy_chain(const partition_ownership& ownership) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(ownership.member_dir(""), ec)) {
    if (entry.path().extension() == ".ckpt") return true;
  }
  return false;
}

/// A partition still looking for its state: the claims below this instance's, newest first.
struct search {
  std::size_t index = 0;  // into partitions_state::partitions
  std::vector<partition_claim> older;
  std::size_t next = 0;  // the claim tried now
};

}  // namespace

partitions_state load_partitions(partition_ownership& ownership,
                                 const std::vector<partition_to_load>& assigned,
                                 const std::function<void(const checkpoint_state&)>& check_compat) {
  partitions_state out;
  std::vector<search> open;
  const bool legacy = fs_has_legacy_chain(ownership);
  for (const auto& which : assigned) {
    loaded_partition p;
    p.which = which;
    p.epoch = ownership.claim(which.topic, which.partition);
    search s;
    s.index = out.partitions.size();
    for (auto& c : ownership.claims(which.topic, which.partition)) {
      if (c.epoch < p.epoch) s.older.push_back(std::move(c));
    }
    // Below every claim: the single chain of a trove from before shared directories (its
    // checkpoints hold the partition at epoch 0), so an upgrade continues from it.
    if (legacy) s.older.push_back({0, ""});
    out.partitions.push_back(std::move(p));
    if (!s.older.empty()) open.push_back(std::move(s));
  }
  std::set<std::int32_t> loaded_ids;
  bool any_source = false;
  // One pass per round: every open partition's current claim, grouped by member; each member's
  // chain is read newest first for a checkpoint that holds any of them at that epoch.
  while (!open.empty()) {
    std::map<std::string, std::vector<search*>> by_member;
    for (auto& s : open) by_member[s.older[s.next].member].push_back(&s);
    for (auto& [member, wanted] : by_member) {
      auto wants = [&](const kafka_position& k) {
        return std::any_of(wanted.begin(), wanted.end(), [&](const search* s) {
          const loaded_partition& p = out.partitions[s->index];
          return !p.found && k.topic == p.which.topic && k.partition == p.which.partition &&
                 k.epoch == s->older[s->next].epoch;
        });
      };
      const checkpoint_store chain(ownership.member_dir(member), /*read_only=*/true);
      while (true) {
        std::optional<checkpoint_state> st = chain.load_newest([&](const checkpoint_state& m) {
          return std::any_of(m.source.kafka.begin(), m.source.kafka.end(), wants);
        });
        if (!st) break;
        check_compat(*st);
        std::set<std::int32_t> taken;
        for (const auto& k : st->source.kafka) {
          if (!wants(k)) continue;
          for (search* s : wanted) {
            loaded_partition& p = out.partitions[s->index];
            if (p.found || k.topic != p.which.topic || k.partition != p.which.partition) continue;
            p.found = true;
            p.next_offset = k.next_offset;
            p.member = member;
            p.checkpoint_id = st->id;
            p.from_epoch = k.epoch;
            taken.insert(p.which.source_id);
          }
        }
        for (const auto& e : st->dedup_entries) {
          if (taken.count(e.partition)) out.entries.push_back(e);
        }
        kernels::append_snapshot(out.groups,
                                 kernels::select_partitions(st->agg, [&](std::int32_t source_id) {
                                   return taken.count(source_id) > 0;
                                 }));
        for (auto m : st->partitions) {
          if (!taken.count(m.partition)) continue;
          m.emitted_frontier = std::max(m.emitted_frontier, st->emitted_watermark);
          out.marks.push_back(m);
        }
        // The lowest of the sources: a partition that lagged at its previous owner must not find
        // its open windows closed by a frontier another partition pushed ahead.
        out.watermark = any_source ? std::min(out.watermark, st->watermark) : st->watermark;
        out.emitted_watermark = any_source ? std::min(out.emitted_watermark, st->emitted_watermark)
                                           : st->emitted_watermark;
        any_source = true;
        loaded_ids.insert(taken.begin(), taken.end());
      }
    }
    // What no checkpoint of its claim's owner holds falls back to the claim before it.
    std::vector<search> still;
    for (auto& s : open) {
      if (out.partitions[s.index].found) continue;
      const partition_claim& c = s.older[s.next];
      if (c.member.empty()) continue;  // the pre-shared chain did not hold it: nothing to say
      spdlog::warn(
          "checkpoints: member '{}' claimed {}[{}] (epoch {}) but left no usable checkpoint of it; "
          "trying the claim before",
          c.member, out.partitions[s.index].which.topic, out.partitions[s.index].which.partition,
          c.epoch);
      if (++s.next < s.older.size()) still.push_back(std::move(s));
    }
    open = std::move(still);
  }
  return out;
}

}  // namespace trove::host
