#pragma once
/// @file duration.hpp
/// @brief Parsing and formatting of the durations ("500ms", "10s", "1m30s") and memory sizes
/// ("512MiB", "4GiB", "1GB") written in pipeline configs.
///
/// Durations have millisecond resolution because event times are epoch milliseconds: a value that
/// is not a whole number of milliseconds ("250us", "0.5ms") is rejected rather than rounded.

#include <cstdint>
#include <string>
#include <string_view>

namespace trove::host {

/// @brief What a duration must look like; config errors quote it as the expected form.
inline constexpr std::string_view duration_expected = "a duration like 500ms, 10s, 5m, 1h";

/// @brief What a memory size must look like; config errors quote it as the expected form.
inline constexpr std::string_view size_expected = "a size like 512MiB, 4GiB, 1GB or a byte count";

/// @brief Parses a non-negative duration into milliseconds.
///
/// Accepted: a plain integer (milliseconds), or one or more `<number><unit>` parts with units
/// `d`, `h`, `m`, `s`, `ms` (and `us`/`ns` when the total is a whole number of milliseconds), in
/// decreasing order, e.g. "500ms", "10s", "1.5h", "1m30s", "1d12h". Surrounding spaces are ignored.
/// @param text the duration as written
/// @param out_ms receives the value on success (unchanged on failure)
/// @param reason receives why the text was rejected (e.g. "sub-millisecond durations are not
///        supported"), without repeating the expected form
/// @return true when the text is a valid duration
bool parse_duration(std::string_view text, std::int64_t& out_ms, std::string& reason);

/// @brief Formats milliseconds as the shortest combined form that parse_duration reads back
/// exactly: 0 → "0ms", 90000 → "1m30s", 86400000 → "1d", 1500 → "1s500ms".
[[nodiscard]] std::string format_duration(std::int64_t ms);

/// @brief Parses a non-negative memory size into bytes.
///
/// Accepted: a plain integer (bytes), or `<number><unit>` with binary units `KiB`, `MiB`, `GiB`,
/// `TiB`, `PiB` (also written `Ki`, `Mi`, ...; powers of 1024) or decimal units `B`, `KB`, `MB`,
/// `GB`, `TB`, `PB` (also `K`, `M`, ...; powers of 1000); units are case-insensitive and the number
/// may have a fraction when the result is a whole number of bytes ("1.5GiB").
/// @param text the size as written
/// @param out_bytes receives the value on success (unchanged on failure)
/// @param reason receives why the text was rejected
/// @return true when the text is a valid size
bool parse_size(std::string_view text, std::uint64_t& out_bytes, std::string& reason);

/// @brief Formats bytes with the largest binary unit that divides them exactly ("4GiB"), else the
/// largest exact decimal unit ("1GB"), else plain bytes ("1000001").
[[nodiscard]] std::string format_size(std::uint64_t bytes);

}  // namespace trove::host
