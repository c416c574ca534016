#pragma once
/// @file store.hpp
/// @brief Checkpoints on disk: one directory (`checkpoint.dir`), a manifest file per checkpoint,
/// an append-only segment file of new dedup entries per checkpoint interval, and a file of the
/// open aggregation groups that changed (or of all of them) per checkpoint.
///
/// Layout: `checkpoint-<id>.ckpt` (the manifest: counters, watermarks, positions, the lists of
/// live dedup and group segments), `dedup-<id>.seg` and `groups-<id>.seg`; with exactly-once
/// delivery `checkpoint-<id>.pending` (empty) exists from before the manifest until its Kafka
/// transaction committed. Every file is an envelope
/// [magic][version][payload length][payload][XXH64 of the payload], written to a temporary file,
/// fsync'ed, renamed into place, and the directory fsync'ed: a crash leaves either the whole file
/// or none. Loading verifies lengths and checksums; a torn or corrupt checkpoint (or one whose
/// segment is missing or corrupt) is never loaded: the previous one is used, with a warning
/// naming the file.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "host/checkpoint/state.hpp"

namespace trove::host {

/// @brief The version every checkpoint file's envelope carries (files of another are refused).
/// 2: Kafka positions carry their partition's owner epoch, partitions their emitted-window
/// frontier (a shared checkpoint.dir). 3: the open groups move from the manifest into group
/// segments, a chain of a full one and the updates after it. 4: group slots keep only the
/// accumulators the pipeline asks for, and a group segment names its slot layout (older ones hold
/// the full layout, which the aggregation table converts). 5: a pipeline with `outputs` keeps, per
/// output, its emitted-window frontier, sink length, counters and (past the first) open groups.
/// Versions 1 to 4 are still read.
inline constexpr std::uint32_t checkpoint_format_version = 5;

/// @brief A checkpoint file that cannot be used (torn, corrupt, wrong version).
class checkpoint_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief Serialized bytes of a manifest (without the dedup entries) and back; exposed for tests
/// and the fuzzer. decode throws checkpoint_error on anything malformed.
[[nodiscard]] std::string encode_manifest(const checkpoint_state& state);
[[nodiscard]] checkpoint_state decode_manifest(std::string_view bytes);
/// @brief Serialized bytes of a dedup segment and back.
[[nodiscard]] std::string encode_segment(std::span<const std::span<const dedup_record>> entries);
[[nodiscard]] std::string encode_segment(const std::vector<dedup_record>& entries);
[[nodiscard]] std::vector<dedup_record> decode_segment(std::string_view bytes);
/// @brief decode_segment appending to `out` (unchanged when the segment is rejected).
void decode_segment_into(std::string_view bytes, std::vector<dedup_record>& out);
/// @brief Serialized bytes of a group segment (open aggregation groups) and back.
[[nodiscard]] std::string encode_groups(const kernels::agg_snapshot& groups);
[[nodiscard]] kernels::agg_snapshot decode_groups(std::string_view bytes);

/// @brief One checkpoint as `trove checkpoint list` shows it.
struct checkpoint_listing {
  std::uint64_t id = 0;
  std::filesystem::path path;
  bool valid = false;
  bool transaction_pending = false;  ///< its Kafka transaction was not (yet) committed
  std::string problem;               ///< why it is not valid
  checkpoint_state state;            ///< manifest only (no dedup entries); meaningful when valid
};

/// @brief Reads and writes the checkpoints of one directory.
class checkpoint_store {
 public:
  /// @param dir created when missing
  /// @param read_only another instance's chain (in a shared checkpoint.dir), only loaded from:
  ///        nothing is created or cleaned up
  /// @throws std::runtime_error naming checkpoint.dir when it cannot be created or written
  explicit checkpoint_store(std::filesystem::path dir, bool read_only = false);

  /// @brief The newest checkpoint that loads completely (manifest and every segment verified)
  /// and is not pending a transaction, dedup entries included; warns about every newer one that
  /// does not. nullopt: none.
  [[nodiscard]] std::optional<checkpoint_state> load_latest() const;

  /// @brief As load_latest(), but only a checkpoint whose manifest `accept` takes (called with the
  /// manifest alone, before its segments are read); null accepts every one.
  [[nodiscard]] std::optional<checkpoint_state> load_newest(
      const std::function<bool(const checkpoint_state&)>& accept) const;

  /// @brief Removes every checkpoint newer than `id` (unusable or pending ones a restore passed
  /// over) with its marker and segment, so that the ids after `id` start clean.
  void discard_newer_than(std::uint64_t id);

  /// @brief The Kafka transaction of checkpoint `id` committed: it may be restored from now on.
  /// @throws std::runtime_error naming checkpoint.dir
  void mark_committed(std::uint64_t id);

  /// @brief Writes `state` (its new_entries as segment `state.id` when non-empty, its groups as
  /// group segment `state.id` when any, continuing group_segments with agg_updates_only and
  /// replacing them otherwise) durably, then keeps the newest `retain` checkpoints and the
  /// segments they reference, deleting the rest.
  /// Fills state.manifest_bytes and state.segment_bytes. In a shared directory an older
  /// checkpoint also stays while it is the newest here to hold a Kafka partition at an epoch
  /// for which `pinned` says true (the partition's next owner has not checkpointed it yet).
  /// @throws std::runtime_error naming checkpoint.dir (disk full, unwritable); the previous
  /// checkpoints are left intact
  void write(checkpoint_state& state, std::uint32_t retain,
             const std::function<bool(const kafka_position&)>& pinned = nullptr);

  /// @brief Every checkpoint of the directory, newest first, with what is wrong with the invalid.
  [[nodiscard]] std::vector<checkpoint_listing> list() const;

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  /// The open groups of a manifest's group segments, read, verified and merged.
  [[nodiscard]] kernels::agg_snapshot load_groups(const checkpoint_state& state) const;

  std::filesystem::path dir_;
};

}  // namespace trove::host
