// Staff JWTs: what verify_staff_token accepts and refuses, with an injected clock.
#include "bellhop/contract/staff_token.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bellhop::contract {
namespace {

using namespace std::chrono_literals;
using sys_seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

constexpr std::string_view secret = "test-secret-0123456789abcdefghijklmnop";
const sys_seconds t0{1'800'000'000s};  // 2027-01-15, the injected "now"
const std::string t0_exp = std::to_string(1'800'000'000 + 3600);

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string b64url_decode(std::string in) {
  for (auto& c : in) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  std::size_t pad = (4 - in.size() % 4) % 4;
  in.append(pad, '=');
  std::string out(in.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string hmac_sha256(std::string_view data, std::string_view key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// A token built by hand: any header and payload, signed HS256 with `key`.
std::string hand_signed(std::string_view header, std::string_view payload,
                        std::string_view key = secret) {
  std::string signing_input = b64url(header) + "." + b64url(payload);
  return signing_input + "." + b64url(hmac_sha256(signing_input, key));
}

constexpr std::string_view hs256_header = R"({"alg":"HS256","typ":"JWT"})";

std::string signed_payload(std::string_view payload) {
  return hand_signed(hs256_header, payload);
}

std::string claims_json(const std::string& extra = "") {
  return R"({"sub":"ana","properties":["hotel-berlin"],"exp":)" + t0_exp + extra + "}";
}

// A token minted by libjwt itself with any algorithm and the claims of claims_json().
std::string libjwt_token(jwt_alg_t alg, std::string_view key = secret) {
  jwt_t* raw = nullptr;
  EXPECT_EQ(jwt_new(&raw), 0);
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, &jwt_free);
  EXPECT_EQ(jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())),
            0);
  EXPECT_EQ(jwt_add_grants_json(jwt.get(), claims_json().c_str()), 0);
  std::unique_ptr<char, decltype(&std::free)> text(jwt_encode_str(jwt.get()), &std::free);
  return text ? std::string(text.get()) : std::string();
}

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (auto dot = token.find('.'); dot != std::string::npos; dot = token.find('.', start)) {
    parts.push_back(token.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(token.substr(start));
  return parts;
}

token_error error_of(std::string_view token, std::string_view key = secret,
                     std::chrono::system_clock::time_point now = t0) {
  auto r = verify_staff_token(token, key, now);
  EXPECT_FALSE(r.has_value()) << "accepted: " << token;
  return r.has_value() ? token_error::missing : r.error();
}

std::string mint(const std::vector<std::string>& properties = {"hotel-berlin", "hotel-paris"},
                 std::chrono::seconds ttl = 8h) {
  return mint_staff_token(secret, "ana@front-desk", properties, t0, ttl);
}

TEST(StaffToken, MintedTokenVerifiesWithItsClaims) {
  const auto token = mint();
  auto r = verify_staff_token(token, secret, t0);
  ASSERT_TRUE(r.has_value()) << describe(r.error());
  EXPECT_EQ(r->subject, "ana@front-desk");
  EXPECT_EQ(r->properties, (std::vector<std::string>{"hotel-berlin", "hotel-paris"}));
  EXPECT_EQ(r->expires, t0 + 8h);
}

TEST(StaffToken, MintedTokenIsHs256WithIatAndExpInSeconds) {
  // A sub-second "now" is floored: iat and exp are whole seconds.
  const auto token =
      mint_staff_token(secret, "ana", {"*"}, t0 + std::chrono::milliseconds(999), 90s);
  auto parts = split(token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(b64url_decode(parts[0]), R"({"alg":"HS256","typ":"JWT"})");
  const auto payload = b64url_decode(parts[1]);
  EXPECT_NE(payload.find(R"("iat":1800000000)"), std::string::npos) << payload;
  EXPECT_NE(payload.find(R"("exp":1800000090)"), std::string::npos) << payload;
  EXPECT_NE(payload.find(R"("properties":["*"])"), std::string::npos) << payload;
  EXPECT_NE(payload.find(R"("sub":"ana")"), std::string::npos) << payload;
  EXPECT_EQ(token.find(secret), std::string::npos);
}

TEST(StaffToken, WrongSecretIsBadSignature) {
  EXPECT_EQ(error_of(mint(), "another-secret-0123456789abcdefghijkl"), token_error::bad_signature);
  EXPECT_EQ(error_of(mint(), secret.substr(0, secret.size() - 1)), token_error::bad_signature);
}

TEST(StaffToken, EmptySecretVerifiesNothing) {
  // libjwt would parse a token without checking any signature when handed no key.
  EXPECT_EQ(error_of(mint(), ""), token_error::bad_signature);
  EXPECT_EQ(error_of(hand_signed(hs256_header, claims_json(), ""), ""), token_error::bad_signature);
  EXPECT_FALSE(
      verify_staff_token(b64url(R"({"alg":"none"})") + "." + b64url(claims_json()) + ".", "", t0)
          .has_value());
}

TEST(StaffToken, ExpiredAtExpAndAfterNoLeeway) {
  const auto token = mint({"*"}, 3600s);
  EXPECT_TRUE(verify_staff_token(token, secret, t0 + 3599s).has_value());
  EXPECT_TRUE(verify_staff_token(token, secret, t0 + 3600s - 1ms).has_value());
  EXPECT_EQ(error_of(token, secret, t0 + 3600s), token_error::expired);
  EXPECT_EQ(error_of(token, secret, t0 + 3601s), token_error::expired);
  EXPECT_EQ(error_of(token, secret, t0 + 24h), token_error::expired);
}

TEST(StaffToken, AlgNoneIsRefused) {
  const auto payload = b64url(claims_json());
  for (std::string_view alg : {"none", "None", "NONE"}) {
    const auto header = b64url(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})");
    SCOPED_TRACE(alg);
    // Unsigned, as the attack sends it.
    EXPECT_EQ(error_of(header + "." + payload + "."), token_error::wrong_algorithm);
    // With an HS256 signature of the same input attached.
    EXPECT_EQ(error_of(hand_signed(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})",
                                   claims_json())),
              token_error::wrong_algorithm);
  }
}

TEST(StaffToken, OtherAlgorithmsAreRefusedEvenWithTheRightSecret) {
  const auto hs384 = libjwt_token(JWT_ALG_HS384);
  const auto hs512 = libjwt_token(JWT_ALG_HS512);
  ASSERT_FALSE(hs384.empty());
  ASSERT_FALSE(hs512.empty());
  EXPECT_EQ(error_of(hs384), token_error::wrong_algorithm);
  EXPECT_EQ(error_of(hs512), token_error::wrong_algorithm);
  // Signed HS256 but the header names another algorithm (or HS256 in another spelling,
  // which libjwt alone would accept as HS256).
  for (std::string_view alg : {"HS512", "HS384", "RS256", "ES256", "hs256", "Hs256"}) {
    SCOPED_TRACE(alg);
    EXPECT_EQ(error_of(hand_signed(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})",
                                   claims_json())),
              token_error::wrong_algorithm);
  }
  // An algorithm libjwt does not know cannot even be parsed.
  EXPECT_EQ(error_of(hand_signed(R"({"alg":"XY999","typ":"JWT"})", claims_json())),
            token_error::malformed);
  EXPECT_EQ(error_of(hand_signed(R"({"typ":"JWT"})", claims_json())), token_error::malformed);
}

TEST(StaffToken, HandSignedHs256TokenVerifies) {
  // The hand-built tokens of the other tests are refused for what they vary, not for how
  // they are built.
  auto r = verify_staff_token(signed_payload(claims_json()), secret, t0);
  ASSERT_TRUE(r.has_value()) << describe(r.error());
  EXPECT_EQ(r->subject, "ana");
  EXPECT_EQ(r->expires, t0 + 3600s);
  // "typ" is optional (other JWT libraries leave it out).
  EXPECT_TRUE(
      verify_staff_token(hand_signed(R"({"alg":"HS256"})", claims_json()), secret, t0).has_value());
}

TEST(StaffToken, MissingTokenAndMalformedStrings) {
  EXPECT_EQ(error_of(""), token_error::missing);
  for (const std::string& bad :
       std::vector<std::string>{"a", "a.b", "garbage", "a..c", ".b.c", "a.b.c.d", "...", "a.b.c",
                                "not a token at all"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of(bad), token_error::malformed);
  }
  const auto good = mint();
  EXPECT_EQ(error_of(" " + good), token_error::malformed);
  EXPECT_EQ(error_of(good + "\n"), token_error::malformed);
  EXPECT_EQ(error_of(good + ".x"), token_error::malformed);
  auto parts = split(good);
  EXPECT_EQ(error_of(parts[0] + "=." + parts[1] + "." + parts[2]), token_error::malformed);
  EXPECT_EQ(error_of(b64url("{not json") + "." + parts[1] + "." + parts[2]),
            token_error::malformed);
  // Correctly signed, but the payload is not a JSON object.
  EXPECT_EQ(error_of(signed_payload("not json")), token_error::malformed);
  EXPECT_EQ(error_of(signed_payload(R"(["sub","ana"])")), token_error::malformed);
  EXPECT_EQ(error_of(std::string(9 * 1024, 'a')), token_error::malformed);
}

TEST(StaffToken, LongerThan8KiBIsMalformedEvenWhenValid) {
  // Correctly signed tokens around the limit: the length is refused before any parsing.
  std::vector<std::string> properties;
  std::string token;
  while (token.size() <= max_token_bytes) {
    properties.push_back("hotel-" + std::to_string(properties.size()) + std::string(40, 'x'));
    auto next = mint(properties);
    if (next.size() <= max_token_bytes) {
      EXPECT_TRUE(verify_staff_token(next, secret, t0).has_value()) << next.size();
    }
    token = std::move(next);
  }
  EXPECT_GT(token.size(), max_token_bytes);
  EXPECT_EQ(error_of(token), token_error::malformed);
}

TEST(StaffToken, TamperedTokenIsBadSignature) {
  const auto token = mint();
  auto parts = split(token);
  ASSERT_EQ(parts.size(), 3u);

  // One character of the payload changed, still valid base64url JSON.
  auto payload = b64url_decode(parts[1]);
  const auto at = payload.find("hotel-berlin");
  ASSERT_NE(at, std::string::npos);
  payload[at] = 'H';
  EXPECT_EQ(error_of(parts[0] + "." + b64url(payload) + "." + parts[2]),
            token_error::bad_signature);

  // One character of the payload text itself.
  std::string text = parts[1];
  text[5] = text[5] == 'A' ? 'B' : 'A';
  const auto tampered = parts[0] + "." + text + "." + parts[2];
  const auto e = error_of(tampered);
  EXPECT_TRUE(e == token_error::bad_signature || e == token_error::malformed) << describe(e);

  // One character of the signature, and no signature at all.
  std::string sig = parts[2];
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "." + sig), token_error::bad_signature);
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "."), token_error::bad_signature);
  // The signature of another token.
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "." + split(mint({"*"}))[2]),
            token_error::bad_signature);
}

TEST(StaffToken, MissingClaims) {
  EXPECT_EQ(error_of(signed_payload(R"({"properties":["a"],"exp":)" + t0_exp + "}")),
            token_error::missing_claim);
  EXPECT_EQ(error_of(signed_payload(R"({"sub":"ana","exp":)" + t0_exp + "}")),
            token_error::missing_claim);
  EXPECT_EQ(error_of(signed_payload(R"({"sub":"ana","properties":["a"]})")),
            token_error::missing_claim);
  EXPECT_EQ(error_of(signed_payload("{}")), token_error::missing_claim);
}

TEST(StaffToken, BadSubject) {
  auto with_sub = [](const std::string& sub) {
    return signed_payload(R"({"sub":)" + sub + R"(,"properties":["a"],"exp":)" + t0_exp + "}");
  };
  EXPECT_EQ(error_of(with_sub("42")), token_error::bad_claim);
  EXPECT_EQ(error_of(with_sub("null")), token_error::bad_claim);
  EXPECT_EQ(error_of(with_sub(R"("")")), token_error::bad_claim);
  EXPECT_EQ(error_of(with_sub(R"(["ana"])")), token_error::bad_claim);
  EXPECT_EQ(error_of(with_sub('"' + std::string(201, 's') + '"')), token_error::bad_claim);
  auto longest = verify_staff_token(with_sub('"' + std::string(200, 's') + '"'), secret, t0);
  ASSERT_TRUE(longest.has_value());
  EXPECT_EQ(longest->subject.size(), 200u);
}

TEST(StaffToken, BadProperties) {
  auto with_properties = [](const std::string& properties) {
    return signed_payload(R"({"sub":"ana","properties":)" + properties + R"(,"exp":)" + t0_exp +
                          "}");
  };
  for (const std::string& bad : std::vector<std::string>{
           R"("hotel-berlin")", R"("*")", "[]", R"(["a",1])", R"(["a",""])", R"([null])",
           R"({"a":1})", R"([["a"]])", "true", R"(["a",")" + std::string(65, 'p') + R"("])"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of(with_properties(bad)), token_error::bad_claim);
  }
  auto longest =
      verify_staff_token(with_properties(R"(["a",")" + std::string(64, 'p') + R"("])"), secret, t0);
  ASSERT_TRUE(longest.has_value());
  EXPECT_EQ(longest->properties.at(1).size(), 64u);
}

TEST(StaffToken, BadExpiry) {
  auto with_exp = [](const std::string& exp) {
    return signed_payload(R"({"sub":"ana","properties":["a"],"exp":)" + exp + "}");
  };
  for (const std::string& bad :
       std::vector<std::string>{R"(")" + t0_exp + R"(")", t0_exp + ".5", "null", "0", "-1",
                                "253402300800", "9223372036854775807"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of(with_exp(bad)), token_error::bad_claim);
  }
}

TEST(StaffToken, NotBeforeIsHonoured) {
  const auto early = signed_payload(claims_json(R"(,"nbf":1800000060)"));
  EXPECT_EQ(error_of(early, secret, t0), token_error::bad_claim);
  EXPECT_TRUE(verify_staff_token(early, secret, t0 + 60s).has_value());
  EXPECT_EQ(error_of(signed_payload(claims_json(R"(,"nbf":"soon")"))), token_error::bad_claim);
  EXPECT_TRUE(verify_staff_token(signed_payload(claims_json(R"(,"nbf":1700000000)")), secret, t0)
                  .has_value());
}

TEST(StaffToken, AllowsListedPropertiesOrAll) {
  staff_claims listed{"ana", {"hotel-berlin", "hotel-paris"}, t0};
  EXPECT_TRUE(listed.allows("hotel-berlin"));
  EXPECT_TRUE(listed.allows("hotel-paris"));
  EXPECT_FALSE(listed.allows("hotel-rome"));
  EXPECT_FALSE(listed.allows("hotel-berlin2"));
  EXPECT_FALSE(listed.allows("hotel"));
  EXPECT_FALSE(listed.allows("*"));
  EXPECT_FALSE(listed.allows(""));

  staff_claims all{"ana", {"*"}, t0};
  EXPECT_TRUE(all.allows("hotel-berlin"));
  EXPECT_TRUE(all.allows("anything"));
  EXPECT_FALSE(all.allows(""));
}

TEST(StaffToken, DescribeAndValueThrow) {
  EXPECT_EQ(describe(token_error::expired), "token expired");
  for (auto e : {token_error::missing, token_error::malformed, token_error::bad_signature,
                 token_error::wrong_algorithm, token_error::expired, token_error::missing_claim,
                 token_error::bad_claim}) {
    EXPECT_FALSE(describe(e).empty());
  }
  auto r = verify_staff_token(mint(), secret, t0 + 9h);
  EXPECT_THROW(r.value(), std::runtime_error);
}

TEST(StaffToken, MintRefusesWhatVerifyWouldRefuse) {
  EXPECT_THROW(mint_staff_token("", "ana", {"*"}, t0, 1h), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "", {"*"}, t0, 1h), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, std::string(201, 's'), {"*"}, t0, 1h),
               std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "ana", {}, t0, 1h), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "ana", {"a", ""}, t0, 1h), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "ana", {std::string(65, 'p')}, t0, 1h),
               std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "ana", {"*"}, t0, 0s), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "ana", {"*"}, t0, -1s), std::invalid_argument);
  EXPECT_THROW(mint_staff_token(secret, "bad \xff utf-8", {"*"}, t0, 1h), std::invalid_argument);
  try {
    mint_staff_token(secret, "", {"*"}, t0, 1h);
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos);
  }
}

}  // namespace
}  // namespace bellhop::contract
