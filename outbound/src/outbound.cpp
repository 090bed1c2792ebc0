#include "bellhop/outbound/outbound.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <charconv>
#include <functional>
#include <map>
#include <optional>
#include <random>

#include "bellhop/broker/backoff.hpp"
#include "bellhop/channels/message_template.hpp"
#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/core/account_health.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/core/quiet_hours.hpp"
#include "bellhop/core/rate_limits.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/outbound/intake_queue.hpp"
#include "bellhop/outbound/lua.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using json::put;
using json::put_or_null;
using json::writer;

using filed = normalized_outbound;

// The message as its conversation shows it (docs/realtime.md): the data of its message.created
// event, and of its message.status event when it is held while staff have the conversation
// (the script puts status and reason first): the text, so dashboards can show it as a
// suggestion. The conversation is the effective one (named, or derived for the guest).
std::string conversation_entry(const normalized_outbound& f, std::string_view conversation) {
  const auto& m = f.msg;
  rapidjson::StringBuffer b(nullptr, m.text.size() + m.attachments_json.size() + 384);
  writer w(b);
  w.StartObject();
  put(w, "id", m.id);
  put(w, "property_id", m.property_id);
  put(w, "conversation_id", conversation);
  put(w, "channel", m.channel);
  put(w, "to", m.to);
  put(w, "text", m.text);
  w.Key("attachments");
  w.RawValue(m.attachments_json.data(), m.attachments_json.size(), rapidjson::kArrayType);
  if (m.template_msg) {
    w.Key("template");
    channels::write_template(w, *m.template_msg);
  }
  put(w, "source", f.source);
  put(w, "created_at", f.created_at);
  put(w, "direction", "outbound");
  w.EndObject();
  return {b.GetString(), b.GetSize()};
}

}  // namespace

class outbound_service::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(asio::any_io_executor ex, broker::broker& redis, const contract::key_space& keys,
       const outbound_options& options, rate_limits* limits, std::vector<outbound_channel> channels,
       metrics_registry& metrics)
      : strand_(asio::make_strand(ex)),
        redis_(redis),
        keys_(keys),
        options_(options),
        limits_(limits),
        gateway_id_(make_gateway_id()),
        heartbeat_timer_(strand_),
        accept_(broker::script::make("outbound_accept", std::string(lua::outbound_accept))),
        take_(broker::script::make("outbound_take", std::string(lua::outbound_take))),
        claim_(broker::script::make("outbound_claim", std::string(lua::outbound_claim))),
        finish_(broker::script::make("outbound_finish", std::string(lua::outbound_finish))),
        recover_(broker::script::make("outbound_recover", std::string(lua::outbound_recover))),
        sends_(metrics.add_counter("bellhop_outbound_sends_total",
                                   "Outbound send attempts by channel and result (sent, "
                                   "transient, rate_limited, recipient_limited, permanent, "
                                   "opted_out), messages deferred by a rate limit (deferred), bulk "
                                   "messages held for quiet hours (quiet_hours), and messages the "
                                   "channel refused before any call (refused: WhatsApp's service "
                                   "window).",
                                   {"channel", "result"})),
        errors_(metrics
                    .add_counter("bellhop_outbound_errors_total",
                                 "Failed Redis operations of the outbound sender (retried).")
                    .labels({})),
        poison_(poison_metric(metrics)) {
    for (auto& ch : channels) {
      auto l = std::make_shared<lane>(strand_);
      l->queue = keys.outbound(ch.name);
      l->processing = keys.outbound_processing(ch.name, gateway_id_);
      l->intake = keys.outbound_intake(ch.name, gateway_id_);
      l->calls = keys.outbound_calls(ch.name, gateway_id_);
      l->ready = keys.outbound_ready(ch.name);
      l->delayed = keys.outbound_delayed(ch.name);
      l->dead = keys.outbound_dead(ch.name);
      l->paused = keys.outbound_paused(ch.name);
      l->stats = keys.outbound_stats(ch.name);
      l->arrivals = keys.outbound_arrivals(ch.name);
      l->quiet = keys.outbound_quiet(ch.name);
      l->ch = std::move(ch);
      // The claim reads the conversation of each message it takes only when the answer can
      // matter: the service window, or a property with several accounts here (with one, the
      // message goes out from it whichever the guest wrote to: pick_account).
      bool several = false;
      for (std::size_t i = 0; i < l->ch.accounts.size() && !several; ++i)
        for (std::size_t j = i + 1; j < l->ch.accounts.size() && !several; ++j)
          several = l->ch.accounts[i].property_id == l->ch.accounts[j].property_id;
      if (l->ch.reads_last_inbound || several) l->claim_reads_conversation = keys.conversation("");
      l->sent = &sends_.labels({l->ch.name, "sent"});
      lanes_.push_back(std::move(l));
    }
  }

  const std::string& gateway_id() const { return gateway_id_; }

  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->stopped_ || self->lanes_.empty()) return;  // no channel to send on
      self->heartbeat();
      for (auto& l : self->lanes_) {
        self->drain(l);
        self->wake(l);
      }
    });
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] {
      self->heartbeat_timer_.cancel();
      for (auto& l : self->lanes_) {
        l->due_timer.cancel();
        l->intake_timer.cancel();
      }
    });
  }

 private:
  // One send's outcome for outbound_finish.lua: its six keys and fifteen arguments, in the
  // script's order.
  struct outcome {
    std::array<std::string, 6> keys;
    std::array<std::string, 15> args;
  };

  struct lane {
    explicit lane(asio::strand<asio::any_io_executor>& s) : due_timer(s), intake_timer(s) {}
    outbound_channel ch;
    std::string queue, processing, ready, delayed, dead, paused, stats, arrivals, quiet;
    std::string intake;  // this process's intake hash (outbound_take.lua)
    // The marks of this process's claims and recorded batches (outbound:<channel>:calls:<gw>):
    // each call is numbered; `claim_unsure` is the first claim whose answer was lost since the
    // last one answered (0: none), whose messages the next claim hands back.
    std::string calls;
    std::int64_t claims = 0, finishes = 0, claim_unsure = 0;
    int in_flight = 0;   // sends under way: taken, their outcome not known yet
    int unrecorded = 0;  // outcomes known, not recorded yet (their messages still in processing)
    bool claiming = false;
    // The intake: elements taken and not filed yet, the next take's number, accept calls in
    // flight, takes coming back full, a take waiting for room.
    intake_queue taken{max_outbound_element_bytes};
    std::uint64_t next_seq = 1;
    // The intake list being read (a queue taken whole, outbound_take.lua): its number, its
    // length, and how many of its elements were read, from its oldest end.
    struct intake_list {
      std::uint64_t number = 0;
      std::int64_t length = 0, read = 0;
    };
    std::optional<intake_list> reading;
    int filing = 0;
    bool taking_more = false, waiting_for_room = false;
    std::chrono::steady_clock::time_point blocked_until{};  // a channel-wide limit said so
    // With several accounts: until when (epoch ms) each account's sender limit holds its
    // messages back.
    std::map<std::string, std::int64_t> account_blocked;
    asio::steady_timer due_timer, intake_timer;
    // Outcomes of sends waiting to be recorded (outbound_finish.lua, a batch per call), and
    // whether a batch is being recorded or a recording is posted: one batch at a time, the
    // outcomes that arrive meanwhile go together in the next.
    std::vector<outcome> outcomes;
    bool recording = false, record_posted = false;
    std::string claim_reads_conversation;  // the claim's ARGV[7] ('' = it reads none)
    counter* sent = nullptr;               // bellhop_outbound_sends_total{channel,"sent"}
  };
  using lane_ptr = std::shared_ptr<lane>;

  static std::string make_gateway_id() {
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    std::string id = host;
    for (auto& c : id)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
    return id + "-" + std::to_string(::getpid()) + "-" +
           contract::make_message_id(std::chrono::system_clock::now()).substr(16);
  }

  // Whether a failed script call may not have happened and is worth trying again: the
  // connection was lost or timed out, or Redis answered that it cannot run it now.
  static bool transient(error_code ec, const broker::reply& r) {
    if (ec) return true;
    if (!r.is_error()) return false;
    for (std::string_view busy : {"LOADING", "BUSY", "OOM", "TRYAGAIN", "MASTERDOWN", "READONLY"})
      if (std::string_view(r.str()).substr(0, busy.size()) == busy) return true;
    return false;
  }

  // Runs a script that moves an element out of this process's processing list (filing,
  // dead-lettering, ending a send) until Redis has run it: an element whose outcome was not
  // recorded would otherwise sit in the list of a process that is alive, where nothing ever
  // recovers it (docs/outbound.md). Each script takes the element off the list first, so a
  // second run after a lost reply changes nothing. Gives up only when the process stops;
  // the element then goes back to the queue by the recovery of stopped processes.
  void eval_until_done(const lane_ptr& l, const broker::script& script,
                       std::vector<std::string> keys, std::vector<std::string> args,
                       const char* what, std::function<void(error_code, broker::reply)> done,
                       int attempt = 0) {
    auto keys_copy = keys;
    auto args_copy = args;
    redis_.eval(
        script, std::move(keys), std::move(args), strand_,
        [self = shared_from_this(), l, &script, keys = std::move(keys_copy),
         args = std::move(args_copy), what, done = std::move(done),
         attempt](error_code ec, broker::reply r) mutable {
          if (!transient(ec, r) || self->stopped_) return done(ec, std::move(r));
          self->redis_error(what, ec, r);
          auto timer = std::make_shared<asio::steady_timer>(self->strand_);
          timer->expires_after(milliseconds(std::min(5000, 100 << std::min(attempt, 6))));
          timer->async_wait([self, l, &script, keys = std::move(keys), args = std::move(args), what,
                             done = std::move(done), attempt, timer](error_code wait_ec) mutable {
            if (wait_ec || self->stopped_) return done(asio::error::operation_aborted, {});
            self->eval_until_done(l, script, std::move(keys), std::move(args), what,
                                  std::move(done), attempt + 1);
          });
        });
  }

  void redis_error(const char* what, error_code ec, const broker::reply& r) {
    errors_.inc();
    const auto now = std::chrono::steady_clock::now();
    if (now - last_error_log_ < std::chrono::seconds(10)) return;
    last_error_log_ = now;
    spdlog::warn("outbound: {} failed: {}", what, ec ? ec.message() : r.to_string());
  }

  // --- heartbeat and recovery of processes that died -----------------------------------
  void heartbeat() {
    if (stopped_) return;
    const auto now = now_ms();
    redis_.post({"ZADD", keys_.outbound_gateways(),
                 std::to_string(now + options_.visibility_timeout_ms), gateway_id_},
                strand_, [](error_code, broker::reply) {});
    std::vector<std::string> args = {std::to_string(now), keys_.prefix()};
    for (auto& l : lanes_) args.push_back(l->ch.name);
    redis_.eval(recover_, {keys_.outbound_gateways()}, std::move(args), strand_,
                [self = shared_from_this()](error_code ec, broker::reply r) {
                  if (ec || !r.is_integer()) return self->redis_error("recovery", ec, r);
                  if (r.integer() > 0) {
                    spdlog::info("outbound: {} in-flight sends of stopped processes back in the "
                                 "queues",
                                 r.integer());
                    for (auto& l : self->lanes_) self->wake(l);
                  }
                });
    heartbeat_timer_.expires_after(
        milliseconds(std::min(1000, options_.visibility_timeout_ms / 3)));
    heartbeat_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->heartbeat();
    });
  }

  // --- intake: outbound:<channel> -> intake hash or list -> ready (by priority) ---------
  // docs/outbound.md, "Intake". Two loops per lane on the strand: drain() takes up to
  // take_batch elements per call (outbound_take.lua), or a longer queue whole and reads it
  // (read_list), while there is more and memory allows, intake() waits for the queue when it
  // is empty, and file() files the elements taken, a batch per accept call
  // (outbound_accept.lua), in intake_queue's order.

  // Elements per take call into the hash (about 1 ms of Redis per thousand, a few hundred KB),
  // the longest queue taken so (a longer one, up to max_taken, is taken whole), and per read of
  // an intake list.
  static constexpr std::size_t take_batch = 2000;
  // Elements per accept call (a script call of a few ms). While an intake list is being read,
  // or takes come back full, and memory allows, the intake reads and takes before it files: a
  // reply further down the list is reached at the pace of the reads (many times the filing's),
  // then filed first.
  static constexpr std::size_t file_batch = 200;
  // Accept calls in flight per lane: the next batch is written while Redis runs one.
  static constexpr int max_filing = 2;
  // Elements taken and not filed yet, per lane: at most this many, and this much memory
  // (intake_queue::bytes) before the intake stops taking until some are filed; and the
  // longest queue taken whole (its filed elements stay in Redis until all of it is filed).
  static constexpr std::size_t max_taken = 100000;
  static constexpr std::size_t max_taken_bytes = 64u << 20;

  std::size_t intake_room(const lane& l) const {
    if (l.taken.size() >= max_taken || l.taken.bytes() >= max_taken_bytes) return 0;
    return std::min(take_batch, max_taken - l.taken.size());
  }

  // Waits (on the blocking connection) until outbound:<channel> has an element, without taking
  // it: BLMOVE of the list onto itself leaves it as it was. Then drains.
  void intake(const lane_ptr& l) {
    if (stopped_) return;
    l->taking_more = false;
    redis_.post_blocking({"BLMOVE", l->queue, l->queue, "RIGHT", "RIGHT", "1"}, milliseconds(3000),
                         strand_, [self = shared_from_this(), l](error_code ec, broker::reply r) {
                           if (self->stopped_) return;
                           if (ec || r.is_error()) {
                             self->redis_error("waiting for the outbound queue", ec, r);
                             return self->retry_intake(
                                 l, [](impl& s, const lane_ptr& l) { s.intake(l); });
                           }
                           if (!r.is_string()) return self->intake(l);
                           self->drain(l);
                         });
  }

  template <typename F>
  void retry_intake(const lane_ptr& l, F again) {
    l->taking_more = false;  // what was taken is filed meanwhile
    file(l);
    l->intake_timer.expires_after(milliseconds(500));
    l->intake_timer.async_wait([self = shared_from_this(), l, again](error_code e) {
      if (!e && !self->stopped_) again(*self, l);
    });
  }

  // Takes up to a batch into this process's intake hash, or the whole queue when it holds
  // more (an intake list, then read a batch at a time), and goes on while batches come back
  // full and there is room; files as it goes.
  void drain(const lane_ptr& l) {
    if (stopped_) return;
    const auto room = intake_room(*l);
    if (room == 0) {  // file() drains again once it made room
      l->waiting_for_room = true;
      return;
    }
    if (l->reading) return read_list(l, room);
    const auto first = l->next_seq;
    // Numbers are never reused, even when the reply is lost: a take that ran unseen keeps its
    // own, and adopt() finds its elements by them.
    l->next_seq += room;
    redis_.eval(take_, {l->queue, l->intake},
                {std::to_string(room), std::to_string(first), std::to_string(take_batch),
                 std::to_string(max_taken)},
                strand_,
                [self = shared_from_this(), l, first, room](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec) {  // it may have run: its elements, if any, are in the intake
                    self->redis_error("taking from the outbound queue", ec, r);
                    return self->adopt(l, first, room);
                  }
                  if (r.is_integer() && r.integer() > 0) {  // the queue, taken whole
                    self->start_reading(l, first, r.integer());
                    return self->drain(l);
                  }
                  if (!r.is_array()) {
                    self->redis_error("taking from the outbound queue", ec, r);
                    return self->retry_intake(l, [](impl& s, const lane_ptr& l) { s.drain(l); });
                  }
                  const auto taken_ms = now_ms();
                  const auto& e = r.elements();
                  for (std::size_t i = 0; i < e.size(); ++i)
                    if (e[i].is_string()) l->taken.push({first + i, e[i].str(), taken_ms});
                  l->next_seq = first + e.size();  // no other take ran meanwhile
                  l->taking_more = e.size() == room;
                  self->file(l);
                  if (e.size() == room) return self->drain(l);
                  self->intake(l);
                });
  }

  std::string list_key(const lane& l, std::uint64_t number) const {
    return l.intake + ":" + std::to_string(number);
  }

  void start_reading(const lane_ptr& l, std::uint64_t number, std::int64_t length) {
    l->reading = lane::intake_list{number, length, 0};
    l->next_seq = std::max(l->next_seq, number + static_cast<std::uint64_t>(length));
    l->taking_more = true;
  }

  // Reads the next batch of the intake list from its oldest end (LRANGE: it stays in Redis
  // until each element is filed), then drains on: the rest of the list, then the queue.
  void read_list(const lane_ptr& l, std::size_t room) {
    const auto at = *l->reading;
    const auto n = std::min<std::int64_t>(static_cast<std::int64_t>(room), at.length - at.read);
    redis_.post({"LRANGE", list_key(*l, at.number), std::to_string(-(at.read + n)),
                 std::to_string(-(at.read + 1))},
                strand_, [self = shared_from_this(), l, at, n](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec || !r.is_array()) {
                    self->redis_error("reading an intake list", ec, r);
                    return self->retry_intake(l, [](impl& s, const lane_ptr& l) { s.drain(l); });
                  }
                  const auto taken_ms = now_ms();
                  const auto& e = r.elements();
                  // The newest first: the last is the element at index `read`.
                  for (std::size_t j = e.size(); j-- > 0;) {
                    const auto index = static_cast<std::uint64_t>(at.read) + (e.size() - 1 - j);
                    if (e[j].is_string())
                      l->taken.push({at.number + index, e[j].str(), taken_ms, at.number});
                  }
                  const auto read = at.read + static_cast<std::int64_t>(e.size());
                  // Shorter than asked: the list went (this process was taken for dead, and
                  // another handed it back).
                  if (read >= at.length || static_cast<std::int64_t>(e.size()) < n)
                    l->reading.reset();
                  else
                    l->reading->read = read;
                  self->file(l);
                  self->drain(l);
                });
  }

  // After a take whose answer was lost: the queue it took whole, if it did, is read as any
  // intake list; else the elements it took (numbered first .. first + n - 1) are read back
  // from the intake hash, until Redis answers, so none waits there unfiled.
  void adopt(const lane_ptr& l, std::uint64_t first, std::size_t n) {
    // The length the take recorded for its list (<intake>:lists), if it made one.
    redis_.post({"HGET", l->intake + ":lists", std::to_string(first)}, strand_,
                [self = shared_from_this(), l, first, n](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec || !(r.is_string() || r.is_nil())) {
                    self->redis_error("reading back a take", ec, r);
                    return self->retry_intake(
                        l, [first, n](impl& s, const lane_ptr& l) { s.adopt(l, first, n); });
                  }
                  std::int64_t length = 0;
                  if (r.is_string()) {
                    const auto& v = r.str();
                    std::from_chars(v.data(), v.data() + v.size(), length);
                  }
                  if (length > 0) {
                    self->start_reading(l, first, length);
                    return self->drain(l);
                  }
                  self->adopt_hashed(l, first, n);
                });
  }

  void adopt_hashed(const lane_ptr& l, std::uint64_t first, std::size_t n) {
    broker::command cmd = {"HMGET", l->intake};
    for (std::size_t i = 0; i < n; ++i) cmd.push_back(std::to_string(first + i));
    redis_.post(std::move(cmd), strand_,
                [self = shared_from_this(), l, first, n](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec || !r.is_array()) {
                    self->redis_error("reading back a take", ec, r);
                    return self->retry_intake(
                        l, [first, n](impl& s, const lane_ptr& l) { s.adopt(l, first, n); });
                  }
                  const auto taken_ms = now_ms();
                  const auto& e = r.elements();
                  for (std::size_t i = 0; i < e.size(); ++i)
                    if (e[i].is_string()) l->taken.push({first + i, e[i].str(), taken_ms});
                  self->file(l);
                  self->drain(l);
                });
  }

  // Files the next batch of the elements taken, unless max_filing batches are being filed.
  void file(const lane_ptr& l) {
    if (stopped_ || l->filing >= max_filing || l->taken.empty()) return;
    if (l->taking_more && intake_room(*l) > 0) return;  // drain() files when it is done
    auto batch = l->taken.next(file_batch);
    const auto now = std::chrono::system_clock::now();
    const auto now_epoch_ms =
        std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
    std::vector<std::string> keys = {l->intake, l->ready,   l->arrivals,
                                     l->stats,  l->delayed, l->dead};
    std::vector<std::string> args = {std::to_string(options_.idempotency_ttl_s),
                                     std::to_string(options_.message_ttl_s),
                                     keys_.message(""),
                                     std::to_string(options_.history_max),
                                     std::to_string(options_.conversation_ttl_s),
                                     std::to_string(options_.recent_messages),
                                     l->ch.name,
                                     contract::format_timestamp(now),
                                     std::to_string(now_epoch_ms)};
    keys.reserve(keys.size() + batch.size() * 10);
    args.reserve(args.size() + batch.size() * 20);
    // What the answers are logged with: each element's id and conversation.
    auto filed_as = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    filed_as->reserve(batch.size());
    for (auto& e : batch) {
      auto [id, conversation] = add_to_batch(*l, e, keys, args);
      filed_as->emplace_back(std::move(id), std::move(conversation));
    }
    ++l->filing;
    eval_until_done(
        l, accept_, std::move(keys), std::move(args), "filing messages",
        [self = shared_from_this(), l, filed_as](error_code ec, broker::reply r) {
          --l->filing;
          if (self->stopped_) return;
          if (ec || r.is_error()) {
            self->redis_error("filing messages", ec, r);
          } else if (r.is_array()) {
            const auto& e = r.elements();
            for (std::size_t i = 0; i + 1 < e.size() && i / 2 < filed_as->size(); i += 2) {
              if (!e[i].is_integer()) continue;
              const auto& [id, conversation] = (*filed_as)[i / 2];
              const auto code = e[i].integer();
              if (code == -2)
                spdlog::warn("outbound: element refused: its id {} belongs to another message", id);
              if (code == -4)
                spdlog::warn("outbound: element {} dead-lettered: Redis could not file it: {}", id,
                             e[i + 1].is_string() ? e[i + 1].str() : "");
              if (code == 2 && e[i + 1].is_integer() && e[i + 1].integer() == 0)
                spdlog::warn(
                    "outbound: handoff of conversation {} dropped: no such conversation "
                    "in the element's property",
                    conversation);
            }
          }
          self->wake(l);
          self->file(l);
          if (l->waiting_for_room && self->intake_room(*l) > 0) {
            l->waiting_for_room = false;
            self->drain(l);
          }
        });
    file(l);  // the next batch, while Redis runs this one
  }

  // Where an accept call finds an element (outbound_accept.lua): its number in the intake
  // hash, or "<list>+<index>" in an intake list.
  static std::string intake_ref(const intake_queue::element& e) {
    if (e.list == 0) return std::to_string(e.seq);
    return std::to_string(e.list) + "+" + std::to_string(e.seq - e.list);
  }

  // One element's part of an accept call (outbound_accept.lua): a dead letter with its reason,
  // or the message with its keys. Returns its id and conversation ("" for a dead letter).
  std::pair<std::string, std::string> add_to_batch(const lane& l, const intake_queue::element& e,
                                                   std::vector<std::string>& keys,
                                                   std::vector<std::string>& args) {
    const auto& raw = e.raw;
    filed f;
    auto error = normalize_outbound(raw, l.ch.name, f);
    if (!error.empty()) {
      report_poison(poison_, "outbound", l.queue, f.refused, error);
    } else if (std::string why;
               !pick_account(l.ch.name, l.ch.accounts, f.msg.property_id, f.msg.account, "", why)) {
      // A property without an account here, or an account not its own: never sent from
      // another property's number or address (docs/outbound.md).
      error = std::move(why);
      spdlog::warn("outbound: {} element refused: {}", l.queue, error);
    }
    if (!error.empty()) {
      rapidjson::StringBuffer b;
      writer w(b);
      w.StartObject();
      put(w, "reason", "invalid: " + error);
      put(w, "element", valid_utf8(raw));
      put(w, "failed_at", contract::format_timestamp(std::chrono::system_clock::now()));
      w.EndObject();
      args.insert(args.end(),
                  {"dead", intake_ref(e), raw, std::string(b.GetString(), b.GetSize())});
      return {};
    }
    const auto& m = f.msg;
    const bool idempotent = !f.idempotency_key.empty();
    // The conversation whose mode decides whether an engine's reply is held: the one named,
    // or the one Bellhop derives for the guest (core/src/inbound_message.cpp does the same).
    std::string conversation = conversation_of(m);
    keys.insert(
        keys.end(),
        {keys_.message(m.id),
         idempotent ? keys_.outbound_idempotency(m.property_id, f.idempotency_key)
                    : keys_.message(m.id),
         idempotent ? keys_.legacy_outbound_idempotency(f.idempotency_key) : keys_.message(m.id),
         keys_.conversation(conversation), keys_.property_unread(m.property_id),
         keys_.property_seq(m.property_id), keys_.property_events(m.property_id),
         keys_.property_escalation(m.property_id),
         keys_.property_conversations_index(m.property_id),
         keys_.conversation_messages(conversation)});
    args.insert(
        args.end(),
        {"file", intake_ref(e), raw, f.json, m.id, std::to_string(m.priority), f.idempotency_key,
         m.property_id,
         conversation,  // the record names it: the claim reads the guest's last message
         f.created_at, m.to,
         // delay_ms counts from when the intake took the element
         std::to_string(f.delay_ms > 0 ? e.taken_ms + f.delay_ms : 0), outbound_digest(f.json),
         f.source, keys_.property_channel(m.property_id), conversation_entry(f, conversation),
         f.handoff ? "1" : "0", f.handoff ? f.handoff->reason : "",
         f.handoff ? f.handoff->confidence : "", f.has_message() ? "0" : "1"});
    return {m.id, std::move(conversation)};
  }

  // --- dispatch: ready -> processing -> provider ----------------------------------------
  // A send's slot is free once its outcome is known; while outbound.concurrency outcomes wait to
  // be recorded (Redis slow, or down), no new send starts.
  void wake(const lane_ptr& l) {
    if (stopped_ || l->claiming || l->in_flight >= options_.concurrency ||
        l->unrecorded >= options_.concurrency)
      return;
    if (const auto now = std::chrono::steady_clock::now(); now < l->blocked_until) {
      const auto left = std::chrono::duration_cast<milliseconds>(l->blocked_until - now);
      return sleep(l, std::max<std::int64_t>(left.count(), 1));
    }
    // Outcomes waiting go first: Redis runs them before this claim (one connection, in order),
    // so a message put back in the ready set is there when the claim looks.
    record(l);
    l->claiming = true;
    const int room = options_.concurrency - l->in_flight;
    const auto now = std::chrono::system_clock::now();
    const auto now_epoch_ms =
        std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
    std::vector<std::string> args = {
        std::to_string(now_epoch_ms),
        "100",
        std::to_string(room),
        keys_.message(""),
        l->ch.opt_out ? keys_.opted_out(l->ch.name, "") : std::string(),
        std::to_string(max_quiet_holds),
        l->claim_reads_conversation,
        l->ch.reads_last_inbound ? "1" : "0",
        std::to_string(++l->claims),
        std::to_string(l->claim_unsure)};
    append_quiet_properties(now, now_epoch_ms, args);
    redis_.eval(
        claim_,
        {l->ready, l->processing, l->delayed, l->paused, l->arrivals, l->quiet, l->stats, l->calls},
        std::move(args), strand_,
        [self = shared_from_this(), l, room, call = l->claims](error_code ec, broker::reply r) {
          l->claiming = false;
          if (self->stopped_) return;
          const auto& e = r.elements();
          if (ec || !r.is_array() || e.size() < 3 || !e[1].is_integer() || !e[2].is_integer()) {
            // It may have run without its answer: the next claim hands back what it took.
            if (l->claim_unsure == 0) l->claim_unsure = call;
            self->redis_error("taking messages to send", ec, r);
            return self->sleep(l, 1000);
          }
          l->claim_unsure = 0;  // this one ran, and made good any lost before it
          const auto held = e[2].integer();
          if (held > 0)
            self->sends_.labels({l->ch.name, "quiet_hours"}).inc(static_cast<std::uint64_t>(held));
          int taken = 0;
          for (std::size_t i = 3; i + 4 < e.size(); i += 5) {
            if (!e[i].is_string()) continue;
            ++taken;
            ++l->in_flight;
            self->send(l, e[i].str(), e[i + 1].is_integer() ? e[i + 1].integer() : 0,
                       e[i + 2].is_integer() ? e[i + 2].integer() : -1,
                       e[i + 3].is_string() ? e[i + 3].str() : "",
                       !e[i + 4].is_integer() || e[i + 4].integer() != 0);
          }
          // There may be more: a full batch, or a claim that stopped holding at its cap.
          if (taken == room || held >= max_quiet_holds) return self->wake(l);
          // Nothing more ready: wake at the next due delayed message, or in a second at the
          // latest (another process's intake, a resume, or a new due time elsewhere).
          std::int64_t wait = 1000;
          if (e[1].integer() >= 0)
            wait = std::clamp<std::int64_t>(e[1].integer() - now_ms(), 0, 1000);
          self->sleep(l, wait);
        });
  }

  // The claim holds at most this many bulk messages for quiet hours per call, so that one call
  // never runs long however many a campaign queued; the dispatcher calls again at once.
  static constexpr std::int64_t max_quiet_holds = 1000;

  // The claim's table of the properties inside their quiet hours now: property_id, end (epoch
  // ms), end (RFC 3339) each, so no message costs a Redis call of its own. The time-zone
  // arithmetic runs at most once a second, not per claim: quiet hours may begin up to a second
  // late, and an entry is passed only while it holds (before its end), so none ends late.
  void append_quiet_properties(std::chrono::system_clock::time_point now, std::int64_t now_epoch_ms,
                               std::vector<std::string>& args) {
    if (quiet_at_ == std::chrono::system_clock::time_point{} || now < quiet_at_ ||
        now - quiet_at_ >= std::chrono::seconds(1)) {
      quiet_.clear();
      for (const auto& p : options_.properties) {
        const auto q = quiet_hours_at(p, now);
        if (!q.quiet) continue;
        quiet_.push_back(
            {p.id, std::chrono::duration_cast<milliseconds>(q.until.time_since_epoch()).count(),
             contract::format_timestamp(q.until)});
      }
      quiet_at_ = now;
    }
    for (const auto& e : quiet_) {
      if (e.until_ms <= now_epoch_ms) continue;
      args.push_back(e.property_id);
      args.push_back(std::to_string(e.until_ms));
      args.push_back(e.until_text);
    }
  }

  void sleep(const lane_ptr& l, std::int64_t ms) {
    l->due_timer.expires_after(milliseconds(ms));
    l->due_timer.async_wait([self = shared_from_this(), l](error_code ec) {
      if (!ec) self->wake(l);
    });
  }

  // `json` is the filed message: read into the typed one, never written again (what the
  // scripts keep of it is this text).
  // `last_inbound_at`: when the guest last wrote in the message's conversation (epoch ms), -1
  // unknown (read by the claim for channels with a service window only).
  // `conversation_account`: the account its guest last wrote to ("" = none known).
  // `stale`: the record has a reason or an error_code (of an earlier attempt) to drop when sent.
  void send(const lane_ptr& l, std::string json, std::int64_t attempts,
            std::int64_t last_inbound_at, const std::string& conversation_account, bool stale) {
    filed f;
    if (auto error = read_outbound(json, l->ch.name, f); !error.empty()) {
      report_poison(poison_, "outbound", l->ready, f.refused, error);
      // A JSON object with a field refused is dead-lettered as the object it is.
      const bool object = f.refused == "invalid";
      return finish(l, "dead", std::move(json), {}, attempts, "unreadable message: " + error, "",
                    "", 0, false, object);
    }
    std::optional<channels::outbound_message> msg(std::move(f.msg));
    // The account it goes out from. None: filed before the intake checked it (an older
    // version), or the property's accounts changed since; never sent from another's.
    std::string why;
    const auto* account = pick_account(l->ch.name, l->ch.accounts, msg->property_id, msg->account,
                                       conversation_account, why);
    if (!account) {
      return finish(l, "dead", std::move(json), *msg, attempts, std::move(why), "property_mismatch",
                    "", 0);
    }
    msg->account = account->id;
    if (auto blocked = l->account_blocked.find(account->id);
        blocked != l->account_blocked.end() && now_ms() < blocked->second) {  // its sender's limit
      sends_.labels({l->ch.name, "deferred"}).inc();
      return finish(l, "defer", std::move(json), *msg, attempts, "", "", "", blocked->second);
    }
    if (attempts < 0) {  // the claim found the recipient opted out
      sends_.labels({l->ch.name, "opted_out"}).inc();
      return finish(l, "dead", std::move(json), *msg, 0,
                    "the recipient opted out (replied STOP): not sent", "opted_out", "", 0);
    }
    if (last_inbound_at >= 0) msg->last_inbound_at = last_inbound_at;
    // Decided now, not when it was queued: a message delayed or retried may have left the
    // guest's service window since.
    if (l->ch.admit) {
      if (auto refused = l->ch.admit(*msg, now_ms())) {
        sends_.labels({l->ch.name, "refused"}).inc();
        return finish(l, "dead", std::move(json), *msg, attempts, std::move(refused->reason),
                      std::move(refused->error_code), "", 0);
      }
    }
    std::vector<ratelimit::limit_key> checks;
    if (limits_ && l->ch.limits) checks = l->ch.limits(*msg);
    if (checks.empty()) return call_provider(l, std::move(json), std::move(*msg), attempts, stale);
    auto m = std::make_shared<channels::outbound_message>(std::move(*msg));
    limits_->limiter.check(
        std::move(checks), 1, strand_,
        [self = shared_from_this(), l, json = std::move(json), m, attempts,
         stale](ratelimit::decision d) mutable {
          if (d.allowed)
            return self->call_provider(l, std::move(json), std::move(*m), attempts, stale);
          if (!d.degraded && d.retry_after_ms < 0) {
            return self->finish(l, "dead", std::move(json), *m, attempts,
                                "larger than a rate limit allows", "rate_limit", "", 0);
          }
          self->sends_.labels({l->ch.name, "deferred"}).inc();
          // A sender's limit holds for every message of the channel: keep this one's place and
          // let the channel wait, rather than cycle messages through the delayed set.
          std::int64_t channel_wait = d.degraded ? 1000 : 0;
          for (std::size_t i = 0; i < l->ch.channel_wide_limits && i < d.verdicts.size(); ++i)
            if (!d.verdicts[i].allowed)
              channel_wait = std::max<std::int64_t>(channel_wait, d.verdicts[i].retry_after_ms);
          if (channel_wait > 0) return self->requeue(l, std::move(json), *m, channel_wait);
          const auto wait = std::max<std::int64_t>(d.retry_after_ms, 1);
          self->finish(l, "defer", std::move(json), *m, attempts, "", "", "", now_ms() + wait);
        });
  }

  void call_provider(const lane_ptr& l, std::string json, channels::outbound_message msg,
                     std::int64_t attempts, bool stale) {
    auto m = std::make_shared<channels::outbound_message>(std::move(msg));
    l->ch.send(*m, strand_,
               [self = shared_from_this(), l, json = std::move(json), m, attempts,
                stale](channels::send_result r) mutable {
                 self->on_result(l, std::move(json), *m, attempts, stale, std::move(r));
               });
  }

  // Back to the front of its priority in the ready set; no new send starts on the channel for
  // `wait_ms` (sends in flight finish).
  void requeue(const lane_ptr& l, std::string json, const channels::outbound_message& m,
               std::int64_t wait_ms) {
    // With several accounts, a sender's limit holds for its own account: its messages wait in
    // the delayed set, all due at the same instant, so they come back in the order of their
    // ids (of their creation, to the millisecond); the other accounts' go on.
    if (l->ch.accounts.size() > 1) {
      auto& blocked = l->account_blocked[m.account];
      blocked = std::max(blocked, now_ms() + wait_ms);
      return finish(l, "defer", std::move(json), m, 0, "", "", "", blocked);
    }
    l->blocked_until = std::max(l->blocked_until,
                                std::chrono::steady_clock::now() + milliseconds(wait_ms));
    finish(l, "requeue", std::move(json), m, 0, "", "", "", 0);
  }

  // The delay before attempt `attempts` (from 1): broker::backoff_delay of retry attempts - 1.
  std::int64_t backoff_ms(std::int64_t attempts) {
    const auto retry = static_cast<std::uint32_t>(std::clamp<std::int64_t>(attempts - 1, 0, 64));
    return broker::backoff_delay(milliseconds(options_.backoff_initial_ms),
                                 milliseconds(options_.backoff_max_ms), retry,
                                 std::uniform_real_distribution<double>(0.0, 1.0)(rng_))
        .count();
  }

  void on_result(const lane_ptr& l, std::string json, const channels::outbound_message& m,
                 std::int64_t attempts, bool stale, channels::send_result r) {
    using channels::send_outcome;
    if (r.outcome == send_outcome::sent)
      l->sent->inc();
    else
      sends_.labels({l->ch.name, channels::to_string(r.outcome)}).inc();
    note_health(l->ch.name, m.account, r);
    const std::int64_t now = now_ms();
    switch (r.outcome) {
      case send_outcome::sent:
        return finish(l, "sent", std::move(json), m, attempts, "", "", r.provider_message_id, 0,
                      false, true, stale);
      case send_outcome::rate_limited:  // the provider throttles the sender: the channel waits
        return requeue(l, std::move(json), m,
                       r.retry_after.count() > 0 ? r.retry_after.count() : 1000);
      case send_outcome::recipient_limited: {
        const auto wait = r.retry_after.count() > 0 ? r.retry_after.count() : backoff_ms(attempts + 1);
        return finish(l, "defer", std::move(json), m, attempts, "", "", "", now + wait);
      }
      case send_outcome::transient:
        if (attempts + 1 >= options_.max_attempts) {
          return finish(l, "dead", std::move(json), m, attempts,
                        "gave up after " + std::to_string(attempts + 1) + " attempts: " + r.reason,
                        r.error_code, "", 0);
        }
        return finish(l, "retry", std::move(json), m, attempts, r.reason, r.error_code, "",
                      now + backoff_ms(attempts + 1));
      case send_outcome::permanent:
        return finish(l, "dead", std::move(json), m, attempts, r.reason, r.error_code, "", 0);
      case send_outcome::opted_out:
        return finish(l, "dead", std::move(json), m, attempts, r.reason, r.error_code, "", 0,
                      true);
    }
  }

  // The account's send health for the admin page: a send the provider took, or one that failed
  // (a limit or an opted-out guest says nothing about the account).
  void note_health(const std::string& channel, const std::string& account,
                   const channels::send_result& r) {
    using channels::send_outcome;
    if (account.empty()) return;
    if (r.outcome == send_outcome::sent)
      return health_.ok(redis_, strand_, channel, account, account_health::what::send);
    if (r.outcome == send_outcome::transient || r.outcome == send_outcome::permanent)
      health_.failed(redis_, strand_, channel, account, account_health::what::send,
                     r.error_code.empty() ? r.reason : r.error_code + ": " + r.reason);
  }

  // `object`: `json` parsed as a JSON object when it was read (every message that was read
  // into `m`), so a dead letter holds it as one. `attempts`: the claim's count; a sent one
  // writes it plus one, and drops reason and error_code only when `stale` (the claim saw them).
  void finish(const lane_ptr& l, const char* mode, std::string json,
              const channels::outbound_message& m, std::int64_t attempts, std::string reason,
              std::string error_code_, std::string provider_id, std::int64_t due,
              bool opted_out = false, bool object = true, bool stale = true) {
    const std::string mode_s = mode;
    const std::string now = contract::format_timestamp(std::chrono::system_clock::now());
    // The message.status event's data; the script writes the event (core/lua/fragments/event.lua).
    std::string channel_key, data, dead_letter;
    const bool event = (mode_s == "sent" || mode_s == "dead") && contract::is_property_id(m.property_id);
    if (event) {
      channel_key = keys_.property_channel(m.property_id);
      rapidjson::StringBuffer b;
      writer w(b);
      w.StartObject();
      put(w, "id", m.id);
      put(w, "status", mode_s == "sent" ? "sent" : "failed");
      put_or_null(w, "conversation_id", m.conversation_id);
      put(w, "channel", l->ch.name);
      if (mode_s == "sent") {
        put(w, "provider_message_id", provider_id);
        if (channels::sends_template(m)) put(w, "sent_as", "template");
      } else {
        put(w, "reason", reason);
        put_or_null(w, "error_code", error_code_);
      }
      w.EndObject();
      data.assign(b.GetString(), b.GetSize());
    }
    if (mode_s == "dead") {
      rapidjson::StringBuffer b;
      writer w(b);
      w.StartObject();
      w.Key("message");
      // The parser stops at a NUL after the value, which a raw copy would carry along.
      if (object && json.find('\0') == std::string::npos) {
        w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
      } else {  // not JSON: quoted, as valid UTF-8
        json::write_string(w, valid_utf8(json));
      }
      put(w, "reason", reason);
      put_or_null(w, "error_code", error_code_);
      w.Key("attempts");
      w.Int64(attempts + 1);
      put(w, "failed_at", now);
      w.EndObject();
      dead_letter.assign(b.GetString(), b.GetSize());
    }
    const std::string pid = contract::is_property_id(m.property_id) ? m.property_id : "-";
    outcome o{
        {keys_.message(m.id.empty() ? "-" : m.id),
         keys_.outbound_provider_id(l->ch.name, provider_id.empty() ? "-" : provider_id),
         keys_.property_seq(pid), keys_.property_events(pid),
         keys_.opted_out(l->ch.name, m.to.empty() ? "-" : m.to),
         keys_.stats_minute(epoch_minute(std::chrono::system_clock::now()))},
        {mode_s, std::move(json), now, std::to_string(due), std::move(provider_id),
         std::move(reason), std::move(error_code_), std::move(channel_key),
         event ? m.property_id : "", std::move(data), std::move(dead_letter), opted_out ? "1" : "0",
         mode_s == "sent" && channels::sends_template(m) ? "template" : "",
         mode_s == "sent" ? std::to_string(attempts + 1) : std::string(), stale ? "1" : "0"}};
    l->outcomes.push_back(std::move(o));
    --l->in_flight;
    ++l->unrecorded;
    // Recorded, and the freed slots filled, once the strand has run what is queued on it: the
    // outcomes that arrive together go in one call, and one claim takes their slots.
    if (l->record_posted) return;
    l->record_posted = true;
    asio::post(strand_, [self = shared_from_this(), l] {
      l->record_posted = false;
      self->record(l);
      self->wake(l);
    });
  }

  // Most outcomes outbound_finish.lua records in one call: a call stays short (some 20 µs of
  // Redis's time each), and a lost reply makes it run again.
  static constexpr std::size_t max_finish_batch = 128;

  // Records the waiting outcomes, a batch per call and one call at a time, until Redis has run
  // it (eval_until_done): each element takes its message off the processing list first, so a
  // batch run twice after a lost reply changes nothing the second time.
  void record(const lane_ptr& l) {
    if (l->recording || l->outcomes.empty()) return;
    l->recording = true;
    const std::size_t n = std::min(l->outcomes.size(), max_finish_batch);
    std::vector<std::string> keys = {l->processing, l->stats, l->delayed,
                                     l->dead,       l->ready, l->calls};
    // The batch's number goes with every run of it (eval_until_done): run twice, it records once.
    std::vector<std::string> args = {
        std::to_string(options_.message_ttl_s), std::to_string(options_.history_max),
        std::to_string(minute_counts_ttl_s), std::to_string(++l->finishes)};
    keys.reserve(keys.size() + n * 6);
    args.reserve(args.size() + n * 15);
    for (std::size_t i = 0; i < n; ++i) {
      auto& o = l->outcomes[i];
      for (auto& k : o.keys) keys.push_back(std::move(k));
      for (auto& a : o.args) args.push_back(std::move(a));
    }
    l->outcomes.erase(l->outcomes.begin(), l->outcomes.begin() + static_cast<std::ptrdiff_t>(n));
    eval_until_done(l, finish_, std::move(keys), std::move(args), "recording a send",
                    [self = shared_from_this(), l, n](error_code ec, broker::reply r) {
                      l->recording = false;
                      l->unrecorded -= static_cast<int>(n);
                      if (ec || r.is_error() || !r.is_array()) {
                        self->redis_error("recording a send", ec, r);
                      } else {
                        for (const auto& e : r.elements())  // an element that failed alone
                          if (e.is_string()) self->redis_error("recording a send", {}, e);
                      }
                      self->record(l);
                      self->wake(l);
                    });
  }

  asio::strand<asio::any_io_executor> strand_;
  broker::broker& redis_;
  const contract::key_space& keys_;
  const outbound_options options_;
  rate_limits* limits_;
  std::string gateway_id_;
  asio::steady_timer heartbeat_timer_;
  broker::script accept_, take_, claim_, finish_, recover_;
  account_health health_{keys_};
  counter_family& sends_;
  counter& errors_;
  counter_family& poison_;
  std::vector<lane_ptr> lanes_;
  struct quiet_entry {
    std::string property_id;
    std::int64_t until_ms = 0;
    std::string until_text;  // RFC 3339
  };
  std::vector<quiet_entry> quiet_;  // properties inside their quiet hours at quiet_at_
  std::chrono::system_clock::time_point quiet_at_{};
  std::atomic<bool> stopped_{false};
  std::mt19937_64 rng_{std::random_device{}()};
  std::chrono::steady_clock::time_point last_error_log_{};
};

outbound_service::outbound_service(asio::any_io_executor ex, broker::broker& redis,
                                   const contract::key_space& keys, const outbound_options& options,
                                   rate_limits* limits, std::vector<outbound_channel> channels,
                                   metrics_registry& metrics)
    : impl_(std::make_shared<impl>(std::move(ex), redis, keys, options, limits, std::move(channels),
                                   metrics)) {}
outbound_service::~outbound_service() { stop(); }
void outbound_service::start() { impl_->start(); }
void outbound_service::stop() { impl_->stop(); }
const std::string& outbound_service::gateway_id() const { return impl_->gateway_id(); }

}  // namespace bellhop::gateway
