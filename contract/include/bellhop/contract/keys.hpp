#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "bellhop/contract/id_limits.hpp"

namespace bellhop::contract {

// Ids that become parts of key names, as every entry point validates them.
// A property id: 1-64 letters, digits, '-', '_' or '.'.
inline bool is_property_id(std::string_view s) {
  return !s.empty() && s.size() <= id_limits::property_id &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}
// A conversation id: "c_" + 32 lowercase hex digits.
inline bool is_conversation_id(std::string_view s) {
  return s.size() == id_limits::conversation_id && s.substr(0, 2) == "c_" &&
         std::all_of(s.begin() + 2, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// `text` matched literally in a Redis glob pattern (SCAN MATCH, ACL key patterns): a key prefix
// may hold * ? [ ] or \, which are escaped.
inline std::string glob_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The Redis key names of the AI-engine contract (README, docs/ai-engine.md), with the
// configured prefix. One place builds them so the names never drift apart.
class key_space {
 public:
  explicit key_space(std::string prefix = {}) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const noexcept { return prefix_; }

  std::string inbound() const { return k("inbound:messages"); }
  std::string inbound_processing(std::string_view consumer) const {
    return k("inbound:messages:processing:", consumer);
  }
  std::string inbound_processing_pattern() const { return k("inbound:messages:processing:*"); }
  std::string inbound_heartbeat(std::string_view consumer) const {
    return k("inbound:messages:heartbeat:", consumer);
  }
  // Set of consumer names: consumers SADD themselves with every heartbeat; the reaper reads it.
  std::string inbound_consumers() const { return k("inbound:messages:consumers"); }
  std::string inbound_dead() const { return k("inbound:messages:dead"); }
  std::string inbound_deliveries() const { return k("inbound:messages:deliveries"); }
  std::string reaper_lock() const { return k("inbound:messages:reaper"); }
  // Webhook traffic for an account no property has (docs/properties.md): kept for the operator.
  std::string inbound_unrouted() const { return k("inbound:unrouted"); }
  std::string outbound(std::string_view channel) const { return k("outbound:", channel); }
  // The outbound dispatcher's state per channel: messages ready to send by priority (zset,
  // score = priority * 1e12 + arrival), in-flight sends of one process (list), retries and
  // rate-limited sends by due time (zset), dead letters (list), the pause flag, counters (hash).
  std::string outbound_ready(std::string_view channel) const {
    return k("outbound:", channel, ":ready");
  }
  std::string outbound_processing(std::string_view channel, std::string_view gateway) const {
    return k("outbound:", channel, ":processing:", gateway);
  }
  // What this process's intake took from outbound:<channel> and has not filed yet (hash: take
  // number -> element); outbound_recover.lua hands a silent process's back to the queue, in
  // take order.
  std::string outbound_intake(std::string_view channel, std::string_view gateway) const {
    return k("outbound:", channel, ":intake:", gateway);
  }
  // The numbers of this process's last claim (and the messages it took) and last batch of
  // outcomes recorded on a channel (hash {claim, finish}): a call whose answer was lost is
  // made good by the next one, and one that reaches Redis late does nothing.
  std::string outbound_calls(std::string_view channel, std::string_view gateway) const {
    return k("outbound:", channel, ":calls:", gateway);
  }
  std::string outbound_delayed(std::string_view channel) const {
    return k("outbound:", channel, ":delayed");
  }
  // The ids of the delayed messages that wait for their property's quiet hours to end (zset,
  // score = that end, epoch ms): what the queue stats count as `quiet`.
  std::string outbound_quiet(std::string_view channel) const {
    return k("outbound:", channel, ":quiet");
  }
  std::string outbound_dead(std::string_view channel) const {
    return k("outbound:", channel, ":dead");
  }
  std::string outbound_paused(std::string_view channel) const {
    return k("outbound:", channel, ":paused");
  }
  std::string outbound_stats(std::string_view channel) const {
    return k("outbound:", channel, ":stats");
  }
  std::string outbound_arrivals(std::string_view channel) const {
    return k("outbound:", channel, ":arrivals");
  }
  // Our message id for a provider's message id (status callbacks name the provider's).
  std::string outbound_provider_id(std::string_view channel, std::string_view provider_id) const {
    return k("outbound:", channel, ":provider:", provider_id);
  }
  // One send per idempotency_key of a property, whoever retries: the value is the message id.
  // Scoped by property: one property's key can never answer for another's message.
  std::string outbound_idempotency(std::string_view property, std::string_view key) const {
    return k("idempotency:outbound:", property, ":", key);
  }
  // Before the keys were scoped (read during the upgrade only, see docs/upgrading.md).
  std::string legacy_outbound_idempotency(std::string_view key) const {
    return k("idempotency:outbound:", key);
  }
  // Bellhop processes that send, with their heartbeat deadline (zset, score = epoch ms): the
  // processing lists of one whose deadline passed are recovered by the others.
  std::string outbound_gateways() const { return k("outbound:gateways"); }
  // Recipients that opted out (SMS STOP): sends to them fail at once.
  std::string opted_out(std::string_view channel, std::string_view recipient) const {
    return k("optout:", channel, ":", recipient);
  }
  // An external id already taken in by a property (inbound idempotency): the value is the
  // first message's id. Scoped by property: one property's external ids never make another
  // property's message a duplicate.
  std::string dedup(std::string_view property, std::string_view channel,
                    std::string_view external_id) const {
    return k("dedup:", property, ":", channel, ":", external_id);
  }
  // Before the keys were scoped (read during the upgrade only, see docs/upgrading.md).
  std::string legacy_dedup(std::string_view channel, std::string_view external_id) const {
    return k("dedup:", channel, ":", external_id);
  }
  std::string message(std::string_view id) const { return k("message:", id); }
  // Messages in and out per minute (hash: in, out; expires after 2 h): the admin page's chart.
  // `epoch_minute`: Unix time in whole minutes.
  std::string stats_minute(std::int64_t epoch_minute) const {
    return k("stats:minute:", std::to_string(epoch_minute));
  }
  // The last success and failure of each account of a channel, its webhooks and its sends
  // (hash: <account>:webhook_ok_at, :webhook_error_at, :webhook_error, :send_ok_at, …).
  std::string account_health(std::string_view channel) const {
    return k("account_health:", channel);
  }
  // The name of one rate-limit policy's state for one subject (an adapter key's name, a
  // sender, …): a sliding window's key; for a fixed window and gcra the subject names a field
  // of the policy's hash of the current slice of time, `ratelimit:<policy>@<start>…`, and this
  // name is not itself a key (docs/redis-keys.md).
  std::string ratelimit(std::string_view policy, std::string_view subject) const {
    return k("ratelimit:", policy, ":", subject);
  }
  // Pub/sub channel of a property's dashboard events (not a key, but prefixed alike).
  std::string property_channel(std::string_view property) const {
    return k("property:", property, ":conversations");
  }
  std::string property_events(std::string_view property) const {
    return k("property:", property, ":events");
  }
  std::string property_seq(std::string_view property) const {
    return k("property:", property, ":seq");
  }
  // Conversations by last activity (zset, score = epoch ms) and each one's record and recent
  // messages (dashboards load these on start and after recovered:false).
  std::string property_conversations_index(std::string_view property) const {
    return k("property:", property, ":conversation_index");
  }
  // Guest messages staff have not read, per conversation (hash cid -> count; a conversation's
  // entry goes when staff read it): the property's unread total is the sum.
  std::string property_unread(std::string_view property) const {
    return k("property:", property, ":unread");
  }
  // Conversations with staff whose guest waits: cid scored by when the wait began (epoch ms),
  // until staff read or answer; the escalation notifies the property's contact once it is
  // older than escalation.after_s (docs/properties.md, "Escalation").
  std::string property_escalation(std::string_view property) const {
    return k("property:", property, ":escalation");
  }
  std::string conversation(std::string_view conversation_id) const {
    return k("conversation:", conversation_id);
  }
  std::string conversation_messages(std::string_view conversation_id) const {
    return k("conversation:", conversation_id, ":messages");
  }
  // The AI's replies held while staff have the conversation (list of message.status data, newest
  // first, at most 10): the suggestions an inbox shows. The scripts name it conversation() +
  // ":held"; the conversation's release deletes it.
  std::string conversation_held(std::string_view conversation_id) const {
    return k("conversation:", conversation_id, ":held");
  }
  // Staff dashboard sessions and who is online per property.
  std::string session(std::string_view session_id) const { return k("session:", session_id); }
  std::string property_presence(std::string_view property) const {
    return k("property:", property, ":presence");
  }
  // The console's accounts (docs/console.md, "Sign-in"): the set of user names, each user's
  // hash (password = Argon2id string, role, properties, disabled, created_at, changed_at), the
  // ids of the user's sessions, and each session's hash (user, csrf, created_at, expires_at;
  // TTL). A session id is 32 hex digits of the SHA-256 of its cookie: Redis never holds a cookie.
  std::string console_users() const { return k("console:users"); }
  std::string console_user(std::string_view name) const { return k("console:user:", name); }
  std::string console_user_sessions(std::string_view name) const {
    return k("console:user:", name, ":sessions");
  }
  std::string console_session(std::string_view session_id) const {
    return k("console:session:", session_id);
  }
  // Pub/sub channel on which ended console sessions are announced: {"user":"<name>"} or
  // {"session":"<session_id>"} (docs/console.md, docs/realtime.md "Ending a console session").
  std::string console_revoked() const { return k("console:revoked"); }
  // Web chat: replies to a guest not yet confirmed by their browser (hash id -> frame, expiring
  // after channels.webchat.hold_s), and the pub/sub channel their open sockets listen on.
  std::string webchat_outbox(std::string_view guest) const { return k("webchat:", guest, ":outbox"); }
  std::string webchat_channel(std::string_view guest) const { return k("webchat:", guest); }
  // Outbox frames Bellhop could not read (list, newest at the left): {"reason","guest","id",
  // "element","failed_at"}.
  std::string webchat_dead() const { return k("webchat:dead"); }
  // A staff reply already queued under this client_msg_id (the WebSocket `reply` frame), per
  // property: the same staff member's ids in two properties never meet.
  std::string reply_idempotency(std::string_view property, std::string_view subject,
                                std::string_view client_msg_id) const {
    return k("idempotency:reply:", property, ":", subject, ":", client_msg_id);
  }
  // Before the keys were scoped (read during the upgrade only, see docs/upgrading.md).
  std::string legacy_reply_idempotency(std::string_view subject,
                                       std::string_view client_msg_id) const {
    return k("idempotency:reply:", subject, ":", client_msg_id);
  }

 private:
  template <typename... Parts>
  std::string k(Parts... parts) const {
    std::string out = prefix_;
    (out.append(parts), ...);
    return out;
  }

  std::string prefix_;
};

}  // namespace bellhop::contract
