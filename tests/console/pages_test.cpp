// The console's pages as the router serves them (console/src/pages.cpp): headers, ETags, the
// redirects, and /admin/ by who the session cookie belongs to (a stand-in session lookup).
#include "bellhop/console/pages.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>

namespace bellhop::gateway {
namespace {

constexpr std::string_view csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// Cookie "staff" is a staff member's session, "admin" an admin's, "down" cannot be looked up; any
// other is unknown.
void lookup(std::string cookie, session_callback done) {
  std::optional<staff_principal> who;
  auto status = session_status::none;
  if (cookie == "down") status = session_status::unavailable;
  if (cookie == "staff" || cookie == "admin") {
    status = session_status::ok;
    who.emplace();
    who->admin = cookie == "admin";
    who->subject = std::move(cookie);
  }
  done(status, std::move(who));
}

class pages_test : public ::testing::Test {
 protected:
  pages_test() { add_console_pages(routes_, lookup); }

  response get(const std::string& target, const std::string& cookie = {},
               const std::string& if_none_match = {}) {
    request req{http::verb::get, target, 11};
    if (!cookie.empty()) req.set(http::field::cookie, "other=1; bellhop_session=" + cookie);
    if (!if_none_match.empty()) req.set(http::field::if_none_match, if_none_match);
    const auto m = routes_.match(http::verb::get, target);
    if (m.handler == nullptr) return router::not_routed(req, m);
    boost::asio::io_context ioc;
    std::optional<response> out;
    (*m.handler)(req,
                 responder(ioc.get_executor(), m.params, [&](response r) { out = std::move(r); }));
    ioc.run();
    EXPECT_TRUE(out.has_value()) << target;
    return out ? *out : response{};
  }

  router routes_;
};

TEST_F(pages_test, the_inbox_is_html_with_a_strict_policy_and_revalidates_by_etag) {
  const auto page = get("/console/");
  ASSERT_EQ(page.result(), http::status::ok);
  EXPECT_EQ(page[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(page["Content-Security-Policy"], csp);
  EXPECT_EQ(page["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(page["Referrer-Policy"], "no-referrer");
  EXPECT_EQ(page[http::field::cache_control], "no-cache");
  EXPECT_NE(page.body().find("/console/console.js"), std::string::npos);
  // Nothing inline: scripts and styles only from files.
  EXPECT_EQ(page.body().find("<script>"), std::string::npos);
  EXPECT_EQ(page.body().find("<style"), std::string::npos);
  EXPECT_EQ(page.body().find(" style="), std::string::npos);

  const std::string etag(page[http::field::etag]);
  ASSERT_FALSE(etag.empty());
  const auto again = get("/console/", "", etag);
  EXPECT_EQ(again.result(), http::status::not_modified);
  EXPECT_TRUE(again.body().empty());
  EXPECT_EQ(again["Content-Security-Policy"], csp);
  EXPECT_EQ(get("/console/", "", "\"other\"").result(), http::status::ok);
}

TEST_F(pages_test, assets_have_their_types_and_distinct_etags) {
  const auto js = get("/console/console.js");
  ASSERT_EQ(js.result(), http::status::ok);
  EXPECT_EQ(js[http::field::content_type], "text/javascript; charset=utf-8");
  const auto strings = get("/console/strings.js");
  EXPECT_NE(strings.body().find("\"Sign in\""), std::string::npos);
  const auto css = get("/console/console.css");
  EXPECT_EQ(css[http::field::content_type], "text/css; charset=utf-8");
  EXPECT_NE(js[http::field::etag], css[http::field::etag]);
  // The HTML files are served only at their pages' paths.
  EXPECT_EQ(get("/console/console.html").result(), http::status::not_found);
  EXPECT_EQ(get("/console/forbidden.html").result(), http::status::not_found);
  EXPECT_EQ(get("/console/nothing.js").result(), http::status::not_found);
}

TEST_F(pages_test, the_slashless_paths_redirect) {
  for (const auto* path : {"/console", "/admin"}) {
    const auto r = get(path);
    EXPECT_EQ(r.result(), http::status::moved_permanently) << path;
    EXPECT_EQ(r[http::field::location], std::string(path) + "/");
  }
}

TEST_F(pages_test, the_admin_page_is_refused_to_a_staff_session_only) {
  const auto nobody = get("/admin/");
  EXPECT_EQ(nobody.result(), http::status::ok);  // shows its sign-in form
  EXPECT_NE(nobody.body().find("/console/admin.js"), std::string::npos);
  EXPECT_EQ(get("/admin/", "admin").result(), http::status::ok);
  EXPECT_EQ(get("/admin/", "unknown").result(), http::status::ok);
  EXPECT_EQ(get("/admin/", "down").result(), http::status::ok);  // the API checks every call

  const auto staff = get("/admin/", "staff");
  EXPECT_EQ(staff.result(), http::status::forbidden);
  EXPECT_EQ(staff[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(staff["Content-Security-Policy"], csp);
  EXPECT_NE(staff.body().find("forbidden_heading"), std::string::npos);
  // Its ETag does not make a later 304 of the admin page.
  const auto admin = get("/admin/", "admin");
  EXPECT_EQ(get("/admin/", "staff", std::string(admin[http::field::etag])).result(),
            http::status::forbidden);
  EXPECT_EQ(get("/admin/", "admin", std::string(admin[http::field::etag])).result(),
            http::status::not_modified);
}

}  // namespace
}  // namespace bellhop::gateway
