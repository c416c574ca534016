#pragma once
/// @file ownership.hpp
/// @brief Who owns which Kafka partition's state in a shared checkpoint.dir (several trove
/// instances of one consumer group mounting the same directory).
///
/// Layout under checkpoint.dir:
///   members/<member>/          one checkpoint chain per instance (checkpoint_store), where
///                              <member> is source.instance_id, or the first free slot m0, m1, …
///   members/<member>/lock      held (flock) while the instance runs: two live instances never
///                              share a chain
///   owners/<topic>/<partition>/<epoch>   one empty-named claim per owner of the partition's
///                              state, holding the claiming member's name
///
/// Fencing: an instance assigned a partition claims the next epoch by creating its file with
/// O_EXCL (atomic on a local file system and on NFSv3+/EFS). Its checkpoints record the epoch of
/// every partition they hold; before one is written, every epoch is checked to still be the
/// partition's highest. A zombie — an instance that lost its partitions (paused past the session
/// timeout, cut off from the brokers) and wakes up — finds a higher epoch and stops with an error
/// instead of overwriting the new owner's state. After a new owner's checkpoint holding epoch e is
/// durable, the claims below e are removed: the previous owner's last checkpoint of the
/// partition is no longer needed (members keep it until then, see checkpoint_store::write).

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace trove::host {

/// @brief A checkpoint would overwrite state that another instance owns now.
class fenced_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief One claim of a partition's state.
struct partition_claim {
  std::uint64_t epoch = 0;
  std::string member;
};

/// @brief This instance's membership of a shared checkpoint directory.
class partition_ownership {
 public:
  /// @brief Takes this instance's member slot: `instance_id` when set (an error when another live
  /// instance holds it), else the first free m0, m1, ….
  /// @throws std::runtime_error naming checkpoint.dir when it cannot be written
  partition_ownership(std::filesystem::path dir, const std::string& instance_id);
  ~partition_ownership();
  partition_ownership(const partition_ownership&) = delete;
  partition_ownership& operator=(const partition_ownership&) = delete;

  [[nodiscard]] const std::string& member() const noexcept { return member_; }
  /// @brief The directory of this instance's checkpoint chain.
  [[nodiscard]] std::filesystem::path member_dir() const { return member_dir(member_); }
  /// @brief The chain of a member; "" is the top of checkpoint.dir, where a trove from before
  /// shared directories kept its single chain (its partitions count as claimed at epoch 0).
  [[nodiscard]] std::filesystem::path member_dir(const std::string& member) const;

  /// @brief Claims the next epoch of a partition's state for this member (durable on return).
  std::uint64_t claim(const std::string& topic, std::int32_t partition);

  /// @brief The claims of a partition, highest epoch first.
  [[nodiscard]] std::vector<partition_claim> claims(const std::string& topic,
                                                    std::int32_t partition) const;

  /// @brief Whether the claim of `epoch` still exists (no newer owner has checkpointed since).
  [[nodiscard]] bool claimed(const std::string& topic, std::int32_t partition,
                             std::uint64_t epoch) const;

  /// @brief Throws fenced_error when a claim above `epoch` exists.
  void check_owner(const std::string& topic, std::int32_t partition, std::uint64_t epoch) const;

  /// @brief Removes the claims below `epoch` (the new owner's checkpoint holding it is durable).
  void release_older(const std::string& topic, std::int32_t partition, std::uint64_t epoch);

 private:
  [[nodiscard]] std::filesystem::path partition_dir(const std::string& topic,
                                                    std::int32_t partition) const;
  std::filesystem::path dir_;
  std::string member_;
  int lock_fd_ = -1;
};

}  // namespace trove::host
