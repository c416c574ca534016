#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/agg_table_impl.hpp"
#include "kernels/error.hpp"

namespace trove::kernels::detail {

agg_layout make_agg_layout(const agg_options& options) {
  agg_layout layout;
  layout.num_keys = static_cast<std::uint32_t>(options.key_is_string.size());
  layout.num_fields = static_cast<std::uint32_t>(options.fields.size());
  for (std::size_t c = 0; c < options.key_is_string.size(); ++c) {
    layout.key_is_string[c] = options.key_is_string[c];
  }
  std::uint32_t word = 0;
  for (std::size_t f = 0; f < options.fields.size(); ++f) {
    layout.kinds[f] = options.fields[f];
    layout.nullable[f] = f >= options.field_nullable.size() || options.field_nullable[f];
    std::uint8_t wanted =
        f < options.field_accumulators.size() ? options.field_accumulators[f] : acc_value_bits;
    TROVE_EXPECTS(
        (wanted & ~(acc_value_bits | acc_bit(acc_kind::hll) | acc_bit(acc_kind::ddsketch))) == 0,
        "agg_options::field_accumulators: only sum, min, max, hll and ddsketch can be asked for");
    layout.field_hashed[f] = (wanted & acc_bit(acc_kind::hll)) != 0;
    layout.hll_fields += layout.field_hashed[f] ? 1 : 0;
    layout.dd_fields += (wanted & acc_bit(acc_kind::ddsketch)) != 0 ? 1 : 0;
    if (layout.nullable[f]) wanted |= acc_bit(acc_kind::non_null);
    layout.field_acc_begin[f] = static_cast<std::uint8_t>(layout.num_accs);
    for (std::uint32_t k = 0; k < acc_kind_count; ++k) {
      const auto kind = static_cast<acc_kind>(k);
      if (!(wanted & acc_bit(kind))) continue;
      layout.accs[layout.num_accs++] =
          acc_slot{kind, static_cast<std::uint8_t>(f), static_cast<std::uint16_t>(word)};
      word += acc_word_count(kind);
    }
  }
  layout.field_acc_begin[options.fields.size()] = static_cast<std::uint8_t>(layout.num_accs);
  TROVE_EXPECTS(
      options.hll_precision >= hll_min_precision && options.hll_precision <= hll_max_precision,
      "agg_options::hll_precision must be in 4..18");
  layout.hll_precision = options.hll_precision;
  layout.sketch_accs = layout.hll_fields + layout.dd_fields;
  if (layout.dd_fields) {
    TROVE_EXPECTS(options.quantile_accuracy >= dd_min_accuracy &&
                      options.quantile_accuracy <= dd_max_accuracy,
                  "agg_options::quantile_accuracy must be in [0.001, 0.1]");
    const dd_params dd = dd_params_for(options.quantile_accuracy);
    layout.dd_log_gamma = dd.log_gamma;
    layout.dd_key_min = dd.key_min;
    layout.dd_buckets = dd.buckets;
  }
  layout.acc_words = word;
  layout.stride = sizeof(agg_header) + std::size_t{word} * sizeof(std::uint64_t);
  return layout;
}

std::uint64_t layout_signature(const agg_layout& layout) {
  std::uint64_t h = mix64(0x747276655f616767ull ^ layout.num_keys);  // "trve_agg"
  for (std::uint32_t c = 0; c < layout.num_keys; ++c) {
    h = mix64(h ^ (layout.key_is_string[c] ? 0x51 : 0x17));
  }
  h = mix64(h ^ (std::uint64_t{layout.num_fields} << 8));
  for (std::uint32_t f = 0; f < layout.num_fields; ++f) {
    h = mix64(h ^ static_cast<std::uint64_t>(layout.kinds[f]));
  }
  for (std::uint32_t a = 0; a < layout.num_accs; ++a) {
    const acc_slot& acc = layout.accs[a];
    h = mix64(h ^ (static_cast<std::uint64_t>(acc.kind) | std::uint64_t{acc.field} << 8 |
                   std::uint64_t{acc.word} << 16));
  }
  // Registers of another precision are another sketch (a layout without one keeps its signature).
  if (layout.hll_fields > 0) h = mix64(h ^ (0x686c6cull << 8 | layout.hll_precision));
  if (layout.dd_fields > 0) {
    h = mix64(h ^ cuda::std::bit_cast<std::uint64_t>(layout.dd_log_gamma));
    h = mix64(h ^ (static_cast<std::uint64_t>(static_cast<std::uint32_t>(layout.dd_key_min)) << 32 |
                   layout.dd_buckets));
  }
  return h == 0 ? 1 : h;
}

std::vector<unsigned char> convert_full_layout_slots(const agg_layout& layout,
                                                     const agg_snapshot& snapshot) {
  // Formats 1 to 3 kept, after the header, four words per field in acc_kind order (non_null, sum,
  // min, max): no sketch existed then.
  constexpr std::size_t full_kinds = 4;
  TROVE_EXPECTS(layout.sketch_accs == 0,
                "checkpoint: aggregation slots of another layout (aggregates changed)");
  const std::size_t full_stride =
      sizeof(agg_header) + std::size_t{layout.num_fields} * full_kinds * 8;
  TROVE_EXPECTS(snapshot.stride == full_stride,
                "checkpoint: aggregation slots of another layout (aggregates changed)");
  TROVE_EXPECTS(snapshot.slots.size() == snapshot.rows * snapshot.stride,
                "checkpoint: inconsistent aggregation snapshot");
  std::vector<unsigned char> out(snapshot.rows * layout.stride);
  for (std::size_t row = 0; row < snapshot.rows; ++row) {
    const unsigned char* from = snapshot.slots.data() + row * full_stride;
    unsigned char* to = out.data() + row * layout.stride;
    std::memcpy(to, from, sizeof(agg_header));
    for (std::uint32_t a = 0; a < layout.num_accs; ++a) {
      const acc_slot& acc = layout.accs[a];
      const std::size_t word =
          std::size_t{acc.field} * full_kinds + static_cast<std::size_t>(acc.kind);
      std::memcpy(to + sizeof(agg_header) + std::size_t{acc.word} * 8,
                  from + sizeof(agg_header) + word * 8, 8);
    }
  }
  return out;
}

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
  // Where each field's accumulators are in a slot (-1: not kept), and the result vector of each.
  struct acc_out {
    std::size_t offset;
    std::vector<std::uint64_t>* values;
  };
  std::vector<acc_out> accs;
  result.fields.resize(layout.num_fields);
  for (std::uint32_t f = 0; f < layout.num_fields; ++f) {
    result_field& field = result.fields[f];
    field.kind = layout.kinds[f];
    field.non_null.resize(rows);
    for (std::uint32_t a = layout.field_acc_begin[f]; a < layout.field_acc_begin[f + 1]; ++a) {
      const acc_slot& acc = layout.accs[a];
      std::vector<std::uint64_t>* values = nullptr;
      switch (acc.kind) {
        case acc_kind::non_null:
          values = &field.non_null;
          break;
        case acc_kind::sum:
          values = &field.sum;
          break;
        case acc_kind::min:
          values = &field.min;
          break;
        case acc_kind::max:
          values = &field.max;
          break;
        case acc_kind::hll:  // the extraction wrote the estimate into the first word
          values = &field.approx_distinct;
          break;
        case acc_kind::ddsketch:  // the extraction wrote the quantiles into its words
          for (std::uint32_t q = 0; q < dd_quantile_count; ++q) {
            field.quantiles[q].resize(rows);
            accs.push_back(
                {sizeof(agg_header) + (std::size_t{acc.word} + q) * 8, &field.quantiles[q]});
          }
          continue;
      }
      values->resize(rows);
      accs.push_back({sizeof(agg_header) + std::size_t{acc.word} * 8, values});
    }
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
    // A field that cannot be null keeps no counter of its own: every row counted has it.
    for (std::uint32_t f = 0; f < layout.num_fields; ++f) {
      if (!layout.nullable[f]) result.fields[f].non_null[row] = header.count;
    }
    for (const acc_out& acc : accs) {
      std::memcpy(&(*acc.values)[row], h_slots + src * layout.stride + acc.offset, 8);
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
