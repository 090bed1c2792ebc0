#include "bellhop/realtime/hub.hpp"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <charconv>
#include <list>
#include <map>
#include <unordered_map>
#include <vector>

#include "bellhop/contract/event.hpp"
#include "bellhop/contract/timestamp.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/server/frame_text.hpp"

namespace bellhop::realtime {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// "N-0" -> N.
std::optional<std::uint64_t> stream_seq(const std::string& id) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  if (ec != std::errc{} || ptr == id.data()) return std::nullopt;
  return v;
}

// The event payload of one XRANGE entry: [id, [field, value, ...]] with field "event".
const std::string* entry_payload(const broker::reply& entry) {
  const auto& e = entry.elements();
  if (!entry.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_array()) return nullptr;
  const auto& fields = e[1].elements();
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
    if (fields[i].str() == "event" && fields[i + 1].is_string()) return &fields[i + 1].str();
  return nullptr;
}

// The frame of an event read from Redis; null when its text is not UTF-8: the event then keeps
// its place in the seq order but reaches no dashboard.
frame admitted_event_frame(std::string_view payload, const contract::stored_event_view& event) {
  if (!server::frame_text_ok(payload, "a dashboard event")) return nullptr;
  return std::make_shared<const std::string>(contract::event_frame(event));
}

// `{"seq":N,...}` -> N: where an event that is unusable otherwise stays in the seq order.
std::optional<std::uint64_t> leading_seq(std::string_view payload) {
  constexpr std::string_view prefix = R"({"seq":)";
  if (payload.substr(0, prefix.size()) != prefix) return std::nullopt;
  const char* begin = payload.data() + prefix.size();
  const char* end = payload.data() + payload.size();
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc{} || ptr == begin || ptr == end || *ptr != ',') return std::nullopt;
  return v;
}

frame subscribed_frame(const std::string& property, std::uint64_t seq, bool recovered) {
  return std::make_shared<const std::string>(
      R"({"type":"subscribed","property_id":")" + property + R"(","seq":)" + std::to_string(seq) +
      R"(,"recovered":)" + (recovered ? "true" : "false") + "}");
}

}  // namespace

struct hub::impl : std::enable_shared_from_this<impl> {
  struct member {
    std::weak_ptr<subscriber> sub;
    const subscriber* key = nullptr;
    std::uint64_t next = 1;        // the next seq this member gets
    bool replaying = false;        // reading history for `since`
    bool answered = false;         // `subscribed` sent
    std::uint64_t replay_to = 0;   // history is read up to this seq, then live takes over
    std::uint64_t generation = 0;  // replies for an older subscription are ignored
    std::vector<std::pair<std::uint64_t, frame>> parked;  // live events during the replay
  };
  struct join_request {
    std::weak_ptr<subscriber> sub;
    const subscriber* key;
    std::optional<std::uint64_t> since;
  };
  struct property_state {
    std::string name;
    broker::broker::subscription_id subscription = 0;
    bool seq_known = false;
    std::uint64_t last = 0;                // highest seq delivered live
    std::map<std::uint64_t, frame> ahead;  // live events waiting for a gap to be filled
    bool filling = false;
    std::uint64_t fill_to = 0;
    std::list<member> members;
    std::vector<join_request> waiting;  // until the counter has been read
  };
  using state_ptr = std::shared_ptr<property_state>;

  impl(asio::any_io_executor ex, broker::broker& r, contract::key_space k, hub_options o)
      : strand(asio::make_strand(ex)), redis(r), keys(std::move(k)), options(o) {}

  asio::strand<asio::any_io_executor> strand;
  broker::broker& redis;
  const contract::key_space keys;
  const hub_options options;
  hub_stats stats;
  std::unordered_map<std::string, state_ptr> properties;
  std::uint64_t generations = 0;
  bool stopped = false;

  // ---- sessions ------------------------------------------------------------------------

  void subscribe(std::shared_ptr<subscriber> s, const std::string& property,
                 std::optional<std::uint64_t> since) {
    if (stopped) return;
    auto st = state_for(property);
    remove_member(*st, s.get());
    std::erase_if(st->waiting, [&](const join_request& j) { return j.key == s.get(); });
    if (!st->seq_known) {
      st->waiting.push_back({s, s.get(), since});
      return;
    }
    join(st, s, since);
  }

  void unsubscribe(const subscriber* s, const std::string& property) {
    auto it = properties.find(property);
    if (it == properties.end()) return;
    remove_member(*it->second, s);
    std::erase_if(it->second->waiting, [&](const join_request& j) { return j.key == s; });
    release_if_unused(it->second);
  }

  void unsubscribe_all(const subscriber* s) {
    std::vector<state_ptr> touched;
    for (auto& [name, st] : properties) touched.push_back(st);
    for (auto& st : touched) {
      remove_member(*st, s);
      std::erase_if(st->waiting, [&](const join_request& j) { return j.key == s; });
      release_if_unused(st);
    }
  }

  void stop() {
    stopped = true;
    for (auto& [name, st] : properties) redis.unsubscribe(st->subscription);
    properties.clear();
    stats.properties = 0;
  }

  state_ptr state_for(const std::string& property) {
    auto& st = properties[property];
    if (st) return st;
    st = std::make_shared<property_state>();
    st->name = property;
    std::weak_ptr<property_state> weak = st;
    auto self = shared_from_this();
    st->subscription = redis.subscribe(
        keys.property_channel(property), strand,
        [self, weak](const std::string&, std::shared_ptr<const std::string> payload) {
          if (auto s = weak.lock(); s && !self->stopped) self->on_message(s, *payload);
        },
        [self, weak](const std::string&) {
          if (auto s = weak.lock(); s && !self->stopped) self->read_counter(s);
        });
    ++stats.properties;
    return st;
  }

  static void remove_member(property_state& st, const subscriber* s) {
    st.members.remove_if([&](const member& m) { return m.key == s; });
  }

  void release_if_unused(const state_ptr& st) {
    if (!st->members.empty() || !st->waiting.empty()) return;
    redis.unsubscribe(st->subscription);
    properties.erase(st->name);
    --stats.properties;
  }

  void send(member& m, const frame& f) {
    if (!f) return;  // a payload that was not UTF-8
    if (auto s = m.sub.lock()) {
      s->deliver(f);
      ++stats.deliveries;
    }
  }

  void join(const state_ptr& st, const std::shared_ptr<subscriber>& s,
            std::optional<std::uint64_t> since) {
    member m;
    m.sub = s;
    m.key = s.get();
    m.generation = ++generations;
    const std::uint64_t now = st->last;
    if (!since || *since >= now) {
      // Nothing missed (or a since from the future: the counter went back after Redis lost
      // data, so the client's view cannot be continued).
      const bool recovered = !since || *since == now;
      if (!recovered) ++stats.not_recovered;
      m.next = now + 1;
      m.answered = true;
      send(m, subscribed_frame(st->name, now, recovered));
      st->members.push_back(std::move(m));
      return;
    }
    m.next = *since + 1;
    m.replaying = true;
    m.replay_to = now;
    st->members.push_back(std::move(m));
    replay(st, st->members.back().key, st->members.back().generation);
  }

  member* find_member(property_state& st, const subscriber* key, std::uint64_t generation) {
    for (auto& m : st.members)
      if (m.key == key && m.generation == generation) return &m;
    return nullptr;
  }

  // One page of history for a member replaying `since`; the next page follows when its queue
  // has room, then the parked live events.
  void replay(const state_ptr& st, const subscriber* key, std::uint64_t generation) {
    auto* m = find_member(*st, key, generation);
    if (!m) return;
    std::weak_ptr<property_state> weak = st;
    redis.post({"XRANGE", keys.property_events(st->name), std::to_string(m->next) + "-0",
                std::to_string(m->replay_to) + "-0", "COUNT", std::to_string(options.replay_page)},
               strand,
               [self = shared_from_this(), weak, key, generation](error_code ec, broker::reply r) {
                 auto st = weak.lock();
                 if (!st || self->stopped) return;
                 auto* m = self->find_member(*st, key, generation);
                 if (!m) return;
                 if (ec || !r.is_array()) {
                   self->redis_error("reading history for a dashboard's since", ec, r);
                   self->after(self->options.retry_delay, [self, weak, key, generation] {
                     if (auto s = weak.lock()) self->replay(s, key, generation);
                   });
                   return;
                 }
                 self->on_replay_page(st, *m, r.elements());
               });
  }

  void on_replay_page(const state_ptr& st, member& m, const std::vector<broker::reply>& entries) {
    if (!m.answered) {
      // Recovered only if history still starts at since+1 and is young enough.
      bool recovered = false;
      if (!entries.empty()) {
        const auto* payload = entry_payload(entries.front());
        const auto first = stream_seq(entries.front().elements()[0].str());
        const auto event = payload ? contract::parse_stored_event(*payload) : std::nullopt;
        const auto when = event ? contract::parse_rfc3339(event->envelope.ts) : std::nullopt;
        recovered = first && *first == m.next && when &&
                    std::chrono::system_clock::now() - *when <= options.history_max_age;
      }
      m.answered = true;
      send(m, subscribed_frame(st->name, m.replay_to, recovered));
      if (!recovered) {
        ++stats.not_recovered;
        m.next = m.replay_to + 1;
        finish_replay(m);
        return;
      }
    }
    for (const auto& entry : entries) {
      const auto* payload = entry_payload(entry);
      const auto n = stream_seq(entry.elements()[0].str());
      if (!payload || !n || *n < m.next) continue;
      const auto event = from_history(*payload, st->name, *n);
      if (!event) {
        m.next = *n + 1;
        continue;
      }
      send(m, admitted_event_frame(*payload, *event));
      ++stats.replayed;
      m.next = *n + 1;
    }
    if (m.next > m.replay_to || entries.size() < options.replay_page) {
      m.next = std::max(m.next, m.replay_to + 1);
      finish_replay(m);
      return;
    }
    continue_replay(st, m.key, m.generation);
  }

  void continue_replay(const state_ptr& st, const subscriber* key, std::uint64_t generation) {
    auto* m = find_member(*st, key, generation);
    if (!m) return;
    auto s = m->sub.lock();
    if (!s) return;
    std::weak_ptr<property_state> weak = st;
    if (s->queued_bytes() <= options.replay_pause_bytes) return replay(st, key, generation);
    after(std::chrono::milliseconds(20), [self = shared_from_this(), weak, key, generation] {
      if (auto st = weak.lock()) self->continue_replay(st, key, generation);
    });
  }

  void finish_replay(member& m) {
    m.replaying = false;
    for (auto& [seq, f] : m.parked) {
      if (seq < m.next) continue;
      send(m, f);
      m.next = seq + 1;
    }
    m.parked.clear();
    m.parked.shrink_to_fit();
  }

  // ---- Redis ---------------------------------------------------------------------------

  // After each (re)subscription: where the property's counter stands. The first time, that is
  // where live delivery starts; after a reconnect, everything above `last` was missed.
  void read_counter(const state_ptr& st) {
    std::weak_ptr<property_state> weak = st;
    redis.post({"GET", keys.property_seq(st->name)}, strand,
               [self = shared_from_this(), weak](error_code ec, broker::reply r) {
                 auto st = weak.lock();
                 if (!st || self->stopped) return;
                 // nil: no event yet. Anything but a whole number is an error, not a 0.
                 std::optional<std::uint64_t> value =
                     r.is_nil() ? std::optional<std::uint64_t>(0) : std::nullopt;
                 if (!ec && r.is_string()) value = stream_seq(r.str());
                 if (ec || !value || (r.is_string() && std::to_string(*value) != r.str())) {
                   self->redis_error("reading a property's event counter", ec, r);
                   self->after(self->options.retry_delay, [self, weak] {
                     if (auto s = weak.lock()) self->read_counter(s);
                   });
                   return;
                 }
                 self->on_counter(st, *value);
               });
  }

  void on_counter(const state_ptr& st, std::uint64_t value) {
    if (!st->seq_known) {
      st->seq_known = true;
      st->last = value;
      auto waiting = std::move(st->waiting);
      st->waiting.clear();
      for (auto& j : waiting)
        if (auto s = j.sub.lock()) join(st, s, j.since);
      advance(st);
      release_if_unused(st);
      return;
    }
    if (value > st->last) return fill(st, value);
    if (value < st->last) {
      // The counter went back: Redis lost data (restarted without persistence). What the
      // dashboards have cannot be continued; tell them to reload, then go on from here.
      spdlog::warn(
          "realtime: the event counter of property {} went back from {} to {}; "
          "dashboards are told to reload (recovered:false)",
          st->name, st->last, value);
      st->last = value;
      st->ahead.clear();
      for (auto& m : st->members) {
        m.next = value + 1;
        m.replaying = false;
        m.parked.clear();
        ++stats.not_recovered;
        send(m, subscribed_frame(st->name, value, false));
      }
      advance(st);
    }
  }

  void on_message(const state_ptr& st, const std::string& payload) {
    if (!payload.empty() && payload.front() == '~') return on_ephemeral(*st, payload);
    const auto event = contract::parse_stored_event(payload);
    const auto seq = event ? std::optional(event->seq) : leading_seq(payload);
    if (!seq) {
      spdlog::debug("realtime: ignoring a message without seq on {}", st->name);
      return;
    }
    ++stats.events;
    if (st->seq_known && *seq <= st->last) return;  // already delivered (e.g. by a fill)
    // Unusable but numbered: it keeps its place in the seq order and reaches no dashboard.
    frame f;
    if (!event || event->envelope.property_id != st->name)
      poisoned(*seq, st->name, "invalid");
    else
      f = admitted_event_frame(payload, *event);
    if (st->seq_known && *seq == st->last + 1 && st->ahead.empty())
      return deliver_live(*st, *seq, f);
    st->ahead.emplace(*seq, std::move(f));
    if (st->seq_known) advance(st);
  }

  void on_ephemeral(property_state& st, const std::string& payload) {
    const auto newline = payload.find('\n');
    if (newline == std::string::npos) return;
    const std::string_view origin(payload.data() + 1, newline - 1);
    if (!server::frame_text_ok(std::string_view(payload).substr(newline + 1),
                       "a dashboard's ephemeral frame"))
      return;
    auto f = std::make_shared<const std::string>(payload.substr(newline + 1));
    for (auto& m : st.members) {
      auto s = m.sub.lock();
      if (!s || s->session_id() == origin) continue;
      s->deliver(f);
      ++stats.deliveries;
    }
  }

  void deliver_live(property_state& st, std::uint64_t seq, const frame& f) {
    st.last = seq;
    for (auto& m : st.members) {
      if (m.replaying) {
        m.parked.emplace_back(seq, f);
      } else if (seq >= m.next) {
        send(m, f);
        m.next = seq + 1;
      }
    }
  }

  // Delivers parked live events that are next in line; a hole before them is read from history.
  void advance(const state_ptr& st) {
    auto& ahead = st->ahead;
    while (!ahead.empty() && ahead.begin()->first <= st->last) ahead.erase(ahead.begin());
    while (!ahead.empty() && ahead.begin()->first == st->last + 1) {
      deliver_live(*st, ahead.begin()->first, ahead.begin()->second);
      ahead.erase(ahead.begin());
    }
    if (!ahead.empty() && !st->filling) fill(st, ahead.begin()->first - 1);
  }

  // Reads seqs last+1 .. to from the property's history and delivers them in order.
  void fill(const state_ptr& st, std::uint64_t to) {
    if (st->filling) {
      st->fill_to = std::max(st->fill_to, to);
      return;
    }
    st->filling = true;
    st->fill_to = to;
    std::weak_ptr<property_state> weak = st;
    redis.post({"XRANGE", keys.property_events(st->name), std::to_string(st->last + 1) + "-0",
                std::to_string(to) + "-0", "COUNT", std::to_string(options.replay_page)},
               strand, [self = shared_from_this(), weak, to](error_code ec, broker::reply r) {
                 auto st = weak.lock();
                 if (!st || self->stopped) return;
                 st->filling = false;
                 if (ec || !r.is_array()) {
                   self->redis_error("reading missed events from history", ec, r);
                   self->after(self->options.retry_delay, [self, weak] {
                     if (auto s = weak.lock()) {
                       if (s->fill_to > s->last) self->fill(s, s->fill_to);
                     }
                   });
                   return;
                 }
                 self->on_fill(st, to, r.elements());
               });
  }

  void on_fill(const state_ptr& st, std::uint64_t to, const std::vector<broker::reply>& entries) {
    for (const auto& entry : entries) {
      const auto* payload = entry_payload(entry);
      const auto n = stream_seq(entry.elements()[0].str());
      if (!payload || !n || *n <= st->last || *n > to) continue;
      const auto event = from_history(*payload, st->name, *n);
      if (!event) continue;
      if (*n > st->last + 1) stats.gaps_unrecoverable += *n - st->last - 1;
      ++stats.gaps_filled;
      deliver_live(*st, *n, admitted_event_frame(*payload, *event));
    }
    const std::uint64_t target = std::max(to, st->fill_to);
    if (entries.size() >= options.replay_page && st->last < target) return fill(st, target);
    if (st->last < to) {
      // Not in history any more (trimmed) or never written: skip, so live delivery goes on.
      stats.gaps_unrecoverable += to - st->last;
      spdlog::warn("realtime: events {}..{} of property {} are not in its history; skipped",
                   st->last + 1, to, st->name);
      st->last = to;
    }
    if (st->fill_to > st->last) return fill(st, st->fill_to);
    advance(st);
  }

  // A history entry that can go to dashboards: one JSON object, bounded, and an event of this
  // property under its own seq, in the layout Bellhop writes (contract::stored_event). Poison
  // is reported and skipped.
  std::optional<contract::stored_event_view> from_history(const std::string& payload,
                                                          const std::string& property,
                                                          std::uint64_t seq) {
    rapidjson::Document d;
    const auto parsed = json::parse(payload, d, {.max_bytes = 1 << 20, .max_depth = 32});
    if (!parsed || !d.IsObject() || payload.find('\0') != std::string::npos) {
      poisoned(seq, property, parsed ? "not_object" : json::to_string(parsed.code));
      return std::nullopt;
    }
    auto event = contract::parse_stored_event(payload);
    if (!event || event->seq != seq || event->envelope.property_id != property) {
      poisoned(seq, property, "invalid");
      return std::nullopt;
    }
    return event;
  }

  // An event that reaches no dashboard: on_poison, and a warn line at most every 30 s.
  void poisoned(std::uint64_t seq, const std::string& property, std::string_view reason) {
    if (options.on_poison) options.on_poison(reason);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_poison_warning >= std::chrono::seconds(30)) {
      last_poison_warning = now;
      spdlog::warn("realtime: event {} of property {} is unusable ({}); skipped", seq, property,
                   reason);
    }
  }

  void redis_error(std::string_view what, error_code ec, const broker::reply& r) {
    ++stats.redis_errors;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning < std::chrono::seconds(30)) return;
    last_warning = now;
    spdlog::warn("realtime: {} failed: {}; retrying", what,
                 r.is_error() ? r.str()
                 : ec         ? ec.message()
                              : "unexpected reply");
  }
  std::chrono::steady_clock::time_point last_warning{};
  std::chrono::steady_clock::time_point last_poison_warning{};

  template <class F>
  void after(std::chrono::milliseconds delay, F f) {
    auto timer = std::make_shared<asio::steady_timer>(strand, delay);
    timer->async_wait([timer, f = std::move(f), self = shared_from_this()](error_code ec) {
      if (!ec && !self->stopped) f();
    });
  }
};

hub::hub(asio::any_io_executor ex, broker::broker& redis, contract::key_space keys,
         hub_options options)
    : impl_(std::make_shared<impl>(std::move(ex), redis, std::move(keys), options)) {}

hub::~hub() {
  stop();
}

void hub::subscribe(std::shared_ptr<subscriber> s, std::string property,
                    std::optional<std::uint64_t> since) {
  asio::post(impl_->strand, [i = impl_, s = std::move(s), p = std::move(property), since] {
    i->subscribe(s, p, since);
  });
}

void hub::unsubscribe(const subscriber* s, std::string property) {
  asio::post(impl_->strand, [i = impl_, s, p = std::move(property)] { i->unsubscribe(s, p); });
}

void hub::unsubscribe_all(const subscriber* s) {
  asio::post(impl_->strand, [i = impl_, s] { i->unsubscribe_all(s); });
}

void hub::publish_ephemeral(std::string property, const std::string& origin_session,
                            std::string frame_json) {
  std::string payload = "~" + origin_session + "\n" + frame_json;
  impl_->redis.post({"PUBLISH", impl_->keys.property_channel(property), std::move(payload)},
                    impl_->strand, [](error_code, broker::reply) {});
}

void hub::stop() {
  asio::post(impl_->strand, [i = impl_] { i->stop(); });
}

const hub_stats& hub::stats() const noexcept {
  return impl_->stats;
}

}  // namespace bellhop::realtime
