#include "host/router.hpp"

#include <charconv>

namespace trove::host {
namespace {

/// An integer word as decimal text (signed unless the field is u64).
std::string_view integer_text(std::uint64_t word, io::field_type type, std::string& buffer) {
  buffer.resize(24);
  const auto r = type == io::field_type::u64
                     ? std::to_chars(buffer.data(), buffer.data() + buffer.size(), word)
                     : std::to_chars(buffer.data(), buffer.data() + buffer.size(),
                                     static_cast<std::int64_t>(word));
  return std::string_view(buffer.data(), static_cast<std::size_t>(r.ptr - buffer.data()));
}

}  // namespace

router::router(const pipeline_config& config) : router(config.schema, config.sink) {}

router::router(const io::schema& schema, const sink_config& sink) {
  if (sink.type != sink_type::kafka) return;
  std::string error;
  route_ = io::route_template::parse(sink.kafka.topic, error);
  if (!route_ || !route_->routed()) return;
  for (const std::string& name : route_->fields()) {
    names_.push_back(name);
    schema_columns_.push_back(schema.index_of(name));
  }
  values_.resize(names_.size());
  numbers_.resize(names_.size());
}

void router::route(io::result_batch& rows, const io::host_batch* batch,
                   std::span<const std::uint32_t> batch_rows) {
  if (!routed()) return;
  rows.targets.clear();
  if (rows.forwarded) {
    if (!batch) return;
    const auto& fields = batch->schema().fields;
    for (std::size_t idx = 0; idx < rows.rows && idx < batch_rows.size(); ++idx) {
      const std::size_t row = batch_rows[idx];
      for (std::size_t p = 0; p < names_.size(); ++p) {
        const auto column = static_cast<std::size_t>(schema_columns_[p]);
        if (!batch->is_valid(column, row)) {
          values_[p].reset();
        } else if (fields[column].type == io::field_type::string) {
          values_[p] = batch->string_at(column, row);
        } else {
          values_[p] = integer_text(batch->fixed(column)[row], fields[column].type, numbers_[p]);
        }
      }
      rewritten_ += route_->render(values_, target_);
      rows.targets.push_back(target_);
    }
    return;
  }
  std::vector<const io::result_column*> columns;
  for (const std::string& name : names_) {
    const io::result_column* found = nullptr;
    for (const io::result_column& column : rows.columns) {
      if (column.name == name) found = &column;
    }
    columns.push_back(found);
  }
  for (std::size_t row = 0; row < rows.rows; ++row) {
    for (std::size_t p = 0; p < columns.size(); ++p) {
      const io::result_column* column = columns[p];
      if (!column || !column->is_valid(row)) {
        values_[p].reset();
      } else if (column->type == io::field_type::string) {
        values_[p] = column->string_at(row);
      } else {
        values_[p] = integer_text(column->fixed[row], column->type, numbers_[p]);
      }
    }
    rewritten_ += route_->render(values_, target_);
    rows.targets.push_back(target_);
  }
}

}  // namespace trove::host
