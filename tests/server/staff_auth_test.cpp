// session_cookie(): the console's cookie out of a Cookie header (server/staff_auth.hpp).
#include "bellhop/server/staff_auth.hpp"

#include <gtest/gtest.h>

#include <string>

namespace bellhop::gateway {
namespace {

TEST(SessionCookie, FindsTheValueAmongOtherCookies) {
  EXPECT_EQ(session_cookie("bellhop_session=abc"), "abc");
  EXPECT_EQ(session_cookie("theme=dark; bellhop_session=abc; lang=en"), "abc");
  EXPECT_EQ(session_cookie("theme=dark;bellhop_session=abc"), "abc");
  EXPECT_EQ(session_cookie("  bellhop_session = abc  ;x=y"), "abc");
  EXPECT_EQ(session_cookie("bellhop_session=\"abc\""), "abc");
}

TEST(SessionCookie, TheFirstOneWins) {
  EXPECT_EQ(session_cookie("bellhop_session=first; bellhop_session=second"), "first");
}

TEST(SessionCookie, AbsentWhenNotThere) {
  EXPECT_EQ(session_cookie(""), "");
  EXPECT_EQ(session_cookie("theme=dark"), "");
  EXPECT_EQ(session_cookie("bellhop_session"), "");
  EXPECT_EQ(session_cookie("xbellhop_session=abc"), "");
  EXPECT_EQ(session_cookie("bellhop_sessionx=abc"), "");
  EXPECT_EQ(session_cookie("; ;;="), "");
  EXPECT_EQ(session_cookie("bellhop_session="), "");
}

TEST(SessionCookie, BoundedHeaderAndValue) {
  EXPECT_EQ(session_cookie("bellhop_session=" + std::string(256, 'a')), std::string(256, 'a'));
  EXPECT_EQ(session_cookie("bellhop_session=" + std::string(257, 'a')), "");
  const std::string padding = "x=" + std::string(8200, 'y') + "; ";
  EXPECT_EQ(session_cookie(padding + "bellhop_session=abc"), "");
}

}  // namespace
}  // namespace bellhop::gateway
