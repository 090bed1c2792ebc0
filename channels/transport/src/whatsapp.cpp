#include "bellhop/channels/whatsapp.hpp"

#include <map>

#include "transport_common.hpp"

namespace bellhop::gateway {
namespace {

channels::whatsapp::settings settings_of(const whatsapp_config& c, const whatsapp_account& a) {
  return {a.app_secret, a.verify_token, a.access_token, a.phone_number_id, c.api_base_url};
}

// The GET subscription challenge: any account's verify token answers it (one Meta app may
// subscribe several numbers, and the numbers of several apps may share this URL).
channels::webhook_result verify(const whatsapp_config& wa, const channels::webhook& hook) {
  channels::webhook_result r;
  for (const auto& a : wa.accounts) {
    r = channels::whatsapp::verify_subscription(settings_of(wa, a), hook);
    if (r.accepted() || r.status != 403) return r;
  }
  return r;
}

void whatsapp(const ctx_ptr& c, const request& req, responder res) {
  const auto& wa = c->opts.whatsapp;
  if (!wa) {
    return res.send(not_configured(c, req, "whatsapp", "channels.whatsapp"));
  }
  const auto hook = as_webhook(req);
  if (req.method() == http::verb::get) {
    auto r = verify(*wa, hook);
    c->results.labels({"whatsapp", r.accepted() ? "verified" : "refused"}).inc();
    return res.send(r.accepted() ? accepted(req, r) : refused(req, r));
  }
  // Accounts of different Meta apps have different app secrets: the one that signed the body
  // verifies it, and only its accounts take its messages.
  const std::string* signature = hook.header("x-hub-signature-256");
  const whatsapp_account* signer = &wa->accounts.front();
  for (const auto& a : wa->accounts) {
    if (signature && channels::whatsapp::signature_valid(a.app_secret, hook.body, *signature)) {
      signer = &a;
      break;
    }
  }
  auto r = channels::whatsapp::parse_webhook(settings_of(*wa, *signer), hook);
  if (!r.accepted()) {
    c->results.labels({"whatsapp", "refused"}).inc();
    return res.send(refused(c, "whatsapp", signer->phone_number_id, req, res, r));
  }
  if (!c->svc.redis) return res.send(starting(req));
  std::map<std::string, routed_account> known;
  for (const auto& a : wa->accounts) {
    if (a.app_secret == signer->app_secret)
      known.emplace(a.phone_number_id, routed_account{a.phone_number_id, a.property_id});
  }
  auto route = [&known](const std::string& number) -> const routed_account* {
    auto it = known.find(number);
    return it == known.end() ? nullptr : &it->second;
  };
  store_all(c, "whatsapp", route, std::move(r), req, std::move(res), true);
}

}  // namespace

void add_whatsapp_routes(router& routes, const ctx_ptr& c) {
  for (auto verb : {http::verb::get, http::verb::post}) {
    routes.add(verb, "/v1/webhooks/whatsapp",
               [c](const request& req, responder res) { whatsapp(c, req, std::move(res)); });
  }
}

outbound_channel whatsapp_lane(const whatsapp_config& c, std::shared_ptr<provider_client> client,
                               rate_limits* limits) {
  // Each number sends with its own token, from its own path (/<phone_number_id>/messages).
  std::map<std::string, channels::whatsapp::settings> numbers;
  for (const auto& a : c.accounts) numbers.emplace(a.phone_number_id, settings_of(c, a));
  outbound_channel lane;
  lane.name = "whatsapp";
  lane.send = account_http_send(
      std::move(numbers), "a WhatsApp number", std::move(client),
      [](const channels::outbound_message& m) { return channels::whatsapp::recipient_error(m.to); },
      channels::whatsapp::send_request, channels::whatsapp::interpret_send);
  // Meta's throughput per business number, and its pair rate limit per recipient: each number
  // is its own subject.
  const auto* sender = policy(limits, channels::whatsapp::business_number_limit.name);
  const auto* recipient = policy(limits, channels::whatsapp::recipient_limit.name);
  lane.limits = [sender, recipient](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, m.account});
    if (recipient) keys.push_back({recipient, m.account + ":" + m.to});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  // The customer-service window, decided when the message is taken to send (docs/outbound.md).
  if (c.service_window_s == 0) return lane;
  lane.reads_last_inbound = true;
  const std::int64_t window_ms = std::int64_t{c.service_window_s} * 1000;
  lane.admit = [window_ms](channels::outbound_message& m, std::int64_t now_ms) {
    return channels::whatsapp::admit(m, now_ms, window_ms);
  };
  return lane;
}

}  // namespace bellhop::gateway
