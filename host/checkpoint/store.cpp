#include "host/checkpoint/store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "kernels/error.hpp"

namespace trove::host {
namespace {

namespace fs = std::filesystem;

constexpr char manifest_magic[8] = {'T', 'R', 'O', 'V', 'E', 'C', 'K', 'P'};
constexpr char segment_magic[8] = {'T', 'R', 'O', 'V', 'E', 'D', 'D', 'S'};
constexpr char groups_magic[8] = {'T', 'R', 'O', 'V', 'E', 'A', 'G', 'S'};
constexpr std::uint32_t format_version = checkpoint_format_version;
constexpr std::size_t envelope_head = 8 + 4 + 8;  // magic, version, payload length
constexpr std::size_t envelope_tail = 8;          // XXH64 of the payload

/// Little-endian appends (every machine trove runs on is little-endian; the static_assert keeps
/// it honest).
static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian");

class writer {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void put_string(std::string_view s) {
    put<std::uint64_t>(s.size());
    out_.append(s);
  }
  void put_bytes(const void* data, std::size_t bytes) {
    if (bytes > 0) out_.append(static_cast<const char*>(data), bytes);  // data may be null
  }
  std::string take() { return std::move(out_); }
  std::string& buffer() { return out_; }

 private:
  std::string out_;
};

class reader {
 public:
  explicit reader(std::string_view bytes) : in_(bytes) {}
  template <class T>
  T get() {
    T value;
    need(sizeof(T));
    std::memcpy(&value, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  /// A count of items of `item_bytes` each that must fit in what is left.
  std::uint64_t get_count(std::size_t item_bytes) {
    const auto n = get<std::uint64_t>();
    if (item_bytes > 0 && n > (in_.size() - at_) / item_bytes) fail("count past the end");
    return n;
  }
  std::string get_string() {
    const std::uint64_t n = get_count(1);
    std::string s(in_.substr(at_, n));
    at_ += n;
    return s;
  }
  void get_bytes(void* out, std::size_t bytes) {
    if (bytes == 0) return;  // `out` may be null (an empty vector)
    need(bytes);
    std::memcpy(out, in_.data() + at_, bytes);
    at_ += bytes;
  }
  void finish() const {
    if (at_ != in_.size()) fail("trailing bytes");
  }
  [[noreturn]] static void fail(const std::string& why) {
    throw checkpoint_error("malformed checkpoint: " + why);
  }

 private:
  void need(std::size_t bytes) const {
    if (bytes > in_.size() - at_) fail("truncated");
  }
  std::string_view in_;
  std::size_t at_ = 0;
};

std::string envelope(const char (&magic)[8], const std::string& payload) {
  writer w;
  w.put_bytes(magic, 8);
  w.put<std::uint32_t>(format_version);
  w.put<std::uint64_t>(payload.size());
  w.buffer().append(payload);
  w.put<std::uint64_t>(XXH64(payload.data(), payload.size(), 0));
  return w.take();
}

/// The payload of an envelope, verified; its checksum in `checksum`.
std::string_view open_envelope(const char (&magic)[8], std::string_view bytes,
                               std::uint64_t* checksum = nullptr,
                               std::uint32_t* version_out = nullptr) {
  if (bytes.size() < envelope_head + envelope_tail) reader::fail("shorter than its header");
  if (std::memcmp(bytes.data(), magic, 8) != 0) reader::fail("not a trove checkpoint file");
  reader head(bytes.substr(8, 12));
  const auto version = head.get<std::uint32_t>();
  // Older versions are still read, so an upgraded trove continues from the checkpoints it finds:
  // 1 (before shared directories: its partitions have epoch 0 and the checkpoint's frontier) and
  // 2 (its open groups in the manifest).
  if (version < 1 || version > format_version) {
    throw checkpoint_error(fmt::format("checkpoint format version {} (this trove reads 1 to {})",
                                       version, format_version));
  }
  if (version_out) *version_out = version;
  const auto length = head.get<std::uint64_t>();
  if (length != bytes.size() - envelope_head - envelope_tail) {
    reader::fail(fmt::format("payload of {} bytes announced, {} present (torn write?)", length,
                             bytes.size() - envelope_head - envelope_tail));
  }
  const std::string_view payload = bytes.substr(envelope_head, length);
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + envelope_head + length, 8);
  const std::uint64_t actual = XXH64(payload.data(), payload.size(), 0);
  if (stored != actual) reader::fail("checksum mismatch (corrupt file)");
  if (checksum) *checksum = actual;
  return payload;
}

std::string read_whole(const fs::path& path) {
  // One read into a buffer of the file's size: checkpoints are hundreds of MiB at ~10M keys.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw checkpoint_error("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw checkpoint_error("cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  ::close(fd);
  return bytes;
}

[[noreturn]] void dir_error(const fs::path& dir, const std::string& what) {
  throw std::runtime_error(fmt::format(
      "checkpoint.dir '{}': {}: {} (the last good checkpoint is left intact; free space or fix "
      "permissions, then restart)",
      dir.string(), what, std::strerror(errno)));
}

/// Writes `bytes` to dir/name atomically: a temporary file, fsync, rename, fsync of the directory.
void write_atomically(const fs::path& dir, const std::string& name, const std::string& bytes) {
  const fs::path tmp = dir / (".tmp-" + name);
  const fs::path final_path = dir / name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) dir_error(dir, "cannot create " + tmp.filename().string());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      dir_error(dir, "cannot write " + tmp.filename().string());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    dir_error(dir, "cannot fsync " + tmp.filename().string());
  }
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    dir_error(dir, "cannot rename into " + name);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    if (dfd >= 0) ::close(dfd);
    dir_error(dir, "cannot fsync the directory");
  }
  ::close(dfd);
}

std::string manifest_name(std::uint64_t id) {
  return fmt::format("checkpoint-{:012}.ckpt", id);
}
std::string segment_name(std::uint64_t id) {
  return fmt::format("dedup-{:012}.seg", id);
}
std::string groups_name(std::uint64_t id) {
  return fmt::format("groups-{:012}.seg", id);
}

/// Open aggregation groups: rows, stride, slot layout (format 4 on), slot bytes, key records,
/// record offsets.
void put_groups(writer& w, const kernels::agg_snapshot& g) {
  w.put<std::uint64_t>(g.rows);
  w.put<std::uint64_t>(g.stride);
  w.put<std::uint64_t>(g.layout);
  w.put<std::uint64_t>(g.slots.size());
  w.put_bytes(g.slots.data(), g.slots.size());
  w.put<std::uint64_t>(g.records.size());
  w.put_bytes(g.records.data(), g.records.size() * 8);
  w.put<std::uint64_t>(g.record_offsets.size());
  w.put_bytes(g.record_offsets.data(), g.record_offsets.size() * 8);
}

kernels::agg_snapshot get_groups(reader& r, std::uint32_t version) {
  kernels::agg_snapshot g;
  g.rows = r.get<std::uint64_t>();
  g.stride = r.get<std::uint64_t>();
  g.layout = version >= 4 ? r.get<std::uint64_t>() : 0;  // 0: the full layout of formats 1-3
  const std::uint64_t slot_bytes = r.get_count(1);
  g.slots.resize(slot_bytes);
  r.get_bytes(g.slots.data(), slot_bytes);
  const std::uint64_t records = r.get_count(8);
  g.records.resize(records);
  r.get_bytes(g.records.data(), records * 8);
  const std::uint64_t offsets = r.get_count(8);
  g.record_offsets.resize(offsets);
  r.get_bytes(g.record_offsets.data(), offsets * 8);
  if (g.record_offsets.size() != g.rows ||
      (g.rows > 0 &&
       (g.stride == 0 || g.slots.size() / g.stride != g.rows || g.slots.size() % g.stride != 0))) {
    reader::fail("aggregation snapshot sizes disagree");
  }
  return g;
}
std::string pending_name(std::uint64_t id) {
  return fmt::format("checkpoint-{:012}.pending", id);
}

void sync_directory(const fs::path& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    if (dfd >= 0) ::close(dfd);
    dir_error(dir, "cannot fsync the directory");
  }
  ::close(dfd);
}

/// The id of a file named prefix-<id>.suffix, or nullopt.
std::optional<std::uint64_t> id_of(const std::string& name, std::string_view prefix,
                                   std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
      digits.size() > 19) {
    return std::nullopt;
  }
  return std::stoull(digits);
}

std::vector<std::uint64_t> ids_in(const fs::path& dir, std::string_view prefix,
                                  std::string_view suffix) {
  std::vector<std::uint64_t> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (auto id = id_of(entry.path().filename().string(), prefix, suffix)) ids.push_back(*id);
  }
  std::sort(ids.rbegin(), ids.rend());
  return ids;
}

}  // namespace

std::string encode_manifest(const checkpoint_state& s) {
  writer w;
  w.put<std::uint64_t>(s.id);
  w.put<std::int64_t>(s.created_ms);
  w.put<std::uint64_t>(s.compat.size());
  for (const auto& [key, value] : s.compat) {
    w.put_string(key);
    w.put_string(value);
  }
  const run_counters& c = s.counters;
  for (std::uint64_t v : {c.accepted, c.duplicate, c.late, c.filtered, c.bad, c.rows_out,
                          c.windows_emitted, c.batches}) {
    w.put<std::uint64_t>(v);
  }
  w.put<std::int64_t>(s.watermark);
  w.put<std::int64_t>(s.max_event_time);
  w.put<std::uint64_t>(s.partitions.size());
  for (const auto& p : s.partitions) {
    w.put<std::int32_t>(p.partition);
    w.put<std::int64_t>(p.max_event_time);
    w.put<std::int64_t>(p.emitted_frontier);
  }
  w.put<std::int64_t>(s.emitted_watermark);
  w.put<std::uint64_t>(s.source.file_offset);
  w.put<std::uint64_t>(s.source.file_line);
  w.put<std::uint64_t>(s.source.generated);
  w.put<std::uint64_t>(s.source.kafka.size());
  for (const auto& k : s.source.kafka) {
    w.put_string(k.topic);
    w.put<std::int32_t>(k.partition);
    w.put<std::int64_t>(k.next_offset);
    w.put<std::uint64_t>(k.epoch);
  }
  w.put<std::uint64_t>(s.sink_length);
  w.put<std::uint64_t>(s.dead_letter_length);
  w.put<std::int64_t>(s.window_size_ms);
  w.put<std::uint64_t>(s.open_groups);
  w.put<std::uint64_t>(s.group_segments.size());
  for (const auto& g : s.group_segments) {
    w.put<std::uint64_t>(g.id);
    w.put<std::uint64_t>(g.rows);
    w.put<std::uint64_t>(g.checksum);
  }
  w.put<std::uint64_t>(s.segments.size());
  for (const auto& seg : s.segments) {
    w.put<std::uint64_t>(seg.id);
    w.put<std::uint64_t>(seg.entries);
    w.put<std::int64_t>(seg.max_first_seen);
    w.put<std::uint64_t>(seg.checksum);
  }
  w.put<std::uint64_t>(s.outputs.size());
  for (const output_state& o : s.outputs) {
    w.put<std::int64_t>(o.emitted_watermark);
    for (const std::uint64_t v : {o.sink_length, o.accepted, o.emitted_into, o.filtered, o.late,
                                  o.rows_out, o.windows_emitted}) {
      w.put<std::uint64_t>(v);
    }
    put_groups(w, o.groups);
  }
  return envelope(manifest_magic, w.take());
}

checkpoint_state decode_manifest(std::string_view bytes) {
  std::uint32_t version = 0;
  reader r(open_envelope(manifest_magic, bytes, nullptr, &version));
  checkpoint_state s;
  s.id = r.get<std::uint64_t>();
  s.created_ms = r.get<std::int64_t>();
  const std::uint64_t compat = r.get_count(16);
  for (std::uint64_t i = 0; i < compat; ++i) {
    std::string key = r.get_string();
    std::string value = r.get_string();
    s.compat.emplace_back(std::move(key), std::move(value));
  }
  run_counters& c = s.counters;
  for (std::uint64_t* v : {&c.accepted, &c.duplicate, &c.late, &c.filtered, &c.bad, &c.rows_out,
                           &c.windows_emitted, &c.batches}) {
    *v = r.get<std::uint64_t>();
  }
  s.watermark = r.get<std::int64_t>();
  s.max_event_time = r.get<std::int64_t>();
  const std::uint64_t partitions = r.get_count(version >= 2 ? 20 : 12);
  for (std::uint64_t i = 0; i < partitions; ++i) {
    partition_event_time p;
    p.partition = r.get<std::int32_t>();
    p.max_event_time = r.get<std::int64_t>();
    if (version >= 2) p.emitted_frontier = r.get<std::int64_t>();
    s.partitions.push_back(p);
  }
  s.emitted_watermark = r.get<std::int64_t>();
  s.source.file_offset = r.get<std::uint64_t>();
  s.source.file_line = r.get<std::uint64_t>();
  s.source.generated = r.get<std::uint64_t>();
  const std::uint64_t kafka = r.get_count(version >= 2 ? 28 : 20);
  for (std::uint64_t i = 0; i < kafka; ++i) {
    kafka_position k;
    k.topic = r.get_string();
    k.partition = r.get<std::int32_t>();
    k.next_offset = r.get<std::int64_t>();
    if (version >= 2) k.epoch = r.get<std::uint64_t>();
    s.source.kafka.push_back(std::move(k));
  }
  s.sink_length = r.get<std::uint64_t>();
  s.dead_letter_length = r.get<std::uint64_t>();
  if (version >= 3) {
    s.window_size_ms = r.get<std::int64_t>();
    s.open_groups = r.get<std::uint64_t>();
    const std::uint64_t groups = r.get_count(24);
    for (std::uint64_t i = 0; i < groups; ++i) {
      group_segment_ref g;
      g.id = r.get<std::uint64_t>();
      g.rows = r.get<std::uint64_t>();
      g.checksum = r.get<std::uint64_t>();
      s.group_segments.push_back(g);
    }
  } else {
    s.agg = get_groups(r, version);  // versions 1 and 2 kept every open group in the manifest
    s.open_groups = s.agg.rows;
  }
  const std::uint64_t segments = r.get_count(32);
  for (std::uint64_t i = 0; i < segments; ++i) {
    segment_ref seg;
    seg.id = r.get<std::uint64_t>();
    seg.entries = r.get<std::uint64_t>();
    seg.max_first_seen = r.get<std::int64_t>();
    seg.checksum = r.get<std::uint64_t>();
    s.segments.push_back(seg);
  }
  if (version >= 5) {
    const std::uint64_t outputs = r.get_count(8 * 8 + 4 * 8);
    for (std::uint64_t i = 0; i < outputs; ++i) {
      output_state o;
      o.emitted_watermark = r.get<std::int64_t>();
      for (std::uint64_t* v : {&o.sink_length, &o.accepted, &o.emitted_into, &o.filtered, &o.late,
                               &o.rows_out, &o.windows_emitted}) {
        *v = r.get<std::uint64_t>();
      }
      o.groups = get_groups(r, version);
      s.outputs.push_back(std::move(o));
    }
  }
  r.finish();
  return s;
}

std::string encode_segment(std::span<const std::span<const dedup_record>> entries) {
  // The entries as they lie in memory (dedup_record has no padding): one copy, no per-field work.
  std::uint64_t n = 0;
  for (const auto& part : entries) n += part.size();
  writer w;
  w.buffer().reserve(8 + n * sizeof(dedup_record));
  w.put<std::uint64_t>(n);
  for (const auto& part : entries) w.put_bytes(part.data(), part.size_bytes());
  return envelope(segment_magic, w.take());
}

std::string encode_segment(const std::vector<dedup_record>& entries) {
  const std::span<const dedup_record> all(entries);
  return encode_segment(std::span<const std::span<const dedup_record>>(&all, 1));
}

void decode_segment_into(std::string_view bytes, std::vector<dedup_record>& out) {
  reader r(open_envelope(segment_magic, bytes));
  const std::uint64_t n = r.get_count(sizeof(dedup_record));
  const std::size_t at = out.size();
  out.resize(at + n);
  r.get_bytes(out.data() + at, n * sizeof(dedup_record));  // fits: get_count checked it
  try {
    r.finish();  // trailing bytes reject the segment too: `out` back as it was (fuzz finding)
    for (std::size_t i = at; i < out.size(); ++i) {
      if (out[i].reserved != 0) reader::fail("dedup entry with a non-zero reserved word");
    }
  } catch (const checkpoint_error&) {
    out.resize(at);
    throw;
  }
}

std::vector<dedup_record> decode_segment(std::string_view bytes) {
  std::vector<dedup_record> out;
  decode_segment_into(bytes, out);
  return out;
}

std::string encode_groups(const kernels::agg_snapshot& groups) {
  writer w;
  w.buffer().reserve(64 + groups.slots.size() + (groups.records.size() + groups.rows) * 8);
  put_groups(w, groups);
  return envelope(groups_magic, w.take());
}

kernels::agg_snapshot decode_groups(std::string_view bytes) {
  std::uint32_t version = 0;
  reader r(open_envelope(groups_magic, bytes, nullptr, &version));
  kernels::agg_snapshot g = get_groups(r, version);
  r.finish();
  return g;
}

checkpoint_store::checkpoint_store(fs::path dir, bool read_only) : dir_(std::move(dir)) {
  std::error_code ec;
  if (read_only) return;  // another instance's chain: its temporary files may be in use
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) {
    errno = ec ? ec.value() : ENOTDIR;
    dir_error(dir_, "cannot create the directory");
  }
  if (::access(dir_.c_str(), W_OK) != 0) dir_error(dir_, "not writable");
  // Temporary files of a write a crash interrupted.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove(entry.path(), ec);
  }
}

std::optional<checkpoint_state> checkpoint_store::load_latest() const {
  return load_newest(nullptr);
}

std::optional<checkpoint_state> checkpoint_store::load_newest(
    const std::function<bool(const checkpoint_state&)>& accept) const {
  for (std::uint64_t id : ids_in(dir_, "checkpoint-", ".ckpt")) {
    const fs::path path = dir_ / manifest_name(id);
    std::error_code ec;
    if (fs::exists(dir_ / pending_name(id), ec)) {
      spdlog::warn(
          "checkpoint {} is not used: the Kafka transaction of the rows before it never "
          "committed (the run stopped between the checkpoint and the commit, and the next "
          "producer aborted it); using the previous one",
          path.string());
      continue;
    }
    try {
      checkpoint_state state = decode_manifest(read_whole(path));
      if (state.id != id) throw checkpoint_error("its id does not match its file name");
      if (accept && !accept(state)) continue;
      std::uint64_t total = 0;
      for (const auto& seg : state.segments) total += seg.entries;
      state.dedup_entries.reserve(total);
      for (const auto& seg : state.segments) {
        const fs::path seg_path = dir_ / segment_name(seg.id);
        std::string bytes;
        try {
          bytes = read_whole(seg_path);
        } catch (const checkpoint_error&) {
          throw checkpoint_error("its dedup segment " + seg_path.filename().string() +
                                 " is missing");
        }
        std::uint64_t checksum = 0;
        open_envelope(segment_magic, bytes, &checksum);
        if (checksum != seg.checksum) {
          throw checkpoint_error("its dedup segment " + seg_path.filename().string() +
                                 " does not match the checksum it recorded");
        }
        const std::size_t before = state.dedup_entries.size();
        decode_segment_into(bytes, state.dedup_entries);
        if (state.dedup_entries.size() - before != seg.entries) {
          throw checkpoint_error("its dedup segment " + seg_path.filename().string() +
                                 " holds another number of entries");
        }
      }
      if (!state.group_segments.empty()) state.agg = load_groups(state);
      return state;
    } catch (const checkpoint_error& e) {
      spdlog::warn("checkpoint {} cannot be used: {}; trying the previous one", path.string(),
                   e.what());
    }
  }
  return std::nullopt;
}

kernels::agg_snapshot checkpoint_store::load_groups(const checkpoint_state& state) const {
  std::vector<kernels::agg_snapshot> chain;
  chain.reserve(state.group_segments.size());
  for (const auto& ref : state.group_segments) {
    const fs::path path = dir_ / groups_name(ref.id);
    std::string bytes;
    try {
      bytes = read_whole(path);
    } catch (const checkpoint_error&) {
      throw checkpoint_error("its group segment " + path.filename().string() + " is missing");
    }
    std::uint64_t checksum = 0;
    open_envelope(groups_magic, bytes, &checksum);
    if (checksum != ref.checksum) {
      throw checkpoint_error("its group segment " + path.filename().string() +
                             " does not match the checksum it recorded");
    }
    chain.push_back(decode_groups(bytes));
    if (chain.back().rows != ref.rows) {
      throw checkpoint_error("its group segment " + path.filename().string() +
                             " holds another number of groups");
    }
  }
  // One segment is every group open at the cut: nothing to merge, nothing emitted since.
  if (chain.size() == 1 && state.group_segments.back().id == state.id) {
    return std::move(chain.front());
  }
  try {
    kernels::agg_snapshot merged =
        kernels::merge_snapshots(chain, state.window_size_ms, state.emitted_watermark);
    if (merged.rows != state.open_groups) {
      throw checkpoint_error(
          fmt::format("its group segments add up to {} open groups, but it recorded {}",
                      merged.rows, state.open_groups));
    }
    return merged;
  } catch (const trove::logic_error& e) {
    throw checkpoint_error(std::string("its group segments do not fit together: ") + e.what());
  }
}

void checkpoint_store::write(checkpoint_state& state, std::uint32_t retain,
                             const std::function<bool(const kafka_position&)>& pinned) {
  state.segment_bytes = 0;
  if (!state.agg_updates_only) state.group_segments.clear();
  if (state.agg.rows > 0) {
    const std::string groups = encode_groups(state.agg);
    group_segment_ref ref;
    ref.id = state.id;
    ref.rows = state.agg.rows;
    open_envelope(groups_magic, groups, &ref.checksum);
    write_atomically(dir_, groups_name(state.id), groups);
    state.group_segments.push_back(ref);
  }
  std::uint64_t new_entries = 0;
  for (const auto& part : state.new_entries) new_entries += part.size();
  if (new_entries > 0) {
    const std::string segment = encode_segment(state.new_entries);
    std::uint64_t checksum = 0;
    open_envelope(segment_magic, segment, &checksum);
    write_atomically(dir_, segment_name(state.id), segment);
    segment_ref ref;
    ref.id = state.id;
    ref.entries = new_entries;
    ref.checksum = checksum;
    for (const auto& part : state.new_entries) {
      for (const auto& e : part) ref.max_first_seen = std::max(ref.max_first_seen, e.first_seen);
    }
    state.segments.push_back(ref);
  }
  if (state.transaction_pending) write_atomically(dir_, pending_name(state.id), {});
  const std::string manifest = encode_manifest(state);
  write_atomically(dir_, manifest_name(state.id), manifest);
  state.manifest_bytes = manifest.size();

  // Retention: the newest `retain` checkpoints and the segments they reference stay — and, in a
  // shared directory, an older one that is the newest of this chain to hold a partition at an
  // epoch `pinned` still needs (its next owner has not checkpointed it yet).
  std::error_code ec;
  const std::vector<std::uint64_t> manifests = ids_in(dir_, "checkpoint-", ".ckpt");
  std::set<std::uint64_t> referenced;
  std::set<std::uint64_t> referenced_groups;
  std::set<std::tuple<std::string, std::int32_t, std::uint64_t>> covered;  // (topic, p, epoch)
  std::uint64_t kept = 0;
  for (std::uint64_t id : manifests) {
    if (id > state.id) continue;
    const fs::path path = dir_ / manifest_name(id);
    const bool recent = kept < std::max<std::uint32_t>(retain, 1);
    std::optional<checkpoint_state> decoded;
    const checkpoint_state* manifest = id == state.id ? &state : nullptr;
    if (!manifest && (recent || pinned)) {
      try {
        decoded = decode_manifest(read_whole(path));
        manifest = &*decoded;
      } catch (const checkpoint_error&) {
        // An unreadable older checkpoint keeps nothing alive.
      }
    }
    bool keep = recent;
    if (!keep && manifest && pinned) {
      for (const auto& k : manifest->source.kafka) {
        if (covered.count({k.topic, k.partition, k.epoch}) == 0 && pinned(k)) keep = true;
      }
    }
    if (keep) {
      ++kept;
      if (manifest) {
        for (const auto& seg : manifest->segments) referenced.insert(seg.id);
        for (const auto& g : manifest->group_segments) referenced_groups.insert(g.id);
        for (const auto& k : manifest->source.kafka)
          covered.insert({k.topic, k.partition, k.epoch});
      }
      continue;
    }
    fs::remove(path, ec);
    fs::remove(dir_ / pending_name(id), ec);
  }
  for (std::uint64_t id : ids_in(dir_, "dedup-", ".seg")) {
    if (id <= state.id && referenced.count(id) == 0) fs::remove(dir_ / segment_name(id), ec);
  }
  for (std::uint64_t id : ids_in(dir_, "groups-", ".seg")) {
    if (id <= state.id && referenced_groups.count(id) == 0) fs::remove(dir_ / groups_name(id), ec);
  }
  for (const auto& seg : state.segments) {
    std::error_code size_ec;
    const auto bytes = fs::file_size(dir_ / segment_name(seg.id), size_ec);
    if (!size_ec) state.segment_bytes += bytes;
  }
  for (const auto& g : state.group_segments) {
    std::error_code size_ec;
    const auto bytes = fs::file_size(dir_ / groups_name(g.id), size_ec);
    if (!size_ec) state.segment_bytes += bytes;
  }
}

void checkpoint_store::discard_newer_than(std::uint64_t id) {
  std::error_code ec;
  bool removed = false;
  for (std::uint64_t newer : ids_in(dir_, "checkpoint-", ".ckpt")) {
    if (newer <= id) break;
    fs::remove(dir_ / manifest_name(newer), ec);
    removed = true;
  }
  for (std::uint64_t newer : ids_in(dir_, "checkpoint-", ".pending")) {
    if (newer > id) removed |= fs::remove(dir_ / pending_name(newer), ec);
  }
  for (std::uint64_t newer : ids_in(dir_, "dedup-", ".seg")) {
    if (newer > id) removed |= fs::remove(dir_ / segment_name(newer), ec);
  }
  for (std::uint64_t newer : ids_in(dir_, "groups-", ".seg")) {
    if (newer > id) removed |= fs::remove(dir_ / groups_name(newer), ec);
  }
  if (removed) sync_directory(dir_);
}

void checkpoint_store::mark_committed(std::uint64_t id) {
  std::error_code ec;
  if (!fs::remove(dir_ / pending_name(id), ec) && ec) {
    errno = ec.value();
    dir_error(dir_, "cannot remove " + pending_name(id));
  }
  sync_directory(dir_);
}

std::vector<checkpoint_listing> checkpoint_store::list() const {
  std::vector<checkpoint_listing> out;
  for (std::uint64_t id : ids_in(dir_, "checkpoint-", ".ckpt")) {
    checkpoint_listing item;
    item.id = id;
    item.path = dir_ / manifest_name(id);
    std::error_code pending_ec;
    item.transaction_pending = fs::exists(dir_ / pending_name(id), pending_ec);
    try {
      item.state = decode_manifest(read_whole(item.path));
      item.valid = true;
      std::error_code ec;
      item.state.manifest_bytes = fs::file_size(item.path, ec);
      // Every segment it references must be there; their sizes add up to its size.
      auto count = [&](const std::string& kind, const std::string& name) {
        const auto bytes = fs::file_size(dir_ / name, ec);
        if (ec) {
          item.valid = false;
          item.problem = kind + " segment " + name + " is missing";
        } else {
          item.state.segment_bytes += bytes;
        }
        return item.valid;
      };
      for (const auto& seg : item.state.segments) {
        if (!count("dedup", segment_name(seg.id))) break;
      }
      for (const auto& g : item.state.group_segments) {
        if (!item.valid || !count("group", groups_name(g.id))) break;
      }
    } catch (const checkpoint_error& e) {
      item.problem = e.what();
    }
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace trove::host
