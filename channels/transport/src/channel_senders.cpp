#include "bellhop/transport/channel_senders.hpp"

#include <ctime>

#include "bellhop/channels/email.hpp"
#include "bellhop/channels/twilio.hpp"
#include "bellhop/channels/whatsapp.hpp"
#include "lua_scripts.hpp"
#include "bellhop/core/rate_limits.hpp"
#include "smtp_client.hpp"
#include "bellhop/transport/webchat.hpp"

namespace bellhop::gateway {
namespace {

// A send whose provider call got no answer (connect, TLS, timeout): try again later.
channels::send_result no_answer(const provider_response& r) {
  channels::send_result s;
  s.outcome = channels::send_outcome::transient;
  s.reason = r.error;
  return s;
}

const ratelimit::policy* policy(rate_limits* limits, std::string_view name) {
  if (!limits) return nullptr;
  auto it = limits->policies.find(std::string(name));
  return it == limits->policies.end() ? nullptr : &it->second;
}

outbound_channel whatsapp_lane(const whatsapp_config& c, std::shared_ptr<provider_client> client,
                               rate_limits* limits) {
  channels::whatsapp::settings s{c.app_secret, c.verify_token, c.access_token, c.phone_number_id,
                                 c.api_base_url};
  outbound_channel lane;
  lane.name = "whatsapp";
  lane.send = [s, client](const channels::outbound_message& m, boost::asio::any_io_executor ex,
                          std::function<void(channels::send_result)> done) {
    if (auto why = channels::whatsapp::recipient_error(m.to); !why.empty()) {
      return done({channels::send_outcome::permanent, "", "", std::move(why), {}});
    }
    client->call(channels::whatsapp::send_request(s, m), ex,
                 [done = std::move(done)](provider_response r) {
                   done(r.status == 0 ? no_answer(r)
                                      : channels::whatsapp::interpret_send(r.status, r.body,
                                                                           r.headers));
                 });
  };
  // Meta's throughput per business number, and its pair rate limit per recipient.
  const auto* sender = policy(limits, channels::whatsapp::business_number_limit.name);
  const auto* recipient = policy(limits, channels::whatsapp::recipient_limit.name);
  const std::string number = c.phone_number_id;
  lane.limits = [sender, recipient, number](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, number});
    if (recipient) keys.push_back({recipient, number + ":" + m.to});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  return lane;
}

outbound_channel sms_lane(const twilio_config& c, const std::string& public_url,
                          std::shared_ptr<provider_client> client, rate_limits* limits) {
  channels::twilio::settings s{c.account_sid, c.auth_token, c.from, c.api_base_url, public_url};
  outbound_channel lane;
  lane.name = "sms";
  lane.opt_out = true;  // a guest who replied STOP gets nothing more
  lane.send = [s, client](const channels::outbound_message& m, boost::asio::any_io_executor ex,
                          std::function<void(channels::send_result)> done) {
    client->call(channels::twilio::send_request(s, m), ex,
                 [done = std::move(done)](provider_response r) {
                   done(r.status == 0 ? no_answer(r)
                                      : channels::twilio::interpret_send(r.status, r.body,
                                                                         r.headers));
                 });
  };
  // Twilio's pace per sender number, its per-recipient window, and the property's caps.
  const auto* sender = policy(limits, channels::twilio::sender_limit.name);
  const auto* recipient = policy(limits, channels::twilio::recipient_limit.name);
  std::vector<const ratelimit::policy*> caps;
  for (const auto& limit : channels::twilio::property_limits)
    if (const auto* p = policy(limits, limit.name)) caps.push_back(p);
  const std::string from = c.from;
  lane.limits = [sender, recipient, caps, from](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, from});
    if (recipient) keys.push_back({recipient, from + ":" + m.to});
    for (const auto* p : caps) keys.push_back({p, m.property_id});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  return lane;
}

// "Sat, 28 Nov 2026 16:00:00 +0000": the Date header of a mail sent now.
std::string rfc5322_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &tm);  // C locale names
  return text;
}

outbound_channel email_lane(const email_config& c, std::chrono::milliseconds timeout,
                            std::size_t concurrency, rate_limits* limits, broker::broker& redis,
                            const contract::key_space& keys) {
  channels::email::settings s;
  s.webhook_secret = c.webhook_secret;
  s.from_address = c.from_address;
  s.from_name = c.from_name;
  auto smtp = std::make_shared<smtp_client>(
      smtp_settings{c.smtp_url, c.smtp_username, c.smtp_password, c.smtp_ca_file, timeout},
      std::min<std::size_t>(concurrency, 4));
  auto thread = std::make_shared<broker::script>(
      broker::script::make("email_thread", std::string(lua::email_thread)));
  outbound_channel lane;
  lane.name = "email";
  lane.send = [s, smtp, thread, &redis, &keys](const channels::outbound_message& m,
                                               boost::asio::any_io_executor ex,
                                               std::function<void(channels::send_result)> done) {
    // A reply stays in the guest's thread: In-Reply-To and References of the email it answers.
    auto send = [s, smtp, m, ex, done](channels::email::thread_info t) {
      auto mail = channels::email::build_mail(s, m, t, rfc5322_now());
      if (!mail.ok) {
        channels::send_result r;
        r.outcome = channels::send_outcome::permanent;
        r.reason = mail.error;
        return done(std::move(r));
      }
      const std::string id = mail.m.message_id;
      smtp->send(mail.m.envelope_from, mail.m.envelope_to, std::move(mail.m.data), ex,
                 [done, id](smtp_result r) {
                   done(channels::email::interpret_send(r.curl_code, r.smtp_code, r.error, id));
                 });
    };
    if (m.conversation_id.empty()) return send({});
    redis.eval(
        *thread,
        {keys.conversation_messages(m.conversation_id), keys.conversation(m.conversation_id)},
        {m.reply_to, m.property_id}, ex,
        [send, done](boost::system::error_code ec, broker::reply r) {
          if (ec || !r.is_array()) {  // Redis is away: try again later, threaded
            channels::send_result out;
            out.outcome = channels::send_outcome::transient;
            out.reason = "the email thread could not be read from Redis: " +
                         (ec ? ec.message() : r.to_string());
            return done(std::move(out));
          }
          channels::email::thread_info t;
          if (const auto& e = r.elements(); e.size() == 3) {
            t.subject = e[0].str();
            t.message_id = e[1].str();
            t.references = e[2].str();
          }
          send(std::move(t));
        });
  };
  // Mail providers cap a sender per minute/hour/day: Bellhop's property caps stand for them.
  std::vector<const ratelimit::policy*> caps;
  for (const auto& limit : channels::email::property_limits)
    if (const auto* p = policy(limits, limit.name)) caps.push_back(p);
  lane.limits = [caps](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    for (const auto* p : caps) keys.push_back({p, m.property_id});
    return keys;
  };
  return lane;
}

}  // namespace

std::vector<outbound_channel> make_outbound_channels(const config& cfg,
                                                     std::shared_ptr<provider_client> client,
                                                     rate_limits* limits, broker::broker& redis,
                                                     const contract::key_space& keys) {
  std::vector<outbound_channel> lanes;
  if (cfg.channels.whatsapp) lanes.push_back(whatsapp_lane(*cfg.channels.whatsapp, client, limits));
  if (cfg.channels.twilio)
    lanes.push_back(sms_lane(*cfg.channels.twilio, cfg.public_url, client, limits));
  if (cfg.channels.email)
    lanes.push_back(email_lane(*cfg.channels.email,
                               std::chrono::milliseconds(cfg.outbound.request_timeout_ms),
                               static_cast<std::size_t>(cfg.outbound.concurrency), limits, redis,
                               keys));
  if (cfg.channels.webchat) lanes.push_back(webchat_lane(*cfg.channels.webchat, redis, keys));
  const auto owners = channel_properties(cfg);
  for (auto& lane : lanes) lane.property_id = owners.at(lane.name);
  return lanes;
}

}  // namespace bellhop::gateway
