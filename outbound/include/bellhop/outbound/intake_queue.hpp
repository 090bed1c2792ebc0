#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bellhop::gateway {

// The elements one channel's intake took from outbound:<channel> and has not filed yet, in
// the order they are to be filed (docs/outbound.md, "Intake"): the lowest priority number
// first, and within a priority the order they were taken in (the list's), so a reply taken
// behind a campaign is filed with the next batch rather than after the campaign. Two kinds of
// element keep their place in the list's order instead:
//  - an element carrying an engine's handoff is a barrier: everything taken before it is
//    filed before it, everything taken after it after it (a handoff decides whether the
//    engine's later replies are held, and must not overtake or be overtaken by them);
//  - an element whose order cannot be read (not a JSON object, a priority out of range) goes
//    first: it is dead-lettered, and costs the batch nothing.
class intake_queue {
 public:
  struct element {
    std::uint64_t seq = 0;      // its number in this process's intake (outbound_take.lua)
    std::string raw;            // as taken
    std::int64_t taken_ms = 0;  // epoch ms: a delay_ms counts from here
    std::uint64_t list = 0;     // the intake list it was read from (its number; 0: the hash)
  };
  // Where an element goes in the filing order: its priority (1 to 10; 0: unreadable), and
  // whether it carries a handoff. Reads those two members only, with a bounded SAX pass
  // (at most max_bytes, 32 levels, no allocation per value), so every element's place is
  // known as it is taken; the element is parsed for good (normalize_outbound) when filed.
  struct place {
    int priority = 0;
    bool barrier = false;
  };
  static place probe(std::string_view raw, std::size_t max_bytes);

  explicit intake_queue(std::size_t max_bytes_per_element)
      : max_element_bytes_(max_bytes_per_element) {}

  void push(element e);
  // Up to n elements in filing order, taken out of the queue.
  std::vector<element> next(std::size_t n);

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // What the elements hold in memory, about: their text and a fixed cost each.
  std::size_t bytes() const { return bytes_; }

 private:
  static constexpr std::size_t per_element_bytes = 64;
  // The elements between two barriers, by priority (index 0: unreadable ones), then the
  // barrier that ends them (none for the last segment).
  struct segment {
    std::array<std::deque<element>, 11> by_priority;
    std::size_t size = 0;
    std::optional<element> barrier;
  };
  std::size_t max_element_bytes_;
  std::deque<segment> segments_;
  std::size_t size_ = 0, bytes_ = 0;
};

}  // namespace bellhop::gateway
