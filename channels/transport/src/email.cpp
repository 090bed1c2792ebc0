#include "transport_common.hpp"

#include <ctime>

#include "bellhop/channels/email.hpp"
#include "smtp_client.hpp"

namespace bellhop::gateway {
namespace {

// "Sat, 28 Nov 2026 16:00:00 +0000": the Date header of a mail sent now.
std::string rfc5322_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &tm);  // C locale names
  return text;
}

// POST /v1/webhooks/email: one guest email in the documented JSON (docs/http-api.md), signed
// with channels.email.webhook_secret. Any hotel address it was sent to belongs to the property.
void email(const ctx_ptr& c, const request& req, responder res) {
  const auto& em = c->opts.email;
  if (!em) {
    return res.send(not_configured(c, req, "email", "channels.email"));
  }
  channels::email::settings s;
  s.webhook_secret = em->webhook_secret;
  s.from_address = em->from_address;
  s.from_name = em->from_name;
  auto r = channels::email::parse_webhook(s, as_webhook(req));
  if (!r.accepted()) {
    c->results.labels({"email", "refused"}).inc();
    return res.send(refused(req, r));
  }
  if (!c->svc.redis) return res.send(starting(req));
  store_all(c, "email", "", em->property_id, std::move(r), req, std::move(res));
}

}  // namespace

void add_email_routes(router& routes, const ctx_ptr& c) {
  routes.add(http::verb::post, "/v1/webhooks/email",
             [c](const request& req, responder res) { email(c, req, std::move(res)); });
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

}  // namespace bellhop::gateway
