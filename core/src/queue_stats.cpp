#include "bellhop/core/queue_stats.hpp"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include "bellhop/core/lua.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

const broker::script& stats_script() {
  static const broker::script s =
      broker::script::make("outbound_queue_stats", std::string(lua::outbound_queue_stats));
  return s;
}

// A reply of outbound_queue_stats.lua as the script returns it: anything else is Redis's or
// another writer's fault and fails the whole answer.
bool well_formed(const broker::reply& r) {
  if (!r.is_array() || r.elements().size() != 7) return false;
  const auto& e = r.elements();
  for (std::size_t i : {0, 1, 2, 3, 4, 6})
    if (!e[i].is_integer()) return false;
  return e[5].is_array();
}

void write_entry(json::writer& w, const std::string& channel, const broker::reply& r) {
  const auto& e = r.elements();
  w.StartObject();
  json::put(w, "channel", channel);
  const char* names[] = {"waiting", "active", "delayed", "dead"};
  for (std::size_t i = 0; i < 4; ++i) {
    w.Key(names[i]);
    w.Int64(e[i].integer());
  }
  w.Key("quiet");  // of `delayed`, those waiting for quiet hours to end
  w.Int64(e[6].integer());
  w.Key("paused");
  w.Bool(e[4].integer() == 1);
  w.Key("counters");
  w.StartObject();
  const auto& kv = e[5].elements();
  for (const char* counter : {"accepted", "sent", "failed", "retried", "deferred", "duplicates",
                              "invalid", "quiet_held"}) {
    std::int64_t v = 0;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
      if (kv[i].str() == counter) {  // a foreign non-number counts as 0, no throw
        const auto& t = kv[i + 1].str();
        std::from_chars(t.data(), t.data() + t.size(), v);
      }
    w.Key(counter);
    w.Int64(v);
  }
  w.EndObject();
  w.EndObject();
}

}  // namespace

void read_queue_stats(broker::broker& redis, const contract::key_space& keys,
                      const std::vector<std::string>& channels, boost::asio::any_io_executor ex,
                      std::function<void(std::optional<std::string>)> done) {
  if (channels.empty()) return done(std::string("[]"));
  struct gather {
    std::vector<std::pair<std::string, broker::reply>> got;
    std::size_t pending = 0;
    bool failed = false;
    std::function<void(std::optional<std::string>)> done;
  };
  auto g = std::make_shared<gather>();
  g->pending = channels.size();
  g->done = std::move(done);
  for (const std::string& ch : channels) {
    redis.eval(stats_script(),
               {keys.outbound(ch), keys.outbound_ready(ch), keys.outbound_delayed(ch),
                keys.outbound_dead(ch), keys.outbound_paused(ch), keys.outbound_stats(ch),
                keys.outbound_gateways(), keys.outbound_quiet(ch)},
               {keys.outbound_processing(ch, ""), keys.outbound_intake(ch, "")}, ex,
               [g, ch](boost::system::error_code ec, broker::reply r) {
                 if (ec || !well_formed(r)) g->failed = true;
                 g->got.emplace_back(ch, std::move(r));
                 if (--g->pending > 0) return;
                 if (g->failed) return g->done(std::nullopt);
                 std::sort(g->got.begin(), g->got.end(),
                           [](const auto& x, const auto& y) { return x.first < y.first; });
                 rapidjson::StringBuffer b;
                 json::writer w(b);
                 w.StartArray();
                 for (const auto& [name, rep] : g->got) write_entry(w, name, rep);
                 w.EndArray();
                 g->done(std::string(b.GetString(), b.GetSize()));
               });
  }
}

}  // namespace bellhop::gateway
