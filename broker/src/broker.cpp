#include "bellhop/broker/broker.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "bellhop/broker/backoff.hpp"
#include "bellhop/contract/encoding.hpp"
#include "uv_adapter.hpp"

namespace bellhop::broker {
namespace {

// Deadlines only need to be right to a few milliseconds, and this clock costs a fraction of
// steady_clock on the hot path (it reads the kernel's tick without touching the TSC).
struct clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<clock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

// RESP encoding of a command, written straight into a reused buffer (hiredis's own formatter
// allocates and goes through a printf-like path for every argument).
void append_resp(std::string& out, const command& cmd) {
  char digits[24];
  auto number = [&](char prefix, std::size_t n) {
    out.push_back(prefix);
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
    out.append("\r\n", 2);
  };
  number('*', cmd.size());
  for (const auto& arg : cmd) {
    number('$', arg.size());
    out.append(arg);
    out.append("\r\n", 2);
  }
}
using boost::system::error_code;

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s).substr(0, prefix.size()) == prefix;
}

// One command on its way through the broker. Owned by exactly one queue at a time and completed
// exactly once (`done` absorbs the late reply of a command that already timed out).
struct request {
  command cmd;
  boost::asio::any_io_executor ex;
  reply_handler handler;
  // Internal requests (handshake, SCRIPT LOAD) complete on the broker thread instead.
  std::function<void(error_code, const reply&)> internal;
  clock::time_point deadline;
  bool done = false;
  bool is_eval = false;
  bool retried = false;
};
using request_ptr = std::unique_ptr<request>;

struct subscriber_entry {
  broker::subscription_id id;
  std::string channel;
  boost::asio::any_io_executor ex;
  message_handler on_message;
  subscribed_handler on_subscribed;
};

enum class role { command, subscriber, blocking };

}  // namespace

// Everything below runs on the broker thread, except post()/subscribe()/unsubscribe()/stop(),
// which only touch the mutex-protected inbox and wake the loop.
class broker::impl {
 public:
  explicit impl(const broker_options& options) : options_(options) {
    sweep_interval_ = std::clamp(std::min(options_.command_timeout, options_.connect_timeout) / 10,
                                 std::chrono::milliseconds(5), std::chrono::milliseconds(50));
  }

  // ---- called from any thread --------------------------------------------------------------

  void start() {
    ::signal(SIGPIPE, SIG_IGN);  // hiredis writes to sockets that Redis may have closed
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &wake_, &impl::on_wake);
    wake_.data = this;
    uv_timer_init(&loop_, &sweep_);
    sweep_.data = this;
    state_.store(connection_state::connecting);
    command_conn_ = std::make_unique<connection>(this, role::command);
    connect(*command_conn_);
    const auto every = static_cast<std::uint64_t>(sweep_interval_.count());
    uv_timer_start(&sweep_, &impl::on_sweep, every, every);
    uv_check_init(&loop_, &check_);
    check_.data = this;
    uv_check_start(&check_, &impl::on_check);
    // Commands queued by timers (before the poll phase) are written before the loop blocks.
    uv_prepare_init(&loop_, &prepare_);
    uv_prepare_start(&prepare_, [](uv_prepare_t*) { flush_deferred_writes(); });
    thread_ = std::thread([this] {
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
    });
    std::lock_guard lock(mutex_);
    started_ = true;
    uv_async_send(&wake_);  // anything posted before start()
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
      if (started_) uv_async_send(&wake_);
    }
    if (thread_.joinable()) thread_.join();
    state_.store(connection_state::stopped);
  }

  void enqueue(request_ptr r, bool blocking) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        (blocking ? inbox_blocking_ : inbox_).push_back(std::move(r));
        r = nullptr;
        // Under the mutex: after stop() has sent its last wake-up the handle is closed.
        if (started_) uv_async_send(&wake_);
      }
    }
    if (r && r->handler) {
      // Refused on the caller's thread: no broker-thread batch to join.
      errors_.fetch_add(1, std::memory_order_relaxed);
      boost::asio::post(r->ex, [h = std::move(r->handler)] {
        h(make_error_code(errc::shutting_down), reply{});
      });
    }
  }

  void register_script(const script& s) {
    std::lock_guard lock(mutex_);
    scripts_.try_emplace(s.sha1, s.body);
  }

  subscription_id subscribe(std::string channel, boost::asio::any_io_executor ex,
                            message_handler on_message, subscribed_handler on_subscribed) {
    auto entry = std::make_shared<subscriber_entry>();
    entry->id = next_subscription_id_.fetch_add(1) + 1;
    entry->channel = std::move(channel);
    entry->ex = std::move(ex);
    entry->on_message = std::move(on_message);
    entry->on_subscribed = std::move(on_subscribed);
    const auto id = entry->id;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return id;
      inbox_subscriptions_.push_back({entry, 0});
      if (started_) uv_async_send(&wake_);
    }
    return id;
  }

  void unsubscribe(subscription_id id) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      inbox_subscriptions_.push_back({nullptr, id});
      if (started_) uv_async_send(&wake_);
    }
  }

  connection_state state() const noexcept { return state_.load(); }

  broker_stats stats() const noexcept {
    broker_stats s;
    s.up = state_.load() == connection_state::ready;
    s.commands = commands_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.connection_failures = connection_failures_.load(std::memory_order_relaxed);
    s.pubsub_messages = pubsub_messages_.load(std::memory_order_relaxed);
    s.out_of_memory = out_of_memory_.load(std::memory_order_relaxed);
    return s;
  }

  void note_out_of_memory() noexcept {
    out_of_memory_.fetch_add(1, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_oom_logged_.load(std::memory_order_relaxed);
    if (last != 0 && now - last < std::chrono::nanoseconds(std::chrono::seconds(10)).count())
      return;
    if (!last_oom_logged_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
    spdlog::warn(
        "Redis is full: new messages and replies are answered 503 redis_full (from 90% of its "
        "maxmemory; at 100% Redis refuses writes itself) until memory is freed; nothing already "
        "stored is lost. Check that the AI engines are taking messages "
        "(bellhop_inbound_queue_depth), or raise maxmemory (redis.embedded.maxmemory) (logged "
        "at most every 10 s)");
  }

  const broker_options& options() const noexcept { return options_; }

 private:
  enum class conn_state { disconnected, connecting, ready, closed };

  struct connection {
    connection(impl* o, role r)
        : owner(o), kind(r), retry(o->options_.backoff_initial, o->options_.backoff_max) {}
    impl* owner;
    role kind;
    redisAsyncContext* ctx = nullptr;
    conn_state state = conn_state::disconnected;
    std::deque<request_ptr> inflight;  // written to hiredis, replies arrive in this order
    std::deque<request_ptr> waiting;   // held until the handshake is done
    std::size_t handshake_pending = 0;
    bool ever_ready = false;
    bool handshake_failed = false;
    clock::time_point connect_deadline{};
    clock::time_point reconnect_at{};
    backoff retry;
    clock::time_point last_warning{};
  };

  struct subscription_change {
    std::shared_ptr<subscriber_entry> add;  // null: remove `remove_id`
    subscription_id remove_id;
  };

  struct channel_state {
    std::vector<std::shared_ptr<subscriber_entry>> entries;
    bool confirmed = false;  // Redis acknowledged the SUBSCRIBE on the current connection
  };

  // ---- completion --------------------------------------------------------------------------

  void complete(request& r, errc code, reply rep) {
    if (r.done) return;
    r.done = true;
    error_code ec = code == errc::ok ? error_code{} : make_error_code(code);
    if (code == errc::connection_lost && stopping_flag()) ec = make_error_code(errc::shutting_down);
    if (ec) errors_.fetch_add(1, std::memory_order_relaxed);
    if (code == errc::timeout) timeouts_.fetch_add(1, std::memory_order_relaxed);
    if (r.internal) {
      r.internal(ec, rep);
      return;
    }
    if (!r.handler) return;
    outbox_.push_back({std::move(r.ex), std::move(r.handler), ec, std::move(rep)});
  }

  // Hands the completions of one loop iteration to their executors: one post per executor, not
  // one per reply, so a read that brings back hundreds of pipelined replies wakes each caller's
  // executor once. Replies for one executor keep their order.
  void flush_outbox() {
    if (outbox_.empty()) return;
    for (auto& item : outbox_) {
      auto group = std::find_if(groups_.begin(), groups_.end(),
                                [&](auto& g) { return g.first == item.ex; });
      if (group == groups_.end()) {
        groups_.emplace_back(item.ex, std::vector<completion>{});
        group = std::prev(groups_.end());
      }
      group->second.push_back(std::move(item));
    }
    outbox_.clear();
    for (auto& [ex, items] : groups_) {
      boost::asio::post(ex, [batch = std::move(items)]() mutable {
        for (auto& c : batch) c.handler(c.ec, std::move(c.value));
      });
    }
    groups_.clear();
  }

  // After each poll phase: first write what this round queued for Redis, then hand the round's
  // replies to their executors.
  static void on_check(uv_check_t* handle) {
    flush_deferred_writes();
    static_cast<impl*>(handle->data)->flush_outbox();
  }

  bool stopping_flag() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  // ---- connections -------------------------------------------------------------------------

  void connect(connection& c) {
    const auto& ep = options_.endpoint;
    redisAsyncContext* ac = ep.kind == redis_endpoint::transport::unix_socket
                                ? redisAsyncConnectUnix(ep.path.c_str())
                                : redisAsyncConnect(ep.host.c_str(), ep.port);
    if (!ac || ac->err) {
      note_failure(c, ac ? ac->errstr : "out of memory");
      if (ac) redisAsyncFree(ac);
      closed(c);
      return;
    }
    ac->data = &c;
    if (attach_to_uv_loop(ac, &loop_) != REDIS_OK) {
      note_failure(c, "cannot attach to the event loop");
      redisAsyncFree(ac);
      closed(c);
      return;
    }
    redisAsyncSetConnectCallback(ac, &impl::on_connect);
    redisAsyncSetDisconnectCallback(ac, &impl::on_disconnect);
    if (ep.kind == redis_endpoint::transport::tcp) redisEnableKeepAlive(&ac->c);
    c.ctx = ac;
    spdlog::debug("connecting {} connection", client_name(c));
    c.state = conn_state::connecting;
    c.handshake_failed = false;
    c.connect_deadline = clock::now() + options_.connect_timeout;
    if (c.kind == role::command) state_.store(connection_state::connecting);

    // The handshake is pipelined behind the connect; hiredis buffers it until the socket is up.
    std::vector<command> handshake;
    if (!ep.password.empty()) {
      handshake.push_back(ep.user.empty() ? command{"AUTH", ep.password}
                                          : command{"AUTH", ep.user, ep.password});
    }
    if (ep.db != 0) handshake.push_back({"SELECT", std::to_string(ep.db)});
    handshake.push_back({"CLIENT", "SETNAME", client_name(c)});
    c.handshake_pending = handshake.size();
    for (auto& cmd : handshake) {
      auto r = std::make_unique<request>();
      const std::string what = cmd[0];
      r->cmd = std::move(cmd);
      r->deadline = c.connect_deadline;
      r->internal = [this, &c, what](error_code ec, const reply& rep) {
        handshake_step(c, what, ec, rep);
      };
      send(c, std::move(r));
    }
  }

  std::string client_name(const connection& c) const {
    switch (c.kind) {
      case role::command: return options_.client_name;
      case role::subscriber: return options_.client_name + ":sub";
      case role::blocking: return options_.client_name + ":blocking";
    }
    return options_.client_name;
  }

  void handshake_step(connection& c, const std::string& what, error_code ec, const reply& rep) {
    if (c.state != conn_state::connecting) return;
    if (ec) {
      if (!c.handshake_failed && ec != make_error_code(errc::connection_lost)) {
        c.handshake_failed = true;
        // Never log the command's arguments: AUTH carries the password.
        note_failure(c, "refused " + what + ": " + (rep.is_error() ? rep.str() : ec.message()));
        if (c.ctx) redisAsyncDisconnect(c.ctx);
      }
      return;
    }
    if (--c.handshake_pending > 0) return;
    became_ready(c);
  }

  void became_ready(connection& c) {
    spdlog::debug("{} connection ready", client_name(c));
    c.state = conn_state::ready;
    c.retry.reset();
    const bool reconnect = c.ever_ready;
    c.ever_ready = true;
    if (reconnect) reconnects_.fetch_add(1, std::memory_order_relaxed);
    if (c.kind == role::command) {
      state_.store(connection_state::ready);
      if (reconnect) {
        spdlog::info("reconnected to Redis at {}", options_.endpoint.redacted());
      } else {
        spdlog::info("connected to Redis at {}", options_.endpoint.redacted());
      }
    }
    auto held = std::move(c.waiting);
    c.waiting.clear();
    for (auto& r : held) send(c, std::move(r));
    if (c.kind == role::subscriber) subscribe_all(c);
    if (c.kind == role::blocking && c.inflight.empty()) blocking_idle(c);
  }

  void note_failure(connection& c, const std::string& why) {
    connection_failures_.fetch_add(1, std::memory_order_relaxed);
    const auto now = clock::now();
    // Warn when a connection is first lost and then at most every 30 s while it stays down.
    if (c.kind != role::blocking &&
        (c.state == conn_state::ready || c.last_warning == clock::time_point{} ||
         now - c.last_warning > std::chrono::seconds(30))) {
      c.last_warning = now;
      spdlog::warn("Redis at {} unavailable ({}): retrying with backoff",
                   options_.endpoint.redacted(), why);
    }
  }

  // The single place a connection ends: every request still held fails once; the command and
  // subscriber connections schedule a reconnect, blocking connections are discarded.
  void closed(connection& c) {
    spdlog::debug("{} connection closed ({} in flight, {} waiting)", client_name(c),
                  c.inflight.size(), c.waiting.size());
    c.ctx = nullptr;
    c.state = conn_state::disconnected;
    for (auto& r : c.inflight) complete(*r, errc::connection_lost, {});
    c.inflight.clear();
    for (auto& r : c.waiting) complete(*r, errc::not_connected, {});
    c.waiting.clear();
    if (c.kind == role::command) state_.store(connection_state::disconnected);
    if (c.kind == role::subscriber) {
      for (auto& [name, ch] : channels_) ch.confirmed = false;
      unsubscribing_.clear();
    }
    if (stopping_local_) {
      c.state = conn_state::closed;
      return;
    }
    if (c.kind == role::blocking) {
      c.state = conn_state::closed;
      graveyard_.push_back(&c);
      return;
    }
    c.reconnect_at = clock::now() + c.retry.next();
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<connection*>(ac->data);
    if (!c) return;
    if (status != REDIS_OK) {
      // hiredis frees the context after this callback, failing its pending callbacks, and never
      // calls on_disconnect: detach first, closed() fails what we hold.
      const_cast<redisAsyncContext*>(ac)->data = nullptr;
      c->owner->note_failure(*c, ac->errstr);
      c->owner->closed(*c);
    }
  }

  static void on_disconnect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<connection*>(ac->data);
    if (!c) return;
    if (status != REDIS_OK) c->owner->note_failure(*c, ac->errstr);
    c->owner->closed(*c);
  }

  // Forcibly ends a connection from outside hiredis callbacks (timeouts, stop).
  void drop(connection& c) {
    redisAsyncContext* ac = c.ctx;
    if (!ac) return;
    ac->data = nullptr;  // closed() below fails what is pending, so hiredis callbacks are moot
    redisAsyncFree(ac);
    closed(c);
  }

  // ---- sending -----------------------------------------------------------------------------

  void send(connection& c, request_ptr r) {
    if (!c.ctx) {
      complete(*r, errc::not_connected, {});
      return;
    }
    wire_.clear();
    append_resp(wire_, r->cmd);
    const int rc = redisAsyncFormattedCommand(c.ctx, &impl::on_reply, nullptr, wire_.data(),
                                              wire_.size());
    if (rc != REDIS_OK) {
      complete(*r, errc::connection_lost, {});
      return;
    }
    commands_.fetch_add(1, std::memory_order_relaxed);
    c.inflight.push_back(std::move(r));
  }

  static void on_reply(redisAsyncContext* ac, void* raw, void*) {
    auto* c = static_cast<connection*>(ac->data);
    if (!c) return;
    c->owner->handle_reply(*c, static_cast<redisReply*>(raw));
  }

  void handle_reply(connection& c, redisReply* raw) {
    if (c.inflight.empty()) {
      spdlog::error("Redis reply with no pending command on {} connection", client_name(c));
      return;
    }
    request_ptr r = std::move(c.inflight.front());
    c.inflight.pop_front();
    if (!raw) {
      complete(*r, errc::connection_lost, {});
    } else {
      reply rep = reply::from_hiredis(*raw);
      if (rep.is_error() && r->is_eval && !r->retried && starts_with(rep.str(), "NOSCRIPT") &&
          !r->done) {
        retry_eval(c, std::move(r));
      } else if (rep.is_error()) {
        if (is_out_of_memory(rep.str())) note_out_of_memory();
        complete(*r, errc::redis_error, std::move(rep));
      } else {
        complete(*r, errc::ok, std::move(rep));
      }
    }
    if (c.kind == role::blocking && c.inflight.empty() && c.state == conn_state::ready) {
      blocking_idle(c);
    }
  }

  // NOSCRIPT: the script cache was flushed (or Redis restarted). Load the script and run the
  // call once more, pipelined on the same connection.
  void retry_eval(connection& c, request_ptr r) {
    std::string body;
    {
      std::lock_guard lock(mutex_);
      auto it = scripts_.find(r->cmd[1]);
      if (it != scripts_.end()) body = it->second;
    }
    if (body.empty()) {
      complete(*r, errc::redis_error, reply::make_error("NOSCRIPT and script body unknown"));
      return;
    }
    // First use, SCRIPT FLUSH or a Redis restart: not worth more than a debug line.
    spdlog::debug("Redis does not have script {} cached; loading it", r->cmd[1].substr(0, 12));
    auto load = std::make_unique<request>();
    load->cmd = {"SCRIPT", "LOAD", std::move(body)};
    load->deadline = r->deadline;
    load->internal = [](error_code ec, const reply& rep) {
      if (ec) spdlog::warn("SCRIPT LOAD failed: {}", rep.is_error() ? rep.str() : ec.message());
    };
    r->retried = true;
    send(c, std::move(load));
    send(c, std::move(r));
  }

  // ---- the inbox ---------------------------------------------------------------------------

  static void on_wake(uv_async_t* handle) { static_cast<impl*>(handle->data)->drain(); }

  void drain() {
    std::vector<request_ptr> commands, blocking;
    std::vector<subscription_change> changes;
    bool stop_now = false;
    {
      std::lock_guard lock(mutex_);
      commands.swap(inbox_);
      blocking.swap(inbox_blocking_);
      changes.swap(inbox_subscriptions_);
      stop_now = stopping_;
    }
    auto& cc = *command_conn_;
    for (auto& r : commands) {
      switch (cc.state) {
        case conn_state::ready: send(cc, std::move(r)); break;
        case conn_state::connecting: cc.waiting.push_back(std::move(r)); break;
        default: complete(*r, errc::not_connected, {}); break;
      }
    }
    for (auto& r : blocking) assign_blocking(std::move(r));
    for (auto& change : changes) apply(change);
    if (stop_now) shutdown();
  }

  // ---- blocking commands -------------------------------------------------------------------

  void assign_blocking(request_ptr r) {
    for (auto& c : blocking_conns_) {
      if (c->state == conn_state::ready && c->inflight.empty()) {
        send(*c, std::move(r));
        return;
      }
    }
    if (blocking_conns_.size() < options_.max_blocking_connections) {
      blocking_conns_.push_back(std::make_unique<connection>(this, role::blocking));
      auto& c = *blocking_conns_.back();
      connect(c);
      if (c.state == conn_state::connecting) {
        c.waiting.push_back(std::move(r));
      } else {
        complete(*r, errc::not_connected, {});
      }
      return;
    }
    blocking_backlog_.push_back(std::move(r));
  }

  void blocking_idle(connection& c) {
    while (!blocking_backlog_.empty()) {
      request_ptr r = std::move(blocking_backlog_.front());
      blocking_backlog_.pop_front();
      if (r->done) continue;
      send(c, std::move(r));
      return;
    }
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  void apply(subscription_change& change) {
    if (change.add) {
      auto& entry = change.add;
      auto& ch = channels_[entry->channel];
      const bool first = ch.entries.empty();
      ch.entries.push_back(entry);
      subscription_channel_[entry->id] = entry->channel;
      if (!subscriber_conn_) {
        subscriber_conn_ = std::make_unique<connection>(this, role::subscriber);
        connect(*subscriber_conn_);
      } else if (first && subscriber_conn_->state == conn_state::ready) {
        // If an UNSUBSCRIBE of this channel is still in flight, hiredis 0.14 would drop the new
        // callback when its reply arrives: subscribe again only after that reply.
        if (!unsubscribing_.contains(entry->channel)) {
          send_pubsub(*subscriber_conn_, {"SUBSCRIBE", entry->channel});
        }
      } else if (ch.confirmed) {
        notify_subscribed(*entry);
      }
      return;
    }
    auto it = subscription_channel_.find(change.remove_id);
    if (it == subscription_channel_.end()) return;
    const std::string channel = it->second;
    subscription_channel_.erase(it);
    auto ch = channels_.find(channel);
    if (ch == channels_.end()) return;
    std::erase_if(ch->second.entries, [&](auto& e) { return e->id == change.remove_id; });
    if (ch->second.entries.empty()) {
      channels_.erase(ch);
      if (subscriber_conn_ && subscriber_conn_->state == conn_state::ready &&
          unsubscribing_.insert(channel).second) {
        send_pubsub(*subscriber_conn_, {"UNSUBSCRIBE", channel});
      }
    }
  }

  void subscribe_all(connection& c) {
    if (channels_.empty()) return;
    command cmd{"SUBSCRIBE"};
    for (auto& [name, ch] : channels_) cmd.push_back(name);
    send_pubsub(c, std::move(cmd));
  }

  void send_pubsub(connection& c, command cmd) {
    if (!c.ctx) return;
    wire_.clear();
    append_resp(wire_, cmd);
    // hiredis 0.14 routes every message (and the UNSUBSCRIBE reply) of a channel to the callback
    // registered with its SUBSCRIBE; it reads the channels from the encoded command.
    redisAsyncFormattedCommand(c.ctx, &impl::on_pubsub, nullptr, wire_.data(), wire_.size());
    commands_.fetch_add(1, std::memory_order_relaxed);
  }

  static void on_pubsub(redisAsyncContext* ac, void* raw, void*) {
    auto* c = static_cast<connection*>(ac->data);
    if (!c || !raw) return;
    c->owner->handle_pubsub(*static_cast<redisReply*>(raw));
  }

  void handle_pubsub(const redisReply& r) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements < 2) return;
    const redisReply* type = r.element[0];
    const redisReply* chan = r.element[1];
    if (!type || !chan || type->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) {
      return;
    }
    std::string_view kind(type->str, type->len);
    std::string channel(chan->str, chan->len);
    auto it = channels_.find(channel);
    if (kind == "message" && r.elements == 3 && r.element[2] &&
        r.element[2]->type == REDIS_REPLY_STRING) {
      pubsub_messages_.fetch_add(1, std::memory_order_relaxed);
      if (it == channels_.end()) return;
      // Serialized once, shared by every local subscriber.
      auto payload = std::make_shared<const std::string>(r.element[2]->str, r.element[2]->len);
      auto name = std::make_shared<const std::string>(std::move(channel));
      for (auto& entry : it->second.entries) {
        boost::asio::post(entry->ex, [entry, name, payload] { entry->on_message(*name, payload); });
      }
    } else if (kind == "unsubscribe") {
      unsubscribing_.erase(channel);
      if (it != channels_.end() && subscriber_conn_) {
        send_pubsub(*subscriber_conn_, {"SUBSCRIBE", channel});
      }
    } else if (kind == "subscribe") {
      if (it == channels_.end()) return;
      it->second.confirmed = true;
      for (auto& entry : it->second.entries) notify_subscribed(*entry);
    }
  }

  void notify_subscribed(const subscriber_entry& entry) {
    if (!entry.on_subscribed) return;
    boost::asio::post(entry.ex, [h = entry.on_subscribed, name = entry.channel] { h(name); });
  }

  // ---- timers ------------------------------------------------------------------------------

  static void on_sweep(uv_timer_t* handle) { static_cast<impl*>(handle->data)->sweep(); }

  void sweep() {
    for (auto* dead : graveyard_) {
      std::erase_if(blocking_conns_, [&](auto& c) { return c.get() == dead; });
    }
    graveyard_.clear();
    const auto now = clock::now();
    sweep_connection(*command_conn_, now);
    if (subscriber_conn_) sweep_connection(*subscriber_conn_, now);
    for (std::size_t i = 0; i < blocking_conns_.size(); ++i) {
      sweep_connection(*blocking_conns_[i], now);
    }
    for (auto& r : blocking_backlog_) {
      if (r->deadline <= now) complete(*r, errc::timeout, {});
    }
    std::erase_if(blocking_backlog_, [](auto& r) { return r->done; });
  }

  void sweep_connection(connection& c, clock::time_point now) {
    if (c.state == conn_state::disconnected && c.kind != role::blocking && now >= c.reconnect_at) {
      connect(c);
      return;
    }
    if (c.state == conn_state::connecting && now >= c.connect_deadline) {
      note_failure(c, "connect timed out");
      drop(c);
      return;
    }
    for (auto& r : c.waiting) {
      if (r->deadline <= now) complete(*r, errc::timeout, {});
    }
    std::erase_if(c.waiting, [](auto& r) { return r->done; });
    // Replies come back in order, so a timed-out command stays queued (done) until its reply
    // arrives; only the caller is released now. A blocking connection whose command timed out is
    // stuck, so it is dropped instead.
    bool stuck = false;
    for (auto& r : c.inflight) {
      if (r->deadline > now) break;
      if (!r->done) {
        complete(*r, errc::timeout, {});
        stuck = true;
      }
    }
    if (stuck && c.kind == role::blocking) drop(c);
  }

  // ---- stop --------------------------------------------------------------------------------

  void shutdown() {
    stopping_local_ = true;
    auto end = [this](connection& c) {
      for (auto& r : c.waiting) complete(*r, errc::shutting_down, {});
      c.waiting.clear();
      drop(c);
      c.state = conn_state::closed;
    };
    end(*command_conn_);
    if (subscriber_conn_) end(*subscriber_conn_);
    for (auto& c : blocking_conns_) end(*c);
    for (auto& r : blocking_backlog_) complete(*r, errc::shutting_down, {});
    blocking_backlog_.clear();
    channels_.clear();
    flush_outbox();
    uv_check_stop(&check_);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
    uv_prepare_stop(&prepare_);
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    uv_timer_stop(&sweep_);
    uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    // uv_run returns once the hiredis poll handles have closed too.
  }

  broker_options options_;
  std::chrono::milliseconds sweep_interval_;
  uv_loop_t loop_{};
  uv_async_t wake_{};
  uv_timer_t sweep_{};
  uv_check_t check_{};  // runs after each poll phase: flushes the outbox
  uv_prepare_t prepare_{};  // runs before each poll phase: writes what timers queued
  std::thread thread_;

  std::mutex mutex_;  // guards the inbox, stopping_ and scripts_
  std::vector<request_ptr> inbox_;
  std::vector<request_ptr> inbox_blocking_;
  std::vector<subscription_change> inbox_subscriptions_;
  bool stopping_ = false;
  bool started_ = false;
  std::unordered_map<std::string, std::string> scripts_;  // sha1 -> body

  // Broker-thread state.
  bool stopping_local_ = false;
  std::unique_ptr<connection> command_conn_;
  std::unique_ptr<connection> subscriber_conn_;
  std::vector<std::unique_ptr<connection>> blocking_conns_;
  std::vector<connection*> graveyard_;
  std::deque<request_ptr> blocking_backlog_;
  std::map<std::string, channel_state> channels_;
  std::set<std::string> unsubscribing_;  // UNSUBSCRIBE sent, reply not yet received
  std::unordered_map<subscription_id, std::string> subscription_channel_;
  struct completion {
    boost::asio::any_io_executor ex;
    reply_handler handler;
    error_code ec;
    reply value;
  };
  std::vector<completion> outbox_;
  std::vector<std::pair<boost::asio::any_io_executor, std::vector<completion>>> groups_;
  std::string wire_;  // RESP of the command being sent, reused

  std::atomic<subscription_id> next_subscription_id_{0};
  std::atomic<connection_state> state_{connection_state::stopped};
  std::atomic<std::uint64_t> commands_{0}, errors_{0}, timeouts_{0}, reconnects_{0},
      connection_failures_{0}, pubsub_messages_{0}, out_of_memory_{0};
  std::atomic<std::int64_t> last_oom_logged_{0};  // steady clock, ns; 0: never
};

script script::make(std::string name, std::string body) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  ::SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  return script{std::move(name), std::move(body),
                contract::to_hex({reinterpret_cast<const char*>(digest), sizeof digest})};
}

broker::broker(broker_options options)
    : options_(std::move(options)), impl_(std::make_unique<impl>(options_)) {}

broker::~broker() { stop(); }

void broker::start() { impl_->start(); }
void broker::stop() { impl_->stop(); }

void broker::post(command cmd, boost::asio::any_io_executor ex, reply_handler handler) {
  auto r = std::make_unique<request>();
  r->cmd = std::move(cmd);
  r->ex = std::move(ex);
  r->handler = std::move(handler);
  r->deadline = clock::now() + options_.command_timeout;
  impl_->enqueue(std::move(r), false);
}

void broker::eval(const script& s, std::vector<std::string> keys, std::vector<std::string> args,
                  boost::asio::any_io_executor ex, reply_handler handler) {
  impl_->register_script(s);
  auto r = std::make_unique<request>();
  r->cmd.reserve(3 + keys.size() + args.size());
  r->cmd = {"EVALSHA", s.sha1, std::to_string(keys.size())};
  for (auto& k : keys) r->cmd.push_back(std::move(k));
  for (auto& a : args) r->cmd.push_back(std::move(a));
  r->ex = std::move(ex);
  r->handler = std::move(handler);
  r->is_eval = true;
  r->deadline = clock::now() + options_.command_timeout;
  impl_->enqueue(std::move(r), false);
}

void broker::post_blocking(command cmd, std::chrono::milliseconds timeout,
                           boost::asio::any_io_executor ex, reply_handler handler) {
  auto r = std::make_unique<request>();
  r->cmd = std::move(cmd);
  r->ex = std::move(ex);
  r->handler = std::move(handler);
  r->deadline = clock::now() + timeout;
  impl_->enqueue(std::move(r), true);
}

broker::subscription_id broker::subscribe(std::string channel, boost::asio::any_io_executor ex,
                                          message_handler on_message,
                                          subscribed_handler on_subscribed) {
  return impl_->subscribe(std::move(channel), std::move(ex), std::move(on_message),
                          std::move(on_subscribed));
}

void broker::unsubscribe(subscription_id id) { impl_->unsubscribe(id); }

connection_state broker::state() const noexcept { return impl_->state(); }
broker_stats broker::stats() const noexcept { return impl_->stats(); }
void broker::note_out_of_memory() noexcept {
  impl_->note_out_of_memory();
}

}  // namespace bellhop::broker
