#include "ingest_batcher.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "bellhop/broker/group_commit.hpp"
#include "bellhop/core/account_health.hpp"
#include "bellhop/core/redis_full.hpp"
#include "bellhop/inbound/lua.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {

ingest_batcher::ingest_batcher(broker::broker& redis, const contract::key_space& keys,
                               const inbound_options& options, limits lim, histogram& batch_sizes,
                               redis_memory* memory, ratelimit::limiter* limiter)
    : redis_(redis),
      memory_(memory),
      limiter_(limiter),
      keys_(keys),
      limits_(lim),
      batch_sizes_(batch_sizes),
      script_(broker::script::make("ingest", std::string(lua::ingest))),
      inbound_key_(keys.inbound()),
      common_args_{
          std::to_string(options.dedup_ttl_s),     std::to_string(options.message_ttl_s),
          std::to_string(options.history_max),     std::to_string(options.conversation_ttl_s),
          std::to_string(options.recent_messages), keys.message("")} {}

void ingest_batcher::submit(inbound_message msg, boost::asio::any_io_executor ex, handler done) {
  submit(std::move(msg), limit{}, std::move(ex), std::move(done));
}

void ingest_batcher::submit(inbound_message msg, limit lim, boost::asio::any_io_executor ex,
                            handler done) {
  if (refuse_new_data(memory_, redis_)) {
    ingest_outcome out;
    out.what = ingest_outcome::result::full;
    out.detail = "Redis is nearly full";
    boost::asio::post(ex,
                      [done = std::move(done), out = std::move(out)] { done(out, std::nullopt); });
    return;
  }
  const auto& k = keys_;
  pending p;
  p.size = msg.envelope.size();
  p.keys = {k.dedup(msg.property_id, msg.channel, msg.external_id),
            k.message(msg.id),
            k.property_seq(msg.property_id),
            k.property_events(msg.property_id),
            k.property_conversations_index(msg.property_id),
            k.conversation(msg.conversation_id),
            k.conversation_messages(msg.conversation_id),
            k.legacy_dedup(msg.channel, msg.external_id),
            k.property_unread(msg.property_id),
            k.property_escalation(msg.property_id)};
  // The envelope crosses to Redis once: the script queues it and writes it as the data of the
  // message.created event (core/lua/fragments/event.lua).
  p.args = {msg.id,
            std::move(msg.envelope),
            k.property_channel(msg.property_id),
            msg.property_id,
            msg.channel,
            msg.conversation_id,
            msg.received_at,
            std::to_string(msg.received_ms),
            std::move(msg.from),
            std::move(msg.guest_name),
            std::move(msg.account)};
  if (lim.applies && limiter_) {
    p.policy = lim.applies;
    p.subject = std::move(lim.subject);
  }
  p.ex = std::move(ex);
  p.done = std::move(done);
  enqueue(std::move(p));
}

void ingest_batcher::enqueue(pending p) {
  std::lock_guard lock(mu_);
  waiting_.push_back(std::move(p));
  if (in_flight_ < limits_.max_in_flight) send_locked(take_locked());
}

void ingest_batcher::check_apart(pending p) {
  std::vector<ratelimit::limit_key> keys = {{p.policy, p.subject}};
  auto ex = p.ex;
  limiter_->check(keys, 1, std::move(ex),
                  [self = shared_from_this(), p = std::move(p)](ratelimit::decision d) mutable {
                    if (!d.allowed) return p.done(ingest_outcome{}, std::move(d));
                    // Allowed (or failing open): stored as any message, answered with `d`.
                    p.policy = nullptr;
                    p.done = [done = std::move(p.done), d = std::move(d)](
                                 ingest_outcome out, std::optional<ratelimit::decision>) {
                      done(std::move(out), d);
                    };
                    self->enqueue(std::move(p));
                  });
}

ingest_batcher::batch ingest_batcher::take_locked() {
  batch b;
  const auto n = std::min(waiting_.size(), limits_.max_batch);
  b.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    b.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return b;
}

void ingest_batcher::send_locked(batch b) {
  if (b.empty()) return;
  ++in_flight_;
  batch_sizes_.observe(static_cast<double>(b.size()));
  // The rate-limit keys of the call, each once (a batch has few distinct ones).
  std::vector<const pending*> limited;
  std::vector<std::size_t> limit_of(b.size(), 0);  // 1-based index into `limited`, 0: none
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto& p = b[i];
    if (!p.policy) continue;
    std::size_t j = 0;
    while (j < limited.size() &&
           (limited[j]->policy != p.policy || limited[j]->subject != p.subject))
      ++j;
    if (j == limited.size()) limited.push_back(&p);
    limit_of[i] = j + 1;
  }
  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(1 + limited.size() + 10 * b.size());
  args.reserve(common_args_.size() + 1 + 5 * limited.size() + 12 * b.size());
  keys.push_back(inbound_key_);
  args = common_args_;
  args.push_back(std::to_string(limited.size()));
  for (const auto* p : limited) {
    const auto& policy = *p->policy;
    keys.push_back(keys_.ratelimit(policy.name, p->subject));
    args.emplace_back(ratelimit::to_string(policy.algorithm));
    args.push_back(std::to_string(policy.limit));
    args.push_back(std::to_string(policy.window_ms));
    args.push_back(std::to_string(policy.burst > 0 ? policy.burst : policy.limit));
    args.push_back(keys_.ratelimit(policy.name, ""));  // what its keys start with
  }
  for (std::size_t i = 0; i < b.size(); ++i) {
    auto& p = b[i];
    if (p.policy) {  // kept: when the script cannot decide its limit, it is submitted again
      keys.insert(keys.end(), p.keys.begin(), p.keys.end());
      args.insert(args.end(), p.args.begin(), p.args.end());
    } else {
      for (auto& key : p.keys) keys.push_back(std::move(key));
      for (auto& arg : p.args) args.push_back(std::move(arg));
      p.keys.clear();
      p.args.clear();
    }
    args.push_back(std::to_string(limit_of[i]));
  }
  auto ex = b.front().ex;
  auto shared = std::make_shared<batch>(std::move(b));
  redis_.eval(script_, std::move(keys), std::move(args), std::move(ex),
              [self = shared_from_this(), shared](boost::system::error_code ec, broker::reply r) {
                broker::group_commit_returned(self->mu_, self->in_flight_, self->waiting_, *shared,
                                              ec && ec != broker::errc::redis_error,
                                              [&] { self->send_locked(self->take_locked()); });
                self->finish(*shared, ec, r);
              });
}

void ingest_batcher::finish(batch& b, boost::system::error_code ec, const broker::reply& r) {
  using result = ingest_outcome::result;
  if (ec || !r.is_array() || r.elements().size() != b.size()) {
    ingest_outcome out;
    if (is_redis_full(r)) {  // counted by the broker
      out.what = result::full;
      out.detail = r.str();
    } else if (ec == broker::errc::redis_error || (!ec && r.is_error())) {
      out.what = result::refused;
      out.detail = r.is_error() ? r.str() : ec.message();
    } else {
      out.what = result::unavailable;
      out.detail = ec ? ec.message() : "unexpected reply from Redis: " + r.to_string();
    }
    for (auto& p : b) p.done(out, std::nullopt);
    return;
  }
  std::int64_t queued = 0;
  const auto first_ex = b.front().ex;  // (a message handed to check_apart is moved from)
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto& e = r.elements()[i];
    const auto& parts = e.elements();
    const auto* policy = b[i].policy;
    ingest_outcome out;
    std::optional<ratelimit::decision> limit;
    // {code, text, seq, error[, remaining, retry_after, reset]} (lua/ingest.lua)
    const bool verdict =
        policy && e.is_array() && parts.size() == 7 &&
        std::all_of(parts.begin() + 4, parts.end(), [](const auto& x) { return x.is_integer(); });
    const bool well_formed =
        e.is_array() && parts.size() >= 4 && parts[0].is_integer() &&
        (parts[0].integer() == -3 ? parts.size() == 4 : parts.size() == (policy ? 7u : 4u));
    const auto code = well_formed ? parts[0].integer() : 0;
    if (well_formed && policy && code == -3) {  // the script could not decide the limit
      check_apart(std::move(b[i]));
      continue;
    }
    if (well_formed && verdict) {
      limit.emplace();
      limit->allowed = code != -2;
      limit->limit = policy->limit;
      limit->remaining = parts[4].integer();
      limit->retry_after_ms = parts[5].integer();
      limit->reset_ms = parts[6].integer();
      limit->verdicts.push_back(
          {limit->allowed, limit->remaining, limit->retry_after_ms, limit->reset_ms});
      limiter_->count(*policy, limit->allowed);
    }
    if (!well_formed || (policy && !verdict) || code < -2 || (code == -2 && !policy)) {
      out.what = result::unavailable;
      out.detail = "unexpected reply from Redis: " + e.to_string();
      limit.reset();
    } else if (code == -2) {
      // Refused by its limit: nothing of it was written.
    } else if (code == 1) {
      out.what = result::queued;
      ++queued;
      // In the queue, the property's history and the conversation's recent messages.
      if (memory_) memory_->note_stored(3 * b[i].size);
      out.id = parts[1].str();
      out.detail = parts[3].str();
    } else if (code == 0) {
      out.what = result::duplicate;
      out.id = parts[1].str();
    } else if (broker::is_out_of_memory(parts[1].str())) {  // the script caught the OOM
      out.what = result::full;
      out.detail = parts[1].str();
      redis_.note_out_of_memory();
    } else {
      out.what = result::refused;
      out.detail = parts[1].str();
    }
    b[i].done(std::move(out), std::move(limit));
  }
  // The admin page's messages-in chart: one count per call, whatever its size (docs/console.md).
  count_this_minute(redis_, keys_, "in", queued, first_ex);
}

}  // namespace bellhop::gateway
