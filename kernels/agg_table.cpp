#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/agg_table_impl.hpp"
#include "kernels/error.hpp"

namespace trove::kernels::detail {

agg_result decode_result(const agg_layout& layout, const window_spec& window,
                         const unsigned char* h_slots, std::size_t rows,
                         const std::uint64_t* h_records, const std::uint64_t* h_record_offsets) {
  agg_result result;
  result.rows = rows;
  result.keys.resize(layout.num_keys);
  for (std::uint32_t c = 0; c < layout.num_keys; ++c) {
    result_key_column& col = result.keys[c];
    col.is_string = layout.key_is_string[c];
    col.valid.reserve(rows);
    if (col.is_string) {
      col.offsets.reserve(rows + 1);
      col.offsets.push_back(0);
    } else {
      col.values.reserve(rows);
    }
  }
  result.fields.resize(layout.num_fields);
  for (std::uint32_t f = 0; f < layout.num_fields; ++f) {
    result.fields[f].kind = layout.kinds[f];
    result.fields[f].non_null.resize(rows);
    result.fields[f].sum.resize(rows);
    result.fields[f].min.resize(rows);
    result.fields[f].max.resize(rows);
  }
  result.window_start.resize(rows);
  result.window_end.resize(rows);
  result.count.resize(rows);

  struct order_key {
    std::int64_t window_start;
    std::uint64_t k0;
    std::uint64_t k1;
    std::uint32_t index;
  };
  std::vector<order_key> order(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    agg_header h;
    std::memcpy(&h, h_slots + i * layout.stride, sizeof(h));
    order[i] = {h.window_start, h.k0, h.k1, static_cast<std::uint32_t>(i)};
  }
  std::sort(order.begin(), order.end(), [](const order_key& a, const order_key& b) {
    if (a.window_start != b.window_start) return a.window_start < b.window_start;
    if (a.k0 != b.k0) return a.k0 < b.k0;
    return a.k1 < b.k1;
  });

  for (std::size_t row = 0; row < rows; ++row) {
    const std::size_t src = order[row].index;
    agg_header header;
    std::memcpy(&header, h_slots + src * layout.stride, sizeof(header));
    result.window_start[row] = header.window_start;
    result.window_end[row] = header.window_start + window.size_ms;
    result.count[row] = header.count;
    if (row == 0 || result.window_start[row] != result.window_start[row - 1]) ++result.windows;
    for (std::uint32_t f = 0; f < layout.num_fields; ++f) {
      agg_acc acc;
      std::memcpy(&acc, h_slots + src * layout.stride + sizeof(agg_header) + f * sizeof(agg_acc),
                  sizeof(acc));
      // A field that cannot be null keeps no counter of its own: every row counted has it.
      result.fields[f].non_null[row] = layout.nullable[f] ? acc.non_null : header.count;
      result.fields[f].sum[row] = acc.sum;
      result.fields[f].min[row] = acc.min;
      result.fields[f].max[row] = acc.max;
    }
    const std::uint64_t* record = h_records + h_record_offsets[src];
    const std::uint64_t mask = record[0];
    std::size_t word = 1;
    for (std::uint32_t c = 0; c < layout.num_keys; ++c) {
      result_key_column& col = result.keys[c];
      col.valid.push_back((mask >> c) & 1u);
      if (!col.is_string) {
        col.values.push_back(record[word++]);
        continue;
      }
      const std::uint64_t len = record[word++];
      const std::size_t at = col.chars.size();
      col.chars.resize(at + len);
      for (std::uint64_t b = 0; b < len; ++b) {  // little-endian packing, see write_key_record
        col.chars[at + b] = static_cast<char>((record[word + b / 8] >> (8 * (b % 8))) & 0xFF);
      }
      word += (len + 7) / 8;
      col.offsets.push_back(static_cast<std::uint32_t>(col.chars.size()));
    }
  }
  return result;
}

}  // namespace trove::kernels::detail
