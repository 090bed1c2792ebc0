// End-to-end tests of `bellhop gen-token`: the real binary, its stdout and stderr apart.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bellhop/contract/staff_token.hpp"
#include "support/process.hpp"

extern char** environ;

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view secret = "gen-token-test-secret-Zq8w3RkP0vY5mT2xN7aL";

struct outcome {
  int status = -1;
  std::string out, err;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class GenToken : public ::testing::Test {
 protected:
  std::filesystem::path config(const std::string& auth_json) {
    const auto path = dir_.path() / ("config-" + std::to_string(++files_) + ".json");
    std::ofstream(path) << "{\n  // test config\n  \"data_dir\": \""
                        << (dir_.path() / "data").string() << "\",\n  \"auth\": " << auth_json
                        << "\n}\n";
    return path;
  }

  std::filesystem::path config_with_secret() {
    return config(R"({"jwt_secret": ")" + std::string(secret) + R"("})");
  }

  // Runs `bellhop args...` with stdout and stderr in files of their own. The environment is
  // the test's without BELLHOP_* variables, plus `env`.
  outcome run(const std::vector<std::string>& args,
              const std::map<std::string, std::string>& env = {}) {
    const auto out_file = dir_.path() / ("out-" + std::to_string(++files_));
    const auto err_file = dir_.path() / ("err-" + std::to_string(files_));
    std::vector<std::string> argv_s = {BELLHOP_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("BELLHOP_", 0) != 0) env_s.emplace_back(*e);
    }
    for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    outcome o;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn failed: " << rc;
      return o;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    o.out = read_file(out_file);
    o.err = read_file(err_file);
    // Whatever happened, the secret is never shown.
    EXPECT_EQ(o.out.find(secret), std::string::npos) << o.out;
    EXPECT_EQ(o.err.find(secret), std::string::npos) << o.err;
    return o;
  }

  // The single line on stdout, verified at the current time.
  contract::staff_claims verified_token(const outcome& o) {
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.err, "");
    EXPECT_EQ(line_count(o.out), 1u) << o.out;
    EXPECT_FALSE(o.out.empty());
    EXPECT_EQ(o.out.back(), '\n');
    const auto token = o.out.substr(0, o.out.find('\n'));
    auto claims = contract::verify_staff_token(token, secret, std::chrono::system_clock::now());
    EXPECT_TRUE(claims.has_value()) << (claims ? "" : contract::describe(claims.error()));
    return claims.has_value() ? *claims : contract::staff_claims{};
  }

  temp_dir dir_;
  int files_ = 0;
};

TEST_F(GenToken, PrintsOneTokenThatVerifiesWithSubPropertiesAndTtl) {
  const auto before = std::chrono::system_clock::now();
  auto o = run({"gen-token", "--config", config_with_secret().string(), "--sub", "ana@front-desk",
                "--properties", "hotel-berlin,hotel-paris", "--ttl", "8h"});
  const auto after = std::chrono::system_clock::now();
  const auto claims = verified_token(o);
  EXPECT_EQ(claims.subject, "ana@front-desk");
  EXPECT_EQ(claims.properties, (std::vector<std::string>{"hotel-berlin", "hotel-paris"}));
  // exp is whole seconds: floor(now) + ttl.
  EXPECT_GT(claims.expires, before + 8h - 1s);
  EXPECT_LE(claims.expires, after + 8h);
  EXPECT_TRUE(claims.allows("hotel-paris"));
  EXPECT_FALSE(claims.allows("hotel-rome"));
  // Signed with the configured secret and nothing else.
  const auto token = o.out.substr(0, o.out.size() - 1);
  EXPECT_FALSE(contract::verify_staff_token(token, "another-secret-of-enough-length-0123",
                                            std::chrono::system_clock::now())
                   .has_value());
}

TEST_F(GenToken, AllPropertiesAndDefaultTtlOf12Hours) {
  const auto before = std::chrono::system_clock::now();
  auto o = run({"gen-token", "--config", config_with_secret().string(), "--sub", "night-manager",
                "--properties", "*"});
  const auto after = std::chrono::system_clock::now();
  const auto claims = verified_token(o);
  EXPECT_EQ(claims.properties, (std::vector<std::string>{"*"}));
  EXPECT_TRUE(claims.allows("any-hotel"));
  EXPECT_GT(claims.expires, before + 12h - 1s);
  EXPECT_LE(claims.expires, after + 12h);
}

TEST_F(GenToken, TtlUnits) {
  const std::map<std::string, std::chrono::seconds> ttls = {
      {"90s", 90s}, {"30m", 30min}, {"7d", std::chrono::days(7)}, {"30d", std::chrono::days(30)}};
  for (const auto& [text, ttl] : ttls) {
    SCOPED_TRACE(text);
    const auto before = std::chrono::system_clock::now();
    auto o = run({"gen-token", "--config", config_with_secret().string(), "--sub", "ana",
                  "--properties", "hotel-berlin", "--ttl", text});
    const auto after = std::chrono::system_clock::now();
    const auto claims = verified_token(o);
    EXPECT_GT(claims.expires, before + ttl - 1s);
    EXPECT_LE(claims.expires, after + ttl);
  }
}

TEST_F(GenToken, SecretFromTheEnvironmentOverridesTheFile) {
  const auto file = config(R"({"jwt_secret": "the-file-secret-is-not-used-here-0123456789"})");
  auto o = run({"gen-token", "--config", file.string(), "--sub", "ana", "--properties", "h1"},
               {{"BELLHOP_AUTH_JWT_SECRET", std::string(secret)}});
  EXPECT_EQ(verified_token(o).subject, "ana");
}

TEST_F(GenToken, MissingSecretIsOneLineNamingTheKey) {
  for (const auto& auth : {std::string("{}"), std::string(R"({"jwt_secret": ""})")}) {
    SCOPED_TRACE(auth);
    auto o =
        run({"gen-token", "--config", config(auth).string(), "--sub", "ana", "--properties", "*"});
    EXPECT_NE(o.status, 0);
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(line_count(o.err), 1u) << o.err;
    EXPECT_NE(o.err.find("auth.jwt_secret"), std::string::npos) << o.err;
  }
}

TEST_F(GenToken, BadTtlIsOneLine) {
  const auto file = config_with_secret();
  for (const std::string& ttl :
       std::vector<std::string>{"0h", "8", "h", "31d", "721h", "2592001s", "-1h", "1.5h", "8x",
                                "8 h", "", "99999999999999999999d"}) {
    SCOPED_TRACE(ttl);
    auto o = run({"gen-token", "--config", file.string(), "--sub", "ana", "--properties", "*",
                  "--ttl", ttl});
    EXPECT_NE(o.status, 0);
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(line_count(o.err), 1u) << o.err;
    EXPECT_NE(o.err.find("--ttl"), std::string::npos) << o.err;
  }
}

TEST_F(GenToken, BadSubjectOrPropertiesAreRefused) {
  const auto file = config_with_secret();
  const std::vector<std::vector<std::string>> cases = {
      {"--sub", "", "--properties", "*"},
      {"--sub", std::string(201, 's'), "--properties", "*"},
      {"--sub", "ana", "--properties", "hotel-berlin,*"},
      {"--sub", "ana", "--properties", std::string(65, 'p')},
      {"--sub", "ana", "--properties", ""},
      {"--properties", "*"},  // --sub missing
      {"--sub", "ana"},       // --properties missing
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {"gen-token", "--config", file.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto o = run(argv);
    EXPECT_NE(o.status, 0) << o.out;
    EXPECT_EQ(o.out, "");
    EXPECT_FALSE(o.err.empty());
  }
}

}  // namespace
}  // namespace bellhop::test
