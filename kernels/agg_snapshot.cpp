#include "kernels/agg_snapshot.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "kernels/agg_slot.hpp"
#include "kernels/error.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels {
namespace {

/// The creating row's partition of every row of a snapshot, from its slot bytes (the vector may
/// be missing: snapshots decoded from checkpoints that do not keep it).
std::vector<std::int32_t> slot_partitions(const agg_snapshot& snap) {
  TROVE_EXPECTS(snap.slots.size() == snap.rows * snap.stride &&
                    snap.record_offsets.size() == snap.rows &&
                    (snap.rows == 0 || snap.stride >= sizeof(detail::agg_header)),
                "agg_snapshot: inconsistent aggregation snapshot");
  std::vector<std::int32_t> partitions(snap.rows);
  for (std::size_t i = 0; i < snap.rows; ++i) {
    detail::agg_header h;
    std::memcpy(&h, snap.slots.data() + i * snap.stride, sizeof(h));
    partitions[i] = h.partition;
  }
  return partitions;
}

/// Where each row's key record ends: at the next larger record offset, or the end of the
/// records. Reading the record's own length would need the key layout, which a snapshot does not
/// carry; records do not overlap, so the next one (in offset order) bounds each.
std::vector<std::uint64_t> record_ends(const agg_snapshot& snap) {
  std::vector<std::uint64_t> starts(snap.record_offsets);
  std::sort(starts.begin(), starts.end());
  std::vector<std::uint64_t> ends(snap.rows);
  for (std::size_t i = 0; i < snap.rows; ++i) {
    const std::uint64_t at = snap.record_offsets[i];
    TROVE_EXPECTS(at < snap.records.size(), "agg_snapshot: key record out of range");
    const auto next = std::upper_bound(starts.begin(), starts.end(), at);
    ends[i] = next == starts.end() ? snap.records.size() : *next;
  }
  return ends;
}

/// Appends row i of `from` (slot, record, partition) to `into`.
void append_row(agg_snapshot& into, const agg_snapshot& from, std::size_t i, std::uint64_t end,
                std::int32_t partition) {
  const unsigned char* slot = from.slots.data() + i * from.stride;
  into.slots.insert(into.slots.end(), slot, slot + from.stride);
  const std::uint64_t at = from.record_offsets[i];
  into.record_offsets.push_back(into.records.size());
  into.records.insert(into.records.end(), from.records.begin() + static_cast<std::ptrdiff_t>(at),
                      from.records.begin() + static_cast<std::ptrdiff_t>(end));
  into.partitions.push_back(partition);
  ++into.rows;
}

}  // namespace

agg_snapshot select_partitions(const agg_snapshot& from,
                               const std::function<bool(std::int32_t)>& keep) {
  const std::vector<std::int32_t> partitions = slot_partitions(from);
  const std::vector<std::uint64_t> ends = record_ends(from);
  agg_snapshot out;
  out.stride = from.stride;
  out.layout = from.layout;
  for (std::size_t i = 0; i < from.rows; ++i) {
    if (keep(partitions[i])) append_row(out, from, i, ends[i], partitions[i]);
  }
  return out;
}

void append_snapshot(agg_snapshot& into, const agg_snapshot& from) {
  TROVE_EXPECTS(into.rows == 0 || from.rows == 0 ||
                    (into.stride == from.stride && into.layout == from.layout),
                "append_snapshot: aggregation slots of another layout");
  if (from.rows == 0) {
    if (into.rows == 0 && into.stride == 0) {
      into.stride = from.stride;
      into.layout = from.layout;
    }
    return;
  }
  std::vector<std::int32_t> from_partitions = slot_partitions(from);
  for (std::uint64_t at : from.record_offsets) {
    TROVE_EXPECTS(at < from.records.size(), "agg_snapshot: key record out of range");
  }
  if (into.rows == 0) {
    into = agg_snapshot{};
    into.stride = from.stride;
    into.layout = from.layout;
  } else if (into.partitions.size() != into.rows) {
    into.partitions = slot_partitions(into);  // a snapshot decoded without the vector
  }
  // Records are copied whole, in their order: each offset moves by the records before them.
  const std::uint64_t base = into.records.size();
  into.slots.insert(into.slots.end(), from.slots.begin(), from.slots.end());
  into.records.insert(into.records.end(), from.records.begin(), from.records.end());
  into.record_offsets.reserve(into.rows + from.rows);
  for (std::uint64_t at : from.record_offsets) into.record_offsets.push_back(base + at);
  into.partitions.insert(into.partitions.end(), from_partitions.begin(), from_partitions.end());
  into.rows += from.rows;
}

agg_snapshot merge_snapshots(std::span<const agg_snapshot> chain, std::int64_t window_size_ms,
                             std::int64_t emitted_watermark) {
  struct identity {
    std::uint64_t k0, k1;
    std::int64_t window_start;
    bool operator==(const identity&) const = default;
  };
  struct identity_hash {
    std::size_t operator()(const identity& id) const noexcept {
      return static_cast<std::size_t>(
          mix64(id.k0 ^ mix64(id.k1 + static_cast<std::uint64_t>(id.window_start))));
    }
  };
  agg_snapshot out;
  std::size_t rows = 0;
  for (const agg_snapshot& snap : chain) {
    rows += snap.rows;
    if (snap.rows > 0) {
      TROVE_EXPECTS(out.stride == 0 || (out.stride == snap.stride && out.layout == snap.layout),
                    "merge_snapshots: aggregation slots of another layout");
      out.stride = snap.stride;
      out.layout = snap.layout;
    }
  }
  std::unordered_set<identity, identity_hash> seen;
  seen.reserve(rows);
  for (auto snap = chain.rbegin(); snap != chain.rend(); ++snap) {
    if (snap->rows == 0) continue;
    const std::vector<std::int32_t> partitions = slot_partitions(*snap);
    const std::vector<std::uint64_t> ends = record_ends(*snap);
    for (std::size_t i = 0; i < snap->rows; ++i) {
      detail::agg_header h;
      std::memcpy(&h, snap->slots.data() + i * snap->stride, sizeof(h));
      if (!seen.insert(identity{h.k0, h.k1, h.window_start}).second) continue;  // a newer one
      // Emitted since this snapshot: window_start + size <= frontier, without overflow.
      const bool emitted = emitted_watermark >= h.window_start &&
                           static_cast<std::uint64_t>(emitted_watermark) -
                                   static_cast<std::uint64_t>(h.window_start) >=
                               static_cast<std::uint64_t>(window_size_ms);
      if (emitted) continue;
      append_row(out, *snap, i, ends[i], partitions[i]);
    }
  }
  return out;
}

}  // namespace trove::kernels
