#include <map>

#include "bellhop/channels/form.hpp"
#include "bellhop/channels/twilio.hpp"
#include "transport_common.hpp"

namespace bellhop::gateway {
namespace {

channels::twilio::settings settings_of(const twilio_config& c, const twilio_account& a,
                                       const std::string& public_url) {
  return {a.account_sid, a.auth_token, a.from, c.api_base_url, public_url};
}

// A sender that is a messaging service (MG…) has no one number guests write to.
bool is_number(std::string_view from) {
  return !from.empty() && from[0] == '+';
}

// The account a Twilio webhook is for: of the accounts of its AccountSid, the one whose number
// is `number` (To of an SMS, From of a status), else the account's messaging service, else
// nullptr (then `signer` is still an account of that AccountSid, whose auth token verifies the
// webhook). Without an account of that AccountSid, `signer` is the first account: the adapter
// refuses the webhook (403).
const twilio_account* account_for(const twilio_config& tw, const channels::webhook& hook,
                                  std::string_view number_field, const twilio_account*& signer) {
  signer = &tw.accounts.front();
  auto fields = channels::parse_form(hook.body);
  if (!fields) return nullptr;  // the adapter says what is wrong with it
  const std::string* sid = channels::form_value(*fields, "AccountSid");
  const std::string* number = channels::form_value(*fields, number_field);
  const twilio_account* service = nullptr;
  bool first = true;
  for (const auto& a : tw.accounts) {
    if (!sid || a.account_sid != *sid) continue;
    if (first) signer = &a;
    first = false;
    if (number && a.from == *number) return signer = &a;
    if (!service && !is_number(a.from)) service = &a;
  }
  if (service) signer = service;
  return service;
}

// Twilio: an incoming SMS (`sms`) or a status callback (`status`).
void twilio(const ctx_ptr& c, const request& req, responder res, bool status) {
  const auto& tw = c->opts.twilio;
  if (!tw) {
    return res.send(not_configured(c, req, "sms", "channels.twilio"));
  }
  const auto hook = as_webhook(req);
  const twilio_account* signer = nullptr;
  const twilio_account* account = account_for(*tw, hook, status ? "From" : "To", signer);
  const auto s = settings_of(*tw, *signer, c->opts.public_url);
  auto r = status ? channels::twilio::parse_status_webhook(s, hook)
                  : channels::twilio::parse_sms_webhook(s, hook);
  if (!r.accepted()) {
    c->results.labels({"sms", "refused"}).inc();
    return res.send(refused(c, "sms", signer->from, req, res, r));
  }
  if (!c->svc.redis) return res.send(starting(req));
  // A status moves the record of a message Bellhop sent, whichever number sent it.
  std::optional<routed_account> to;
  if (account) to = routed_account{account->from, account->property_id};
  auto route = [&to](const std::string&) -> const routed_account* { return to ? &*to : nullptr; };
  store_all(c, "sms", route, std::move(r), req, std::move(res), false);
}

}  // namespace

void add_sms_routes(router& routes, const ctx_ptr& c) {
  routes.add(http::verb::post, "/v1/webhooks/twilio/sms", [c](const request& req, responder res) {
    twilio(c, req, std::move(res), false);
  });
  routes.add(http::verb::post, "/v1/webhooks/twilio/status",
             [c](const request& req, responder res) { twilio(c, req, std::move(res), true); });
}

outbound_channel sms_lane(const twilio_config& c, const std::string& public_url,
                          std::shared_ptr<provider_client> client, rate_limits* limits) {
  // Each sender calls its own account's API (/Accounts/<sid>/Messages.json) with its token.
  std::map<std::string, channels::twilio::settings> senders;
  for (const auto& a : c.accounts) senders.emplace(a.from, settings_of(c, a, public_url));
  outbound_channel lane;
  lane.name = "sms";
  lane.opt_out = true;  // a guest who replied STOP gets nothing more
  lane.send = account_http_send(
      std::move(senders), "a Twilio sender", std::move(client),
      [](const channels::outbound_message&) { return std::string(); },
      channels::twilio::send_request, channels::twilio::interpret_send);
  // Twilio's pace per sender number, its per-recipient window, and the property's caps.
  const auto* sender = policy(limits, channels::twilio::sender_limit.name);
  const auto* recipient = policy(limits, channels::twilio::recipient_limit.name);
  std::vector<const ratelimit::policy*> caps;
  for (const auto& limit : channels::twilio::property_limits)
    if (const auto* p = policy(limits, limit.name)) caps.push_back(p);
  lane.limits = [sender, recipient, caps](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, m.account});
    if (recipient) keys.push_back({recipient, m.account + ":" + m.to});
    for (const auto* p : caps) keys.push_back({p, m.property_id});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  return lane;
}

}  // namespace bellhop::gateway
