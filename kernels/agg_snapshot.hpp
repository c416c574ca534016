#pragma once
/// @file agg_snapshot.hpp
/// @brief The open groups of an aggregation table in host memory, as checkpoints keep them, and
/// the host operations on them: select by partition, append, merge a chain. Plain host code: the
/// checkpoint store (and its fuzzer) use it without any device header.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace trove::kernels {

/// @brief Every open group of a table as raw slots and key records in host memory: what a
/// checkpoint keeps of the aggregation table. The bytes are the table's own slot layout, named by
/// `layout`, so a snapshot is restored only into a table of the same layout.
struct agg_snapshot {
  std::size_t rows = 0;
  std::size_t stride = 0;  ///< bytes per slot
  /// The slot layout's signature (key types, fields, accumulators kept). 0: the full layout of
  /// tables before accumulator selection (every field: non-null count, sum, min, max), which is
  /// what checkpoints of formats 1 to 3 hold; restore() converts it.
  std::uint64_t layout = 0;
  std::vector<unsigned char> slots;           ///< rows × stride bytes
  std::vector<std::uint64_t> records;         ///< the groups' key records, concatenated
  std::vector<std::uint64_t> record_offsets;  ///< per row: first word of its record in `records`
  /// Per row: the source partition of the row that created the group (also in the slot bytes,
  /// which restore() reads; empty in snapshots decoded from checkpoints that do not keep it).
  std::vector<std::int32_t> partitions;
};

/// @brief The rows of a snapshot whose source partition is kept (read from the slot bytes), with
/// their key records; offsets re-based, partitions filled. Host code: for per-partition state.
agg_snapshot select_partitions(const agg_snapshot& from,
                               const std::function<bool(std::int32_t)>& keep);

/// @brief Appends the rows of `from` to `into` (records concatenated, offsets re-based,
/// partitions filled). The strides must match unless `into` has no rows (trove::logic_error).
/// The snapshots must hold distinct groups (those of disjoint partitions of one table, say):
/// restore() takes every row as a group of its own.
void append_snapshot(agg_snapshot& into, const agg_snapshot& from);

/// @brief The open groups a chain of snapshots adds up to: a full snapshot followed by snapshots of
/// the groups updated since the one before (agg_table::snapshot_updated). Each (group, window)
/// comes from the last snapshot that holds it; groups of windows that end at or before
/// `emitted_watermark` (emitted since, `window_size_ms` long) are left out. Rows come in the
/// order of the chain, newest snapshot first. Host code: for checkpoints.
agg_snapshot merge_snapshots(std::span<const agg_snapshot> chain, std::int64_t window_size_ms,
                             std::int64_t emitted_watermark);

}  // namespace trove::kernels
