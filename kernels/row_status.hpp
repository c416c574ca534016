#pragma once
/// @file row_status.hpp
/// @brief The fate of every input row: each ends in exactly one of these (the accounting identity
/// in = accepted + duplicate + late + filtered + bad).

#include <cstdint>

namespace trove::kernels {

/// @brief Per-row outcome; kernels only ever move a row from `accepted` to another state.
enum row_status : std::uint8_t {
  status_accepted = 0,   ///< contributes to the aggregates
  status_duplicate = 1,  ///< its dedup key was accepted earlier and has not expired
  status_late = 2,       ///< every window containing it was already emitted
  status_filtered = 3,   ///< rejected by the pipeline's filter
  status_bad = 4,        ///< undecodable (counted by the decoder) or event time out of range
  status_count = 5
};

}  // namespace trove::kernels
