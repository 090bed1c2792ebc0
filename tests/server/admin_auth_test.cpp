// authorize_admin(): who may call the admin API (server/admin_auth.hpp, docs/console.md "Who
// may call it"), with a session lookup played by the test.
#include "bellhop/server/admin_auth.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <vector>

namespace bellhop::gateway {
namespace {

const std::string token = "admin-token-0123456789";

struct outcome {
  bool admitted = false;
  std::optional<response> refused;
  int lookups = 0;
};

// Runs authorize_admin for `req` with a lookup that knows the cookie "admin" (role admin,
// CSRF "c1"), "staff" (role staff) and "down" (Redis unavailable).
outcome run(const request& req, const std::string& admin_token = token, bool sessions = true) {
  boost::asio::io_context io;
  outcome out;
  session_lookup lookup;
  if (sessions) {
    lookup = [&out](std::string cookie, session_callback done) {
      ++out.lookups;
      if (cookie == "down") return done(session_status::unavailable, std::nullopt);
      if (cookie != "admin" && cookie != "staff") return done(session_status::none, std::nullopt);
      staff_principal p;
      p.subject = cookie;
      p.properties = {"*"};
      p.admin = cookie == "admin";
      p.csrf_token = "c1";
      done(session_status::ok, p);
    };
  }
  responder res(io.get_executor(), {}, [&out](response r) { out.refused = std::move(r); });
  authorize_admin(req, res, admin_token, lookup, [&out](responder) { out.admitted = true; });
  io.run();
  return out;
}

request make(http::verb v, std::string authorization = "", std::string cookie = "",
             std::string csrf = "") {
  request req{v, "/v1/admin/overview", 11};
  req.set(http::field::host, "bellhop.example");
  if (!authorization.empty()) req.set(http::field::authorization, authorization);
  if (!cookie.empty()) req.set(http::field::cookie, "bellhop_session=" + cookie);
  if (!csrf.empty()) req.set(csrf_header_name, csrf);
  return req;
}

int status_of(const outcome& o) {
  return o.refused ? static_cast<int>(o.refused->result_int()) : 0;
}

TEST(AuthorizeAdmin, TheAdminTokenAdmits) {
  auto o = run(make(http::verb::post, "Bearer " + token));
  EXPECT_TRUE(o.admitted);
  EXPECT_EQ(o.lookups, 0);
}

TEST(AuthorizeAdmin, AnyOtherAuthorizationIsRefusedWithoutLookingAtTheCookie) {
  for (const std::string& a : std::vector<std::string>{"Bearer wrong", "Bearer " + token + "x",
                                                       "Basic abc", "bearer " + token}) {
    auto o = run(make(http::verb::get, a, "admin"));
    EXPECT_FALSE(o.admitted) << a;
    EXPECT_EQ(status_of(o), 401) << a;
    EXPECT_EQ(o.lookups, 0) << a;
    EXPECT_EQ(o.refused->at(http::field::www_authenticate), "Bearer");
  }
}

TEST(AuthorizeAdmin, NoCredentialIs401AndAnEmptyTokenAdmitsNoOne) {
  EXPECT_EQ(status_of(run(make(http::verb::get))), 401);
  EXPECT_EQ(status_of(run(make(http::verb::get, "Bearer "), "")), 401);
  EXPECT_EQ(status_of(run(make(http::verb::get, "Bearer x"), "", false)), 401);
}

TEST(AuthorizeAdmin, AnAdminsSessionIsAdmittedAStaffSessionIsForbidden) {
  EXPECT_TRUE(run(make(http::verb::get, "", "admin")).admitted);
  EXPECT_TRUE(run(make(http::verb::post, "", "admin", "c1")).admitted);
  auto staff = run(make(http::verb::get, "", "staff"));
  EXPECT_FALSE(staff.admitted);
  EXPECT_EQ(status_of(staff), 403);
  EXPECT_NE(staff.refused->body().find("\"forbidden\""), std::string::npos);
  EXPECT_NE(staff.refused->body().find("admins only"), std::string::npos);
}

TEST(AuthorizeAdmin, ASessionsWriteNeedsItsCsrfToken) {
  for (const char* csrf : {"", "c2"}) {
    auto o = run(make(http::verb::post, "", "admin", csrf));
    EXPECT_FALSE(o.admitted);
    EXPECT_EQ(status_of(o), 403);
    EXPECT_NE(o.refused->body().find("csrf_failed"), std::string::npos);
  }
  EXPECT_FALSE(run(make(http::verb::delete_, "", "admin")).admitted);
}

TEST(AuthorizeAdmin, UnknownSessionsAre401AndALookupThatFailsIs503) {
  EXPECT_EQ(status_of(run(make(http::verb::get, "", "nobody"))), 401);
  EXPECT_EQ(status_of(run(make(http::verb::get, "", "admin"), token, false)), 401);
  auto down = run(make(http::verb::get, "", "down"));
  EXPECT_EQ(status_of(down), 503);
  EXPECT_EQ(down.refused->at(http::field::retry_after), "1");
}

}  // namespace
}  // namespace bellhop::gateway
