#include "bellhop/channels/email.hpp"

#include <ctime>
#include <map>

#include "bellhop/contract/secrets.hpp"
#include "smtp_client.hpp"
#include "transport_common.hpp"

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

channels::email::settings settings_of(const email_account& a) {
  channels::email::settings s;
  s.webhook_secret = a.webhook_secret;
  s.from_address = a.address;
  s.from_name = a.from_name;
  return s;
}

// POST /v1/webhooks/email: one guest email in the documented JSON (docs/http-api.md), signed
// with the webhook secret of the mailbox it was sent to (channels.email.accounts[].
// webhook_secret, else the section's). The mailbox (`to`) says the property.
void email(const ctx_ptr& c, const request& req, responder res) {
  const auto& em = c->opts.email;
  if (!em) {
    return res.send(not_configured(c, req, "email", "channels.email"));
  }
  const auto hook = as_webhook(req);
  // The secret that signed the body, of those configured (the adapter checks it again, and
  // refuses when none did).
  std::string secret = em->accounts.front().webhook_secret;
  if (const std::string* given = hook.header("x-bellhop-signature")) {
    std::string lower = *given;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::vector<std::string> secrets{em->webhook_secret};
    for (const auto& a : em->accounts) secrets.push_back(a.webhook_secret);
    for (const auto& candidate : secrets) {
      if (!candidate.empty() &&
          contract::constant_time_equal(channels::email::signature(candidate, hook.body), lower)) {
        secret = candidate;
        break;
      }
    }
  }
  channels::email::settings s;
  s.webhook_secret = secret;
  auto r = channels::email::parse_webhook(s, hook);
  if (!r.accepted()) {
    c->results.labels({"email", "refused"}).inc();
    const email_account* signer = &em->accounts.front();
    for (const auto& a : em->accounts)
      if (a.webhook_secret == secret) signer = &a;
    return res.send(refused(c, "email", signer->id, req, res, r));
  }
  // A known mailbox takes only what its own secret signed; an unknown one what the section's
  // secret (or, without one, any mailbox's) signed, kept on inbound:unrouted.
  std::map<std::string, routed_account> known;
  for (const auto& a : em->accounts) known.emplace(a.id, routed_account{a.id, a.property_id});
  for (const auto& g : r.messages) {
    const email_account* mailbox = nullptr;
    for (const auto& a : em->accounts)
      if (a.id == g.business) mailbox = &a;
    const bool ok = mailbox ? mailbox->webhook_secret == secret
                            : em->webhook_secret.empty() || em->webhook_secret == secret;
    if (!ok) {
      c->results.labels({"email", "refused"}).inc();
      return res.send(
          refused(req, channels::webhook_result::refuse(
                           401, "invalid_signature", "X-Bellhop-Signature is not this mailbox's")));
    }
  }
  if (!c->svc.redis) return res.send(starting(req));
  auto route = [&known](const std::string& address) -> const routed_account* {
    auto it = known.find(address);
    return it == known.end() ? nullptr : &it->second;
  };
  store_all(c, "email", route, std::move(r), req, std::move(res), true);
}

}  // namespace

void add_email_routes(router& routes, const ctx_ptr& c) {
  routes.add(http::verb::post, "/v1/webhooks/email",
             [c](const request& req, responder res) { email(c, req, std::move(res)); });
}

outbound_channel email_lane(const email_config& c, std::chrono::milliseconds timeout,
                            std::size_t concurrency, rate_limits* limits, broker::broker& redis,
                            const contract::key_space& keys) {
  // Each mailbox sends from its own address, through its own SMTP server and login.
  struct mailbox {
    channels::email::settings s;
    std::shared_ptr<smtp_client> smtp;
  };
  auto mailboxes = std::make_shared<std::map<std::string, mailbox>>();
  for (const auto& a : c.accounts) {
    mailboxes->emplace(
        a.id, mailbox{settings_of(a), std::make_shared<smtp_client>(
                                          smtp_settings{a.smtp_url, a.smtp_username,
                                                        a.smtp_password, a.smtp_ca_file, timeout},
                                          std::min<std::size_t>(concurrency, 4))});
  }
  auto thread = std::make_shared<broker::script>(
      broker::script::make("email_thread", std::string(lua::email_thread)));
  outbound_channel lane;
  lane.name = "email";
  lane.send = [mailboxes, thread, &redis, &keys](const channels::outbound_message& m,
                                                 boost::asio::any_io_executor ex,
                                                 std::function<void(channels::send_result)> done) {
    auto from = mailboxes->find(m.account);
    if (from == mailboxes->end()) {  // the dispatcher picks one of the lane's accounts
      return done(never_sent("account " + m.account + " is not a mailbox of this gateway"));
    }
    const auto& s = from->second.s;
    const auto& smtp = from->second.smtp;
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
