#include "bellhop/outbound/staff_replies.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/any_io_executor.hpp>
#include <map>

#include "bellhop/contract/ids.hpp"
#include "bellhop/core/redis_full.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/outbound/outbound.hpp"
#include "bellhop/server/json_response.hpp"
#include "bellhop/outbound/lua.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;

constexpr int idempotency_ttl_s = 86400;  // a resend a day later is a new message

struct context {
  broker::broker& redis;
  rate_limits* limits;
  boost::asio::any_io_executor ex;
  const redis_memory* memory;
  const contract::key_space keys;
  const outbound_options options;  // options.channels: each channel's accounts
  const broker::script script = broker::script::make("staff_reply", std::string(lua::staff_reply));
  const broker::script target = broker::script::make("reply_target", std::string(lua::reply_target));
};

using json::put;

contract::reply_result failed(std::string code, std::string message) {
  return {{}, std::move(code), std::move(message)};
}

void queue(const std::shared_ptr<context>& ctx, contract::reply_request req,
           contract::reply_callback done, const std::vector<broker::reply>& conversation) {
  // reply_target.lua: property_id channel guest last_inbound_id
  if (conversation.size() != 4 || !conversation[0].is_string() ||
      conversation[0].str() != req.property_id || !conversation[1].is_string() ||
      !conversation[2].is_string()) {
    return done(failed("not_found", "no such conversation in this property"));
  }
  const std::string& channel = conversation[1].str();
  // A conversation's channel is its property's; one that names a channel configured here for
  // another property (an adapter's inbound message) is not answered from that one's number.
  std::string why;
  if (auto owner = ctx->options.channels.find(channel);
      owner != ctx->options.channels.end() &&
      !pick_account(channel, owner->second, req.property_id, "", "", why))
    return done(failed("forbidden", "this conversation's channel sends for another property"));
  const std::string& guest = conversation[2].str();
  const std::string reply_to = conversation[3].is_string() ? conversation[3].str() : "";
  const auto now = std::chrono::system_clock::now();
  const auto id = contract::make_message_id(now);
  const auto created_at = contract::format_timestamp(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());

  normalized_outbound filed;
  auto& m = filed.msg;
  m.id = id;
  m.property_id = req.property_id;
  m.channel = channel;
  m.to = guest;
  m.text = req.text;
  m.conversation_id = req.conversation_id;
  m.reply_to = reply_to;
  m.priority = 3;  // a person is waiting on both ends: high
  filed.idempotency_key = "staff:" + req.subject + ":" + req.client_msg_id;
  filed.sent_by = req.subject;
  filed.source = "staff";  // sent while the conversation is with staff (docs/outbound.md)
  filed.created_at = created_at;

  // The canonical outbound message (docs/outbound.md), plus who sent it and when.
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  put(w, "id", m.id);
  put(w, "property_id", m.property_id);
  put(w, "channel", m.channel);
  put(w, "to", m.to);
  put(w, "text", m.text);
  put(w, "conversation_id", m.conversation_id);
  json::put_or_null(w, "reply_to", m.reply_to);
  w.Key("priority");
  w.Int(m.priority);
  put(w, "idempotency_key", filed.idempotency_key);
  put(w, "sent_by", filed.sent_by);
  put(w, "source", filed.source);
  put(w, "created_at", filed.created_at);
  put(w, "direction", "outbound");
  w.EndObject();
  std::string message(out.GetString(), out.GetSize());

  // The intake files the message under this record only as the same message (its digest): the
  // JSON it will file, written from the typed message rather than read back from `message`.
  const std::string digest =
      file_outbound(filed, channel).empty() ? outbound_digest(filed.json) : "-";

  const auto& k = ctx->keys;
  std::vector<std::string> keys = {
      k.reply_idempotency(req.property_id, req.subject, req.client_msg_id),
      k.outbound(channel),
      k.message(id),
      k.property_seq(req.property_id),
      k.property_events(req.property_id),
      k.property_conversations_index(req.property_id),
      k.conversation(req.conversation_id),
      k.conversation_messages(req.conversation_id),
      k.legacy_reply_idempotency(req.subject, req.client_msg_id),
      k.property_escalation(req.property_id)};
  std::vector<std::string> args = {id,
                                   std::move(message),
                                   std::to_string(idempotency_ttl_s),
                                   std::to_string(ctx->options.message_ttl_s),
                                   k.property_channel(req.property_id),
                                   std::to_string(ctx->options.history_max),
                                   req.property_id,
                                   channel,
                                   req.conversation_id,
                                   created_at,
                                   std::to_string(ms.count()),
                                   req.subject,
                                   std::to_string(ctx->options.conversation_ttl_s),
                                   std::to_string(ctx->options.recent_messages),
                                   digest,
                                   k.message("")};
  ctx->redis.eval(
      ctx->script, std::move(keys), std::move(args), ctx->ex,
      [done = std::move(done)](error_code ec, broker::reply r) {
        if (is_redis_full(r)) return done(failed("redis_full", std::string(redis_full_message)));
        const auto& el = r.elements();
        if (ec || !r.is_array() || el.size() < 2 || !el[0].is_integer() || !el[1].is_string())
          return done(failed("unavailable",
                             "the reply was not queued (Redis is "
                             "unavailable); send it again"));
        if (el[0].integer() < 0)
          return done(failed("not_found", "no such conversation in this property"));
        done({el[1].str(), {}, {}});  // queued now, or the first time
      });
}

// Reads the conversation (reply_target.lua), then queues (staff_reply.lua).
void find_and_queue(const std::shared_ptr<context>& ctx, contract::reply_request req,
                    contract::reply_callback done) {
  // Built before the call: the callback takes `req` by move.
  std::vector<std::string> keys = {ctx->keys.conversation(req.conversation_id),
                                   ctx->keys.conversation_messages(req.conversation_id)};
  ctx->redis.eval(
      ctx->target, std::move(keys), {}, ctx->ex,
      [ctx, req = std::move(req), done = std::move(done)](error_code ec,
                                                          broker::reply r) mutable {
        if (ec || !r.is_array())
          return done(failed("unavailable",
                             "the reply was not queued (Redis is unavailable); send it again"));
        const auto& e = r.elements();
        if (e.size() == 4 && e[0].is_string())
          return queue(ctx, std::move(req), std::move(done), e);
        // The conversation is gone (expired); a resend of a reply queued before still gets
        // its first id.
        auto key = ctx->keys.reply_idempotency(req.property_id, req.subject, req.client_msg_id);
        ctx->redis.post({"GET", std::move(key)}, ctx->ex,
                        [done = std::move(done)](error_code ec2, broker::reply first) {
                          if (!ec2 && first.is_string()) return done({first.str(), {}, {}});
                          done(failed("not_found", "no such conversation in this property"));
                        });
      });
}

}  // namespace

contract::reply_queuer make_staff_reply_queuer(broker::broker& redis,
                                               const contract::key_space& keys,
                                               const outbound_options& options, rate_limits* limits,
                                               boost::asio::any_io_executor ex,
                                               const redis_memory* memory) {
  auto ctx =
      std::make_shared<context>(context{redis, limits, std::move(ex), memory, keys, options});
  return [ctx](contract::reply_request req, contract::reply_callback done) {
    if (refuse_new_data(ctx->memory, ctx->redis))
      return done(failed("redis_full", std::string(redis_full_message)));
    const auto* policy = ctx->limits ? ctx->limits->staff_replies : nullptr;
    if (!policy) return find_and_queue(ctx, std::move(req), std::move(done));
    // Per session: one stuck or scripted dashboard cannot flood the guests.
    std::vector<ratelimit::limit_key> limit = {{policy, req.session_id}};
    ctx->limits->limiter.check(
        limit, 1, ctx->ex,
        [ctx, req = std::move(req), done = std::move(done)](ratelimit::decision d) mutable {
          if (d.allowed) return find_and_queue(ctx, std::move(req), std::move(done));
          if (d.degraded)
            return done(failed("unavailable",
                               "the reply was not queued (Redis is unavailable); send it again"));
          auto r = failed("rate_limited", "too many replies from this session; send it again in " +
                                              std::to_string(ceil_seconds(d.retry_after_ms, 1)) +
                                              " s");
          r.retry_after_ms = d.retry_after_ms;
          done(std::move(r));
        });
  };
}

}  // namespace bellhop::gateway
