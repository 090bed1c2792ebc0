#include "session_store.hpp"

#include <boost/asio/system_executor.hpp>
#include <charconv>
#include <chrono>

#include "bellhop/console/lua.hpp"
#include "bellhop/console/users.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/secrets.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;
using sys_clock = std::chrono::system_clock;

constexpr std::size_t max_csrf_bytes = 128;

std::int64_t to_ms(sys_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::optional<std::int64_t> whole(std::string_view s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The lookup script's reply {user, csrf, expires_at, role, properties}, checked element by
// element: whatever Redis holds is read as hostile.
std::optional<staff_principal> principal_of(const broker::reply& r, std::string session_id) {
  if (!r.is_array() || r.elements().size() != 5) return std::nullopt;
  const auto& e = r.elements();
  for (const auto& x : e)
    if (!x.is_string()) return std::nullopt;
  const auto expires = whole(e[2].str());
  auto properties = parse_properties(e[4].str());
  if (!is_user_name(e[0].str()) || e[1].str().empty() || e[1].str().size() > max_csrf_bytes ||
      !expires || !is_role(e[3].str()) || !properties)
    return std::nullopt;
  staff_principal p;
  p.subject = e[0].str();
  p.csrf_token = e[1].str();
  p.expires = sys_clock::time_point(std::chrono::milliseconds(*expires));
  p.admin = e[3].str() == "admin";
  p.properties = std::move(*properties);
  p.session_id = std::move(session_id);
  if (p.expires <= sys_clock::now()) return std::nullopt;
  return p;
}

}  // namespace

session_store::session_store(const services& svc, contract::key_space keys, int ttl_s)
    : svc_(svc),
      keys_(std::move(keys)),
      ttl_s_(ttl_s),
      create_(broker::script::make("console_session_create", std::string(lua::session_create))),
      lookup_(broker::script::make("console_session_lookup", std::string(lua::session_lookup))),
      end_(broker::script::make("console_session_end", std::string(lua::session_end))) {}

std::string session_store::session_id(std::string_view cookie) {
  return contract::sha256_hex(cookie, 16);
}

void session_store::lookup(const std::string& cookie, session_callback done) {
  if (!svc_.redis) return done(session_status::unavailable, std::nullopt);
  auto id = session_id(cookie);
  svc_.redis->eval(lookup_, {keys_.console_session(id)}, {keys_.console_user("")},
                   boost::asio::system_executor(),
                   [id, done = std::move(done)](error_code ec, broker::reply r) mutable {
                     if (ec || r.is_error()) return done(session_status::unavailable, std::nullopt);
                     auto p = principal_of(r, std::move(id));
                     if (!p) return done(session_status::none, std::nullopt);
                     done(session_status::ok, std::move(p));
                   });
}

void session_store::create(const std::string& user, boost::asio::any_io_executor ex,
                           std::function<void(created)> done) {
  auto cookie = contract::random_secret(32);
  auto csrf = contract::random_secret(32);
  if (!svc_.redis || !cookie || !csrf) return done({});
  const auto now = sys_clock::now();
  created out;
  out.cookie = std::move(*cookie);
  out.principal.subject = user;
  out.principal.session_id = session_id(out.cookie);
  out.principal.csrf_token = std::move(*csrf);
  out.principal.expires =
      std::chrono::time_point_cast<std::chrono::milliseconds>(now + std::chrono::seconds(ttl_s_));
  // Built before the call: the handler takes `out` (argument order is unspecified).
  const auto& id = out.principal.session_id;
  std::vector<std::string> keys = {keys_.console_user(user), keys_.console_user_sessions(user),
                                   keys_.console_session(id)};
  std::vector<std::string> args = {user,
                                   id,
                                   out.principal.csrf_token,
                                   std::to_string(to_ms(now)),
                                   std::to_string(to_ms(out.principal.expires)),
                                   std::to_string(ttl_s_),
                                   keys_.console_session("")};
  svc_.redis->eval(
      create_, std::move(keys), std::move(args), ex,
      [out = std::move(out), done = std::move(done)](error_code ec, broker::reply r) mutable {
        if (ec || !r.is_integer()) {
          out.status = session_status::unavailable;
        } else {
          out.status = r.integer() == 1 ? session_status::ok : session_status::none;
        }
        done(std::move(out));
      });
}

void session_store::end(const std::string& cookie, boost::asio::any_io_executor ex,
                        std::function<void(bool)> done) {
  if (!svc_.redis) return done(false);
  const auto id = session_id(cookie);
  svc_.redis->eval(
      end_, {keys_.console_session(id)}, {id, keys_.console_user(""), keys_.console_revoked()}, ex,
      [done = std::move(done)](error_code ec, broker::reply r) { done(!ec && r.is_integer()); });
}

}  // namespace bellhop::gateway
