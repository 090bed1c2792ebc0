#include "bellhop/outbound/intake_queue.hpp"

#include <rapidjson/reader.h>

#include <climits>

namespace bellhop::gateway {
namespace {

// Reads `priority` and whether `handoff` is there among the top-level members of a JSON
// object, as normalize_outbound reads them (the first of a member given twice; null: absent).
struct probe_handler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, probe_handler> {
  static constexpr unsigned max_depth = 32;
  enum class member { other, priority, handoff };
  unsigned depth = 0;
  bool root_object = false;
  member next = member::other;  // the top-level member whose value comes next
  bool priority_seen = false, handoff_seen = false;
  int priority = 5;
  bool bad_priority = false, handoff = false;

  // A value at the top level of the object: the member it belongs to.
  bool value(bool null, std::optional<std::int64_t> integer) {
    if (depth == 1) {
      if (next == member::priority && !priority_seen) {
        priority_seen = true;
        if (!null) {
          bad_priority = !integer || *integer < INT_MIN || *integer > INT_MAX;
          if (!bad_priority) priority = static_cast<int>(*integer);
        }
      } else if (next == member::handoff && !handoff_seen) {
        handoff_seen = true;
        handoff = !null;
      }
      next = member::other;
    }
    return true;
  }
  bool Null() { return value(true, std::nullopt); }
  bool Bool(bool) { return value(false, std::nullopt); }
  bool Int(int i) { return value(false, i); }
  bool Uint(unsigned u) { return value(false, u); }
  bool Int64(std::int64_t) { return value(false, std::nullopt); }  // beyond an int
  bool Uint64(std::uint64_t) { return value(false, std::nullopt); }
  bool Double(double) { return value(false, std::nullopt); }
  bool String(const char*, rapidjson::SizeType, bool) { return value(false, std::nullopt); }
  bool start(bool object) {
    if (depth == 0) root_object = object;
    value(false, std::nullopt);
    return ++depth <= max_depth;
  }
  bool StartObject() { return start(true); }
  bool StartArray() { return start(false); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1) {
      const std::string_view k(s, n);
      next = k == "priority" ? member::priority : k == "handoff" ? member::handoff : member::other;
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

}  // namespace

intake_queue::place intake_queue::probe(std::string_view raw, std::size_t max_bytes) {
  if (raw.size() > max_bytes) return {};
  probe_handler h;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(raw.data(), raw.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  if (reader.Parse<rapidjson::kParseIterativeFlag>(in, h).IsError() || !h.root_object ||
      h.bad_priority || h.priority < 1 || h.priority > 10)
    return {0, h.handoff};
  return {h.priority, h.handoff};
}

void intake_queue::push(element e) {
  const auto where = probe(e.raw, max_element_bytes_);
  bytes_ += e.raw.size() + per_element_bytes;
  ++size_;
  if (segments_.empty() || segments_.back().barrier) segments_.emplace_back();
  auto& s = segments_.back();
  if (where.barrier) {
    s.barrier = std::move(e);
  } else {
    s.by_priority[static_cast<std::size_t>(where.priority)].push_back(std::move(e));
    ++s.size;
  }
}

std::vector<intake_queue::element> intake_queue::next(std::size_t n) {
  std::vector<element> out;
  out.reserve(std::min(n, size_));
  auto take = [&](element& e) {
    bytes_ -= e.raw.size() + per_element_bytes;
    --size_;
    out.push_back(std::move(e));
  };
  // One priority per batch (a barrier ends one): a reply filed ahead of a campaign goes in a
  // call of its own, of a few elements rather than file_batch, and costs a campaign at most one
  // call more per priority it spans.
  if (segments_.empty() || n == 0) return out;
  auto& s = segments_.front();
  for (auto& bucket : s.by_priority) {
    if (bucket.empty()) continue;
    while (out.size() < n && !bucket.empty()) {
      take(bucket.front());
      bucket.pop_front();
      --s.size;
    }
    return out;
  }
  // The segment is empty: its barrier, alone, ends it.
  if (s.barrier) take(*s.barrier);
  segments_.pop_front();
  return out;
}

}  // namespace bellhop::gateway
