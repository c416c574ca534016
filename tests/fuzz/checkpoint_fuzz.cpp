/// @file checkpoint_fuzz.cpp
/// @brief libFuzzer target: the checkpoint loader (host/checkpoint/store.cpp) on arbitrary files.
///
/// Input: a manifest, dedup segment or group segment file as it lies on disk (every decoder gets
/// every input), or, when
/// the first byte is trove::fuzz::wrap_marker, a bare payload that the target wraps in a valid
/// envelope of each kind (magic, version 1, length, XXH64), so that mutations get past the
/// checksum to the payload parsers. Checks: decode_manifest, decode_segment and
/// decode_segment_into either return or throw checkpoint_error (anything else escaping, a crash or
/// a hang is a bug); a decoded manifest is consistent (one record offset per aggregation row,
/// rows × stride slot bytes) and encodes back to the same bytes, which decode to equal fields; a
/// decoded segment holds only zero reserved words and encodes back to the same bytes;
/// decode_segment_into appends exactly what decode_segment returns and leaves its output
/// unchanged when the segment is rejected. A file of an older format version that is still read
/// (1) encodes in the current version, so for it the check is the round trip of the decoded
/// fields, not of the bytes (fuzz finding: a version-1 segment failed the byte check).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint_envelope.hpp"
#include "host/checkpoint/store.hpp"
#include "kernels/error.hpp"

namespace {

using namespace trove::host;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "trove fuzz: check failed: %s\n", what);
    std::abort();
  }
}

/// @brief Whether the file's envelope says the current format version (a decoded file has one).
bool current_version(std::string_view file) {
  std::uint32_t version = 0;
  std::memcpy(&version, file.data() + 8, sizeof version);
  return version == checkpoint_format_version;
}

bool same_records(const dedup_record& a, const dedup_record& b) {
  return std::memcmp(&a, &b, sizeof(dedup_record)) == 0;  // no padding (state.hpp)
}

/// @brief The fields of two manifests that are cheap to compare, compared.
void require_same_manifest(const checkpoint_state& a, const checkpoint_state& b) {
  require(a.id == b.id && a.created_ms == b.created_ms, "round trip: id, created_ms");
  require(a.compat == b.compat, "round trip: compat");
  const run_counters& x = a.counters;
  const run_counters& y = b.counters;
  require(x.accepted == y.accepted && x.duplicate == y.duplicate && x.late == y.late &&
              x.filtered == y.filtered && x.bad == y.bad && x.rows_out == y.rows_out &&
              x.windows_emitted == y.windows_emitted && x.batches == y.batches,
          "round trip: counters");
  require(a.watermark == b.watermark && a.max_event_time == b.max_event_time &&
              a.emitted_watermark == b.emitted_watermark,
          "round trip: watermarks");
  require(a.partitions.size() == b.partitions.size(), "round trip: partition count");
  for (std::size_t i = 0; i < a.partitions.size(); ++i) {
    require(a.partitions[i].partition == b.partitions[i].partition &&
                a.partitions[i].max_event_time == b.partitions[i].max_event_time,
            "round trip: partition");
  }
  require(a.source.file_offset == b.source.file_offset &&
              a.source.file_line == b.source.file_line && a.source.generated == b.source.generated,
          "round trip: source position");
  require(a.source.kafka.size() == b.source.kafka.size(), "round trip: kafka position count");
  for (std::size_t i = 0; i < a.source.kafka.size(); ++i) {
    const kafka_position& p = a.source.kafka[i];
    const kafka_position& q = b.source.kafka[i];
    require(p.topic == q.topic && p.partition == q.partition && p.next_offset == q.next_offset,
            "round trip: kafka position");
  }
  require(a.sink_length == b.sink_length && a.dead_letter_length == b.dead_letter_length,
          "round trip: sink lengths");
  require(a.window_size_ms == b.window_size_ms && a.open_groups == b.open_groups,
          "round trip: window size, open groups");
  require(a.group_segments.size() == b.group_segments.size(), "round trip: group segment count");
  for (std::size_t i = 0; i < a.group_segments.size(); ++i) {
    const group_segment_ref& p = a.group_segments[i];
    const group_segment_ref& q = b.group_segments[i];
    require(p.id == q.id && p.rows == q.rows && p.checksum == q.checksum,
            "round trip: group segment ref");
  }
  require(a.segments.size() == b.segments.size(), "round trip: segment count");
  for (std::size_t i = 0; i < a.segments.size(); ++i) {
    const segment_ref& p = a.segments[i];
    const segment_ref& q = b.segments[i];
    require(p.id == q.id && p.entries == q.entries && p.max_first_seen == q.max_first_seen &&
                p.checksum == q.checksum,
            "round trip: segment ref");
  }
  require(a.dedup_entries.empty() && b.dedup_entries.empty(), "a manifest holds no dedup entries");
}

/// @brief A decoded snapshot's sizes agree (one record offset per row, rows x stride bytes).
void require_consistent(const trove::kernels::agg_snapshot& g) {
  require(g.record_offsets.size() == g.rows, "one record offset per aggregation row");
  if (g.rows > 0) {
    require(g.stride > 0 && g.slots.size() / g.stride == g.rows && g.slots.size() % g.stride == 0,
            "rows x stride slot bytes");
  }
}

/// @brief A group segment: rejected, or consistent and re-encoded to the same bytes (current
/// version); then merged as a chain with itself, which must reject it (trove::logic_error) or
/// give each group once, never more rows than it holds.
void fuzz_groups(std::string_view file) {
  trove::kernels::agg_snapshot g;
  try {
    g = decode_groups(file);
  } catch (const checkpoint_error&) {
    return;
  }
  require_consistent(g);
  const std::string again = encode_groups(g);
  if (current_version(file)) require(again == file, "encode_groups(decode_groups(file)) == file");
  const trove::kernels::agg_snapshot chain[2] = {g, g};
  try {
    const auto merged = trove::kernels::merge_snapshots(chain, 60'000, INT64_MIN);
    require(merged.rows <= g.rows, "a merge of a snapshot with itself adds no rows");
    require_consistent(merged);
    require(merged.partitions.size() == merged.rows, "a merge fills the partitions");
  } catch (const trove::logic_error&) {
    // Key records out of range, a stride below the slot header: refused.
  }
}

void fuzz_manifest(std::string_view file) {
  checkpoint_state s;
  try {
    s = decode_manifest(file);
  } catch (const checkpoint_error&) {
    return;
  }
  require_consistent(s.agg);  // an older version's groups, kept in its manifest
  if (current_version(file)) require(s.agg.rows == 0, "a current manifest holds no groups");
  const std::string again = encode_manifest(s);
  if (current_version(file)) {
    require(again == file, "encode_manifest(decode_manifest(file)) == file");
  }
  checkpoint_state t;
  try {
    t = decode_manifest(again);
  } catch (const checkpoint_error&) {
    require(false, "a re-encoded manifest decodes");
  }
  require_same_manifest(s, t);
}

void fuzz_segment(std::string_view file) {
  std::vector<dedup_record> entries;
  bool ok = true;
  try {
    entries = decode_segment(file);
  } catch (const checkpoint_error&) {
    ok = false;
  }
  // decode_segment_into appends to what is there, or leaves it as it was.
  const dedup_record sentinel{-1, 0xA5A5A5A5A5A5A5A5ULL, 0x5A5A5A5A5A5A5A5AULL, 7, 0};
  std::vector<dedup_record> out(2, sentinel);
  bool into_ok = true;
  try {
    decode_segment_into(file, out);
  } catch (const checkpoint_error&) {
    into_ok = false;
  }
  require(ok == into_ok, "decode_segment and decode_segment_into agree on acceptance");
  require(out.size() == 2 + entries.size(), "decode_segment_into appends every entry, or none");
  require(same_records(out[0], sentinel) && same_records(out[1], sentinel),
          "decode_segment_into keeps what was there");
  if (!ok) return;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    require(entries[i].reserved == 0, "reserved word zero");
    require(same_records(out[2 + i], entries[i]), "decode_segment_into == decode_segment");
  }
  const std::string again = encode_segment(entries);
  if (current_version(file)) {
    require(again == file, "encode_segment(decode_segment(file)) == file");
  } else {
    std::vector<dedup_record> back;
    try {
      back = decode_segment(again);
    } catch (const checkpoint_error&) {
      require(false, "a re-encoded segment decodes");
    }
    require(back.size() == entries.size(), "round trip of an older version: entry count");
    for (std::size_t i = 0; i < entries.size(); ++i) {
      require(same_records(back[i], entries[i]), "round trip of an older version: entries");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[0] == trove::fuzz::wrap_marker) {
    const std::string_view payload = input.substr(1);
    fuzz_manifest(trove::fuzz::wrap_envelope(trove::fuzz::manifest_magic, payload));
    fuzz_segment(trove::fuzz::wrap_envelope(trove::fuzz::segment_magic, payload));
    fuzz_groups(trove::fuzz::wrap_envelope(trove::fuzz::groups_magic, payload));
  } else {
    fuzz_manifest(input);
    fuzz_segment(input);
    fuzz_groups(input);
  }
  return 0;
}
