// The console's account rules and password hash (console/include/bellhop/console/users.hpp).
#include "bellhop/console/users.hpp"

#include <gtest/gtest.h>

namespace bellhop::gateway {
namespace {

TEST(ConsoleUsers, NamesRolesAndPasswords) {
  EXPECT_TRUE(is_user_name("ana@front-desk"));
  EXPECT_TRUE(is_user_name("J.Doe_2"));
  EXPECT_TRUE(is_user_name(std::string(64, 'a')));
  EXPECT_FALSE(is_user_name(std::string(65, 'a')));
  EXPECT_FALSE(is_user_name(""));
  EXPECT_FALSE(is_user_name("ana:sessions"));  // ':' separates key parts
  EXPECT_FALSE(is_user_name("ana maria"));
  EXPECT_FALSE(is_user_name("anä"));
  EXPECT_TRUE(is_role("staff"));
  EXPECT_TRUE(is_role("admin"));
  EXPECT_FALSE(is_role("Admin"));
  EXPECT_EQ(check_password("0123456789"), "");
  EXPECT_NE(check_password("012345678"), "");
  EXPECT_NE(check_password(std::string(1025, 'x')), "");
  EXPECT_NE(check_password(std::string("0123456789\0x", 12)), "");
}

TEST(ConsoleUsers, Argon2idHashVerifies) {
  const auto hash = hash_password("correct horse battery");
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u) << *hash;
  EXPECT_EQ(hash->find("correct"), std::string::npos);
  EXPECT_TRUE(verify_password(*hash, "correct horse battery"));
  EXPECT_FALSE(verify_password(*hash, "correct horse batterY"));
  EXPECT_FALSE(verify_password(*hash, ""));
  // Salted: the same password never hashes alike.
  EXPECT_NE(*hash, hash_password("correct horse battery").value_or(""));
  // Whatever Redis holds instead is refused, never read past its end.
  EXPECT_FALSE(verify_password("", "x"));
  EXPECT_FALSE(verify_password("not a hash", "not a hash"));
  EXPECT_FALSE(verify_password(std::string(500, '$'), "x"));
  EXPECT_FALSE(verify_password(std::string("$argon2id\0", 10), "x"));
}

TEST(ConsoleUsers, PropertiesRoundTripAndHostileOnesAreRefused) {
  const std::vector<std::string> ids = {"hotel-a", "hotel.b"};
  EXPECT_EQ(properties_json(ids), R"(["hotel-a","hotel.b"])");
  EXPECT_EQ(parse_properties(properties_json(ids)), ids);
  EXPECT_EQ(parse_properties(R"(["*"])"), std::vector<std::string>{"*"});
  EXPECT_FALSE(parse_properties("{}"));
  EXPECT_FALSE(parse_properties(R"(["a b"])"));
  EXPECT_FALSE(parse_properties(R"([1])"));
  EXPECT_FALSE(parse_properties(R"([["a"]])"));
  EXPECT_FALSE(parse_properties("["));
  std::string many = "[";
  for (int i = 0; i < 257; ++i)
    many += std::string(i ? "," : "") + "\"p" + std::to_string(i) + "\"";
  EXPECT_FALSE(parse_properties(many + "]"));
}

}  // namespace
}  // namespace bellhop::gateway
