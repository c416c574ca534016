#pragma once
/// @file router.hpp
/// @brief Routing by a field (`sink.topic: "events.clean.{type}"`): names each output row's
/// target from its values — a forwarded record's schema fields, a result row's group key — by the
/// rule of io/route.hpp, and counts the values that rule rewrote.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/config.hpp"
#include "io/batch.hpp"
#include "io/result_batch.hpp"
#include "io/route.hpp"

namespace trove::host {

/// @brief Fills result_batch::targets for a routed sink (does nothing for a fixed target).
class router {
 public:
  /// @brief The router of a single-output pipeline's sink.
  explicit router(const pipeline_config& config);
  /// @brief The router of one sink whose rows carry fields of `schema`.
  router(const io::schema& schema, const sink_config& sink);

  /// @brief Whether the sink's target has placeholders.
  [[nodiscard]] bool routed() const noexcept { return route_.has_value() && route_->routed(); }

  /// @brief Names the target of every row of `rows`: forwarded records from their batch rows
  /// (`batch_rows[i]` is the batch row of record i), result rows from their group-key columns.
  void route(io::result_batch& rows, const io::host_batch* batch,
             std::span<const std::uint32_t> batch_rows);

  /// @brief Rows whose target the unsafe-value rule rewrote, since construction.
  [[nodiscard]] std::uint64_t rewritten() const noexcept { return rewritten_; }

 private:
  std::optional<io::route_template> route_;
  std::vector<int> schema_columns_;  // per placeholder: its schema column (forwarded records)
  std::vector<std::string> names_;   // per placeholder: its field (result column) name
  std::vector<std::optional<std::string_view>> values_;
  std::vector<std::string> numbers_;  // integer values as text, one per placeholder
  std::string target_;
  std::uint64_t rewritten_ = 0;
};

}  // namespace trove::host
