#include "channel_senders.hpp"

#include "bellhop/channels/twilio.hpp"
#include "bellhop/channels/whatsapp.hpp"
#include "rate_limits.hpp"

namespace bellhop::gateway {
namespace {

// A send whose provider call got no answer (connect, TLS, timeout): try again later.
channels::send_result no_answer(const provider_response& r) {
  channels::send_result s;
  s.outcome = channels::send_outcome::transient;
  s.reason = r.error;
  return s;
}

const ratelimit::policy* policy(rate_limits* limits, const std::string& name) {
  if (!limits) return nullptr;
  auto it = limits->policies.find(name);
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
    client->call(channels::whatsapp::send_request(s, m), ex,
                 [done = std::move(done)](provider_response r) {
                   done(r.status == 0 ? no_answer(r)
                                      : channels::whatsapp::interpret_send(r.status, r.body,
                                                                           r.headers));
                 });
  };
  // Meta's throughput per business number, and its pair rate limit per recipient.
  const auto* sender = policy(limits, "whatsapp_business_number");
  const auto* recipient = policy(limits, "whatsapp_recipient");
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
  const auto* sender = policy(limits, "twilio_sms_sender");
  const auto* recipient = policy(limits, "twilio_sms_recipient");
  std::vector<const ratelimit::policy*> caps;
  for (const char* name : {"sms_property_minute", "sms_property_hour", "sms_property_day"})
    if (const auto* p = policy(limits, name)) caps.push_back(p);
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

}  // namespace

std::vector<outbound_channel> make_outbound_channels(const config& cfg,
                                                     std::shared_ptr<provider_client> client,
                                                     rate_limits* limits) {
  std::vector<outbound_channel> lanes;
  if (cfg.channels.whatsapp) lanes.push_back(whatsapp_lane(*cfg.channels.whatsapp, client, limits));
  if (cfg.channels.twilio)
    lanes.push_back(sms_lane(*cfg.channels.twilio, cfg.public_url, client, limits));
  return lanes;
}

}  // namespace bellhop::gateway
