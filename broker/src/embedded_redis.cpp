#include "bellhop/broker/embedded_redis.hpp"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bellhop/broker/backoff.hpp"
#include "bellhop/contract/encoding.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/contract/secrets.hpp"

namespace bellhop::broker {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

template <typename T = void>
using outcome = boost::system::result<T, std::string>;

// `return failure{...}` works for any outcome<T>, including outcome<std::string> where a bare
// string would be ambiguous between value and error.
struct failure {
  std::string message;
  template <typename T>
  operator outcome<T>() && {  // NOLINT(google-explicit-constructor)
    return outcome<T>(boost::system::in_place_error, std::move(message));
  }
};

template <typename T>
outcome<std::decay_t<T>> success(T&& value) {
  return outcome<std::decay_t<T>>(boost::system::in_place_value, std::forward<T>(value));
}

constexpr auto probe_interval = 50ms;
constexpr auto probe_io_timeout = 250ms;
constexpr auto lock_poll_interval = 50ms;
// The descriptor number the child Redis keeps the data dir's lock on.
constexpr int inherited_lock_fd = 3;
constexpr auto stable_run = 30s;  // a run this long resets the restart backoff
constexpr std::size_t password_bytes = 32;

std::string errno_message(int err) {
  return std::generic_category().message(err);
}

class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct context_deleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct reply_deleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

template <typename... Args>
reply_ptr command(redisContext* c, const char* format, Args... args) {
  return reply_ptr(static_cast<redisReply*>(redisCommand(c, format, args...)));
}

timeval to_timeval(std::chrono::microseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000000),
                 static_cast<suseconds_t>(d.count() % 1000000)};
}

// The child gets these as fds 0-2; keeping the originals above 2 means dup2 never has to move
// a descriptor onto itself or onto one it still needs (bellhop may run with stdin closed).
unique_fd open_above_stdio(const char* path, int flags, mode_t mode = 0) {
  unique_fd fd(::open(path, flags | O_CLOEXEC, mode));
  if (fd && fd.get() <= STDERR_FILENO) {
    unique_fd high(::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    return high;
  }
  return fd;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void fsync_directory(const fs::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// Writes `content` to `target` through a temporary file and rename(), so a crash never leaves a
// half-written file; the temporary is created with `mode` so secrets are never world-readable.
// Returns 0 or an errno value.
int write_file_atomically(const fs::path& target, std::string_view content, mode_t mode) {
  fs::path tmp = target;
  tmp += ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return errno;
  unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return errno;
  int err = 0;
  if (::fchmod(fd.get(), mode) != 0 || !write_all(fd.get(), content) || ::fsync(fd.get()) != 0) {
    err = errno;
  }
  fd.reset();
  if (err == 0 && ::rename(tmp.c_str(), target.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return err;
  }
  fsync_directory(target.parent_path());
  return 0;
}

std::string data_dir_error(const fs::path& dir, const std::string& reason) {
  return "data dir " + dir.string() + " is not writable: " + reason +
         "; create it or set data_dir (--data-dir)";
}

constexpr std::string_view not_found_advice =
    "install it (apt-get install redis-server) or set redis.url to an external Redis";

bool is_executable_file(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// Resolved in the parent so the child can use execv (execvp is not async-signal-safe).
outcome<fs::path> find_redis_server(const std::string& name) {
  if (name.empty()) return failure{"redis-server not found: " + std::string(not_found_advice)};
  if (name.find('/') != std::string::npos) {
    if (is_executable_file(name)) return success(fs::absolute(name));
    return failure{"redis-server not found (" + name + "): " + std::string(not_found_advice)};
  }
  const char* env = std::getenv("PATH");
  std::string_view path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = path.find(':');
    const auto entry = path.substr(0, colon);
    const fs::path candidate = fs::path(entry.empty() ? "." : entry) / name;
    if (is_executable_file(candidate)) return success(fs::absolute(candidate));
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return failure{"redis-server not found: " + std::string(not_found_advice)};
}

// A redis.conf argument in double quotes, with the escapes Redis' sdssplitargs understands.
std::string config_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x" + contract::to_hex(s.substr(i, 1));
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

// Digits with an optional b/k/kb/m/mb/g/gb suffix, as Redis reads maxmemory (k = 1000,
// kb = 1024...); nullopt when it is not a size or does not fit.
std::optional<std::uint64_t> memory_size_bytes(std::string_view s) {
  std::size_t i = 0;
  std::uint64_t n = 0;
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    const auto digit = static_cast<std::uint64_t>(s[i] - '0');
    if (n > (max - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  if (i == 0) return std::nullopt;
  std::string unit;
  for (; i < s.size(); ++i)
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},           {"b", 1},
      {"k", 1000},       {"kb", 1024},
      {"m", 1000000},    {"mb", 1024 * 1024},
      {"g", 1000000000}, {"gb", 1024ULL * 1024 * 1024}};
  for (const auto& [name, scale] : units) {
    if (unit != name) continue;
    if (n > max / scale) return std::nullopt;
    return n * scale;
  }
  return std::nullopt;
}

bool is_valid_password(std::string_view s) {
  return !s.empty() && s.size() <= 512 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// The password is generated once and reused, so AI engines configured with it keep working
// across bellhop restarts. `forbidden` are the mode bits taken away when set (077 for bellhop's
// own; 037 for the engine's, which an operator may open to a group of engine users).
outcome<std::string> load_or_create_password(const fs::path& file, const fs::path& data_dir,
                                             mode_t forbidden) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    unique_fd in(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (in) {
      struct stat st {};
      if (::fstat(in.get(), &st) != 0) {
        return failure{"cannot read " + file.string() + ": " + errno_message(errno)};
      }
      if (!S_ISREG(st.st_mode)) {
        return failure{"password file " + file.string() + " is not a regular file; remove it"};
      }
      if (st.st_uid != ::geteuid()) {
        return failure{"password file " + file.string() + " belongs to uid " +
                       std::to_string(st.st_uid) + ", not to bellhop's uid " +
                       std::to_string(::geteuid()) + "; fix its owner or remove it"};
      }
      if ((st.st_mode & forbidden) != 0) {
        const mode_t fixed = st.st_mode & 0777 & ~forbidden;
        if (::fchmod(in.get(), fixed) != 0) {
          return failure{"password file " + file.string() +
                         " is readable by other users and its mode cannot be fixed: " +
                         errno_message(errno) + "; chmod 600 it"};
        }
        spdlog::warn("embedded Redis: {} was readable by other users; changed its mode to 0{:o}",
                     file.string(), static_cast<unsigned>(fixed));
      }
      std::string content(1024, '\0');
      const auto n = ::read(in.get(), content.data(), content.size());
      if (n < 0) return failure{"cannot read " + file.string() + ": " + errno_message(errno)};
      content.resize(static_cast<std::size_t>(n));
      while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back()))) {
        content.pop_back();
      }
      if (!is_valid_password(content)) {
        return failure{"password file " + file.string() +
                       " is empty or malformed; delete it and bellhop generates a new one"};
      }
      return success(std::move(content));
    }
    if (errno == ELOOP) {
      return failure{"password file " + file.string() + " is a symbolic link; refusing to use it"};
    }
    if (errno != ENOENT)
      return failure{"cannot read " + file.string() + ": " + errno_message(errno)};

    const auto random = contract::random_bytes(password_bytes);
    if (!random) {
      return failure{"cannot generate the embedded Redis password: OpenSSL RAND_bytes failed"};
    }
    const std::string password = contract::to_hex(*random);
    unique_fd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) {
      if (errno == EEXIST) continue;  // created concurrently: read that one
      return failure{data_dir_error(data_dir, errno_message(errno))};
    }
    if (::fchmod(out.get(), 0600) != 0 || !write_all(out.get(), password + "\n") ||
        ::fsync(out.get()) != 0) {
      const int err = errno;
      out.reset();
      ::unlink(file.c_str());
      return failure{data_dir_error(data_dir, errno_message(err))};
    }
    fsync_directory(data_dir);
    spdlog::info("embedded Redis: generated a new password in {}", file.string());
    return success(password);
  }
  return failure{"password file " + file.string() + " keeps changing; is another bellhop running?"};
}

std::string describe_status(int status) {
  if (status < 0) return "exited (status unknown)";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) +
           (name ? " (SIG" + std::string(name) + ")" : std::string());
  }
  return "stopped with status " + std::to_string(status);
}

off_t size_of_file(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_size : 0;
}

// "4441:M 27 Nov 2026 21:02:25.893 # Failed listening..." -> "Failed listening...". Lines that
// are not Redis log lines (config errors printed to stderr) are kept whole.
std::string_view strip_log_prefix(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return line;
  }
  std::string_view rest = line;
  for (int field = 0; field < 6; ++field) {  // pid:role day month year time level
    const auto space = rest.find(' ');
    if (space == std::string_view::npos) return line;
    rest.remove_prefix(space + 1);
  }
  return rest;
}

// The last lines Redis wrote since `offset` (this run only), joined into one line.
std::string log_tail(const fs::path& log, off_t offset, std::size_t max_lines) {
  unique_fd fd(::open(log.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  constexpr off_t window = 8192;
  const off_t size = size_of_file(log);
  const off_t from = std::max(offset, size - window);
  std::string text(static_cast<std::size_t>(std::max<off_t>(size - from, 0)), '\0');
  const auto n = ::pread(fd.get(), text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);

  std::vector<std::string_view> lines;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (!line.empty()) lines.push_back(strip_log_prefix(line));
  }
  std::string out;
  const auto first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (auto i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  return out;
}

// A number from a cgroup file ("max" and anything unreadable: nullopt).
std::optional<std::uint64_t> read_limit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return std::nullopt;
  return memory_size_bytes(text);
}

std::string describe_bytes(std::uint64_t bytes) {
  constexpr std::uint64_t mib = 1024 * 1024;
  if (bytes % (1024 * mib) == 0) return std::to_string(bytes / (1024 * mib)) + "gb";
  return std::to_string(bytes / mib) + "mb";
}

}  // namespace

std::vector<std::string> engine_acl_rules(std::string_view key_prefix) {
  const std::string p = contract::glob_escape(key_prefix);
  const std::string q = p + "inbound:messages";
  return {
      "resetkeys",
      "resetchannels",
      "-@all",
      // Connection housekeeping that client libraries send on their own.
      "+ping",
      "+echo",
      "+hello",
      "+quit",
      "+reset",
      "+client|setname",
      "+client|getname",
      "+client|id",
      "+client|info",
      // Reply and ack together (docs/ai-engine.md, "Handle, then ack"); WATCH is not needed.
      "+multi",
      "+exec",
      "+discard",
      // Replies, and hand-offs to the operator's own staff tooling: push only, never read.
      "+lpush",
      "%W~" + p + "outbound:*",
      "%W~" + p + "handoff:*",
      // Heartbeat and stopping.
      "(+set +del %W~" + q + ":heartbeat:*)",
      "(+sadd %W~" + q + ":consumers)",
      // Optional cleanup of the delivery count together with the ack.
      "(+hdel %W~" + q + ":deliveries)",
      // Take (and, when reusing a name, give back): only moves between the queue and a processing
      // list, so nothing new ever reaches the queue from an engine.
      "(+blmove +brpoplpush +lmove ~" + q + " ~" + q + ":processing:*)",
      // Ack, and look into one's own processing list.
      "(+lrem +lpos +lrange +llen ~" + q + ":processing:*)",
  };
}

boost::system::result<redis_endpoint, std::string> running_embedded_endpoint(
    const fs::path& data_dir) {
  using out = boost::system::result<redis_endpoint, std::string>;
  const auto socket = data_dir / "redis.sock";
  const auto file = data_dir / "redis.password";
  std::error_code ec;
  if (!fs::exists(socket, ec))
    return out(boost::system::in_place_error,
               "bellhop is not running (no embedded Redis socket " + socket.string() +
                   "): start it (systemctl start bellhop) and retry");
  unique_fd in(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in)
    return out(boost::system::in_place_error,
               "cannot read " + file.string() + ": " + errno_message(errno) +
                   " (run this as the user bellhop runs as, e.g. sudo -u bellhop)");
  std::string content(1024, '\0');
  const auto n = ::read(in.get(), content.data(), content.size());
  if (n < 0)
    return out(boost::system::in_place_error,
               "cannot read " + file.string() + ": " + errno_message(errno));
  content.resize(static_cast<std::size_t>(n));
  while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back())))
    content.pop_back();
  if (!is_valid_password(content))
    return out(boost::system::in_place_error,
               "password file " + file.string() + " is empty or malformed");
  redis_endpoint ep;
  ep.kind = redis_endpoint::transport::unix_socket;
  ep.path = socket.string();
  ep.password = std::move(content);
  return ep;
}

std::string engine_acl_setuser(std::string_view key_prefix, std::string_view password) {
  // "#<SHA-256 in hex>": the engine's password itself is in no file but its own.
  std::string line =
      "ACL SETUSER " + std::string(engine_user) + " reset on " +
      (password.empty() ? std::string(">CHANGE-ME") : "#" + contract::sha256_hex(password));
  for (const auto& rule : engine_acl_rules(key_prefix)) line += " " + rule;
  return line;
}

std::uint64_t default_maxmemory_bytes(std::uint64_t memory_bytes) noexcept {
  constexpr std::uint64_t mib = 1024 * 1024;
  return std::clamp<std::uint64_t>(memory_bytes / 4, 256 * mib, 8 * 1024 * mib);
}

std::uint64_t machine_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  std::uint64_t memory = pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) *
                                                          static_cast<std::uint64_t>(page_size)
                                                    : 0;
  for (const char* limit : {"/sys/fs/cgroup/memory.max",                       // cgroup v2
                            "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {  // v1
    try {
      if (const auto bytes = read_limit(limit);
          bytes && *bytes > 0 && (memory == 0 || *bytes < memory))
        memory = *bytes;
    } catch (...) {  // an unreadable cgroup file is no limit
    }
  }
  return memory;
}

class embedded_redis::impl {
 public:
  explicit impl(embedded_redis_options options);
  ~impl() { stop(); }

  outcome<> start();
  void stop();

  redis_endpoint endpoint() const;
  std::string connect_hint() const;
  const fs::path& password_file() const noexcept { return password_path_; }
  const fs::path& engine_password_file() const noexcept { return engine_password_path_; }
  std::uint64_t maxmemory_bytes() const {
    std::lock_guard lock(mutex_);
    return maxmemory_bytes_;
  }
  embedded_redis_stats stats() const;

 private:
  enum class readiness { ready, exited, timed_out, stopping };

  outcome<> prepare();
  outcome<> prepare_data_dir();
  std::string render_config() const;

  void supervise(std::promise<outcome<>> started);
  outcome<pid_t> spawn();
  void adopt_child(pid_t pid);
  readiness wait_until_ready(pid_t pid, steady::time_point deadline, int& status);
  bool answers_ping(pid_t pid) const;
  bool child_exited(pid_t pid) const;
  int reap(pid_t pid);
  std::string startup_failure(int status, off_t log_offset) const;

  const embedded_redis_options options_;
  const fs::path data_dir_;
  const fs::path redis_dir_;
  const fs::path config_path_;
  const fs::path socket_path_;
  const fs::path password_path_;
  const fs::path engine_password_path_;
  const fs::path log_path_;
  const fs::path lock_path_;

  // Held by start()/stop() for their whole run; never taken by the monitor thread.
  std::mutex lifecycle_mutex_;
  std::thread monitor_;
  unique_fd lock_fd_;  // flock on the data dir while our Redis may be running
  fs::path binary_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::string password_;
  std::string engine_password_hash_;  // SHA-256 hex: the config holds no engine password
  std::string maxmemory_;             // as written into the config: "0" = no limit
  std::uint64_t maxmemory_bytes_ = 0;
  pid_t pid_ = 0;
  bool running_ = false;   // answered PING and has not exited since
  bool stopping_ = false;  // stop() was called: do not restart
  bool monitor_done_ = true;
  std::uint64_t restarts_ = 0;
};

embedded_redis::impl::impl(embedded_redis_options options)
    : options_(std::move(options)),
      data_dir_([&] {
        std::error_code ec;
        auto absolute = fs::absolute(options_.data_dir, ec);
        return (ec ? options_.data_dir : absolute).lexically_normal();
      }()),
      redis_dir_(data_dir_ / "redis"),
      config_path_(data_dir_ / "redis.conf"),
      socket_path_(data_dir_ / "redis.sock"),
      password_path_(data_dir_ / "redis.password"),
      engine_password_path_(data_dir_ / "engine.password"),
      log_path_(redis_dir_ / "redis.log"),
      lock_path_(data_dir_ / "redis.lock") {}

outcome<> embedded_redis::impl::start() {
  std::lock_guard life(lifecycle_mutex_);
  if (monitor_.joinable()) return {};  // already started

  if (auto prepared = prepare(); !prepared) {
    lock_fd_.reset();
    return prepared;
  }

  std::promise<outcome<>> started;
  auto result = started.get_future();
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    monitor_done_ = false;
  }
  monitor_ = std::thread(
      [this, started = std::move(started)]() mutable { supervise(std::move(started)); });
  auto outcome = result.get();
  if (!outcome) {
    monitor_.join();  // it has already killed and reaped the child
    lock_fd_.reset();
  }
  return outcome;
}

void embedded_redis::impl::stop() {
  {
    // A start() still waiting for readiness holds the lifecycle mutex: make it give up first.
    std::lock_guard lock(mutex_);
    if (!monitor_done_) {
      stopping_ = true;
      if (pid_ > 0) ::kill(pid_, SIGTERM);
      changed_.notify_all();
    }
  }
  std::lock_guard life(lifecycle_mutex_);
  if (!monitor_.joinable()) return;
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    // Redis shuts down cleanly on SIGTERM: it fsyncs the AOF and removes its socket.
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    changed_.notify_all();
    if (!changed_.wait_for(lock, options_.stop_timeout, [&] { return monitor_done_; }) &&
        pid_ > 0) {
      spdlog::warn("embedded Redis (pid {}) did not stop within {} ms; killing it", pid_,
                   options_.stop_timeout.count());
      ::kill(-pid_, SIGKILL);
    }
  }
  monitor_.join();
  lock_fd_.reset();
  spdlog::info("embedded Redis stopped");
}

redis_endpoint embedded_redis::impl::endpoint() const {
  redis_endpoint ep;
  ep.kind = redis_endpoint::transport::unix_socket;
  ep.path = socket_path_.string();
  std::lock_guard lock(mutex_);
  ep.password = password_;
  return ep;
}

std::string embedded_redis::impl::connect_hint() const {
  const std::string engine = "AI engines: user " + std::string(engine_user) + ", password in " +
                             engine_password_path_.string();
  const std::string bellhop = "bellhop's own full-access password is in " + password_path_.string();
  if (options_.port == 0) {
    return "embedded Redis: no TCP port (redis.embedded.port is 0); " + engine +
           " on unix socket " + socket_path_.string() + "; " + bellhop;
  }
  return "embedded Redis: " + engine + ": redis-cli -h 127.0.0.1 -p " +
         std::to_string(options_.port) + " --user " + std::string(engine_user) + " --askpass; " +
         bellhop;
}

embedded_redis_stats embedded_redis::impl::stats() const {
  std::lock_guard lock(mutex_);
  return {running_, restarts_, static_cast<int>(pid_)};
}

outcome<> embedded_redis::impl::prepare() {
  if (options_.data_dir.empty()) {
    return failure{"data_dir is not set: the embedded Redis needs one; set data_dir (--data-dir)"};
  }
  if (options_.durability != "everysec" && options_.durability != "always") {
    return failure{"embedded Redis durability \"" + options_.durability +
                   "\" is not valid: use \"everysec\" or \"always\""};
  }
  std::uint64_t maxmemory = 0;
  if (options_.maxmemory.empty()) {
    const auto memory = machine_memory_bytes();
    maxmemory = default_maxmemory_bytes(memory);
    spdlog::info(
        "embedded Redis: maxmemory {} (a quarter of this machine's {} MiB, within 256 MiB "
        "- 8 GiB; set redis.embedded.maxmemory to change it)",
        describe_bytes(maxmemory), memory / (1024 * 1024));
  } else if (const auto bytes = memory_size_bytes(options_.maxmemory)) {
    maxmemory = *bytes;
  } else {
    return failure{"embedded Redis maxmemory \"" + options_.maxmemory +
                   "\" is not a size: use e.g. \"512mb\" or \"2gb\", or \"0\" for no limit"};
  }
  auto binary = find_redis_server(options_.redis_server);
  if (!binary) return failure{binary.error()};
  binary_ = *binary;

  if (auto dir = prepare_data_dir(); !dir) return dir;

  auto password = load_or_create_password(password_path_, data_dir_, 077);
  if (!password) return failure{password.error()};
  auto engine_password = load_or_create_password(engine_password_path_, data_dir_, 037);
  if (!engine_password) return failure{engine_password.error()};
  const auto engine_hash = contract::sha256_hex(*engine_password);
  if (engine_hash.empty()) return failure{"cannot hash the engine password: OpenSSL failed"};
  {
    std::lock_guard lock(mutex_);
    password_ = *password;
    engine_password_hash_ = engine_hash;
    maxmemory_bytes_ = maxmemory;
    maxmemory_ = options_.maxmemory.empty() ? std::to_string(maxmemory) : options_.maxmemory;
  }
  if (const int err = write_file_atomically(config_path_, render_config(), 0600); err != 0) {
    return failure{data_dir_error(data_dir_, errno_message(err))};
  }
  return {};
}

outcome<> embedded_redis::impl::prepare_data_dir() {
  std::error_code ec;
  fs::create_directories(data_dir_, ec);
  if (ec) return failure{data_dir_error(data_dir_, ec.message())};
  if (!fs::is_directory(data_dir_, ec)) {
    return failure{data_dir_error(data_dir_, errno_message(ENOTDIR))};
  }
  if (::access(data_dir_.c_str(), W_OK | X_OK) != 0) {
    return failure{data_dir_error(data_dir_, errno_message(errno))};
  }

  // Two Redis processes on one AOF directory would corrupt it.
  lock_fd_ = unique_fd(::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock_fd_) return failure{data_dir_error(data_dir_, errno_message(errno))};
  // The child Redis inherits the lock (spawn), so after a SIGKILL of bellhop it stays held
  // until that Redis has finished its shutdown (PR_SET_PDEATHSIG sends it SIGTERM): a bellhop
  // restarted at once waits for it instead of starting a second Redis on the same files.
  const auto lock_deadline = steady::now() + options_.start_timeout;
  bool waiting_said = false;
  while (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EWOULDBLOCK && steady::now() < lock_deadline) {
      if (!waiting_said) {
        spdlog::warn("data dir {}: waiting up to {} ms for the Redis that holds {} to exit",
                     data_dir_.string(), options_.start_timeout.count(), lock_path_.string());
        waiting_said = true;
      }
      std::this_thread::sleep_for(lock_poll_interval);
      continue;
    }
    lock_fd_.reset();
    if (err == EWOULDBLOCK) {
      return failure{"data dir " + data_dir_.string() +
                     " is already used by another embedded Redis (" + lock_path_.string() +
                     " is locked): stop the other bellhop or set data_dir (--data-dir)"};
    }
    return failure{"cannot lock " + lock_path_.string() + ": " + errno_message(err)};
  }

  if (::mkdir(redis_dir_.c_str(), 0700) != 0) {
    if (errno != EEXIST) return failure{data_dir_error(data_dir_, errno_message(errno))};
    if (!fs::is_directory(redis_dir_, ec)) {
      return failure{redis_dir_.string() + " exists and is not a directory; remove it"};
    }
  }
  if (::chmod(redis_dir_.c_str(), 0700) != 0) {
    return failure{data_dir_error(data_dir_, errno_message(errno))};
  }

  if (socket_path_.string().size() >= sizeof(sockaddr_un::sun_path)) {
    return failure{"data dir " + data_dir_.string() + " is too long for a unix socket path (" +
                   socket_path_.string() + " must be under " +
                   std::to_string(sizeof(sockaddr_un::sun_path)) +
                   " bytes); set a shorter data_dir (--data-dir)"};
  }
  return {};
}

std::string embedded_redis::impl::render_config() const {
  std::string c;
  c += "# Written by bellhop at every start of its embedded Redis: edits are overwritten.\n";
  c += "# Contains the Redis password: keep this file private (mode 0600).\n";
  c += "daemonize no\n";
  c += "supervised no\n";
  c += "# No pidfile: bellhop is the parent and tracks the process itself.\n";
  c += "port " + std::to_string(options_.port) + "\n";
  c += "bind 127.0.0.1\n";
  c += "protected-mode yes\n";
  c += "unixsocket " + config_string(socket_path_.string()) + "\n";
  c += "unixsocketperm 700\n";
  c += "# bellhop: the default user, full access.\n";
  c += "requirepass " + config_string(password_) + "\n";
  c += "# AI engines: only the commands and keys of docs/ai-engine.md; the password is in\n";
  c += "# engine.password, only its SHA-256 is here.\n";
  c += "user " + std::string(engine_user) + " reset on " +
       config_string("#" + engine_password_hash_);
  for (const auto& rule : engine_acl_rules(options_.key_prefix)) c += " " + config_string(rule);
  c += "\n";
  c += "dir " + config_string(redis_dir_.string()) + "\n";
  c += "logfile " + config_string(log_path_.string()) + "\n";
  c += "loglevel notice\n";
  c += "# The append-only file is the durability; no RDB snapshots.\n";
  c += "save \"\"\n";
  c += "appendonly yes\n";
  c += "appendfsync " + options_.durability + "\n";
  c += "aof-use-rdb-preamble yes\n";
  c += "# Rewrites once the AOF passes 256 MB (Redis's default 64 MB): under a burst of messages\n";
  c += "# the AOF (every command) grows several times faster than the base it rewrites to (the\n";
  c +=
      "# dataset, compact), so at 64 MB a rewrite (a fork and a dump of the whole dataset on the\n";
  c += "# same cores) ran every few seconds: p99 of the inbound API 226 ms at 5,000 messages/s,\n";
  c += "# 5.7 ms with this (bench/run_ingest_bench.sh; docs/configuration.md).\n";
  c += "auto-aof-rewrite-min-size 256mb\n";
  c += "# Queued messages must never be evicted: writes fail instead when memory is full.\n";
  c += "maxmemory-policy noeviction\n";
  c += "# When full, writes answer OOM and bellhop answers 503 redis_full; nothing stored is "
       "lost.\n";
  c += "maxmemory " + maxmemory_ + "\n";
  c += "# A sorted set past 16 members becomes a skiplist: a property's conversation index takes a\n";
  c += "# ZADD per guest message, which costs a scan of the whole set while it is a listpack\n";
  c += "# (11% of Redis's work per message with 100 conversations, the default allows 128).\n";
  c += "zset-max-listpack-entries 16\n";
  return c;
}

// The monitor thread. It forks every redis-server itself: PR_SET_PDEATHSIG fires when the
// *thread* that forked the child exits, and this thread outlives every child it starts.
void embedded_redis::impl::supervise(std::promise<outcome<>> started) {
  // Signals for the process are handled by other threads; the child resets its own mask.
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);

  bool starting = true;
  auto fail_start = [&](std::string message) { started.set_value(failure{std::move(message)}); };
  backoff delays(options_.restart_backoff_initial, options_.restart_backoff_max);

  for (;;) {
    const off_t log_offset = size_of_file(log_path_);
    const auto began = steady::now();
    std::string what_happened;
    if (auto spawned = spawn(); !spawned) {
      if (starting) {
        fail_start(spawned.error());
        break;
      }
      what_happened = "could not be restarted: " + spawned.error();
    } else {
      const pid_t pid = *spawned;
      adopt_child(pid);
      int status = -1;
      switch (wait_until_ready(pid, began + options_.start_timeout, status)) {
        case readiness::ready:
          if (starting) {
            spdlog::info("embedded Redis ready (pid {}, config {}, log {})", pid,
                         config_path_.string(), log_path_.string());
            started.set_value(outcome<>());
            starting = false;
          } else {
            spdlog::info("embedded Redis restarted (pid {})", pid);
          }
          status = reap(pid);  // blocks until it exits
          what_happened = "(pid " + std::to_string(pid) + ") " + describe_status(status);
          break;
        case readiness::exited:
          if (starting) {
            fail_start(startup_failure(status, log_offset));
            break;
          }
          what_happened = "(pid " + std::to_string(pid) + ") " + describe_status(status) +
                          " while starting: " + log_tail(log_path_, log_offset, 2);
          break;
        case readiness::timed_out:
          ::kill(-pid, SIGKILL);
          reap(pid);
          if (starting) {
            fail_start("embedded Redis did not answer PING within " +
                       std::to_string(options_.start_timeout.count()) + " ms; see " +
                       log_path_.string());
            break;
          }
          what_happened = "(pid " + std::to_string(pid) + ") did not answer PING within " +
                          std::to_string(options_.start_timeout.count()) + " ms";
          break;
        case readiness::stopping:
          reap(pid);  // stop() has signalled it
          if (starting) fail_start("embedded Redis was stopped before it was ready");
          starting = false;
          break;
      }
      if (starting) break;  // start() failed: it reports the error
    }

    std::unique_lock lock(mutex_);
    if (stopping_) break;
    if (steady::now() - began > stable_run) delays.reset();
    const auto delay = delays.next();
    spdlog::warn("embedded Redis {}; restarting it in {} ms (log: {})", what_happened,
                 delay.count(), log_path_.string());
    if (changed_.wait_for(lock, delay, [&] { return stopping_; })) break;
    ++restarts_;
  }

  std::lock_guard lock(mutex_);
  monitor_done_ = true;
  changed_.notify_all();
}

outcome<pid_t> embedded_redis::impl::spawn() {
  // Everything the child needs is prepared here: between fork and exec it may only make
  // async-signal-safe calls (another thread may hold the malloc lock).
  unique_fd log =
      open_above_stdio(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
  if (!log) return failure{"cannot open " + log_path_.string() + ": " + errno_message(errno)};
  unique_fd null = open_above_stdio("/dev/null", O_RDONLY);
  if (!null) return failure{"cannot open /dev/null: " + errno_message(errno)};
  std::string binary = binary_.string();
  std::string config = config_path_.string();
  std::array<char*, 3> argv{binary.data(), config.data(), nullptr};
  rlimit files{};
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))
                         : 65536;
  const pid_t parent = ::getpid();
  const int lock_fd = lock_fd_ ? lock_fd_.get() : -1;

  const pid_t pid = ::fork();
  if (pid < 0) return failure{"cannot start redis-server: fork failed: " + errno_message(errno)};
  if (pid == 0) {
    // Own process group: a Ctrl-C in bellhop's terminal must not reach Redis, which bellhop
    // stops itself, after it has stopped using it.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // bellhop died before prctl took effect
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(null.get(), STDIN_FILENO) < 0 || ::dup2(log.get(), STDOUT_FILENO) < 0 ||
        ::dup2(log.get(), STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    // The data dir's lock stays held by this Redis until it exits (see prepare_data_dir).
    const bool locked = lock_fd >= 0 && (lock_fd == inherited_lock_fd
                                             ? ::fcntl(lock_fd, F_SETFD, 0) == 0
                                             : ::dup2(lock_fd, inherited_lock_fd) >= 0);
    const int first_closed = locked ? inherited_lock_fd + 1 : STDERR_FILENO + 1;
    if (::close_range(static_cast<unsigned>(first_closed), ~0U, 0) != 0) {
      for (int fd = first_closed; fd < max_fd; ++fd) ::close(fd);
    }
    ::execv(argv[0], argv.data());
    static constexpr char message[] = "bellhop: cannot execute redis-server\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so a kill(-pid) right after fork cannot miss the group
  return pid;
}

void embedded_redis::impl::adopt_child(pid_t pid) {
  std::lock_guard lock(mutex_);
  pid_ = pid;
  running_ = false;
  // stop() may have looked for a child just before this one existed.
  if (stopping_) ::kill(pid, SIGTERM);
}

embedded_redis::impl::readiness embedded_redis::impl::wait_until_ready(pid_t pid,
                                                                       steady::time_point deadline,
                                                                       int& status) {
  for (;;) {
    if (child_exited(pid)) {
      status = reap(pid);
      return readiness::exited;
    }
    if (answers_ping(pid)) {
      std::lock_guard lock(mutex_);
      running_ = pid_ == pid;
      return readiness::ready;
    }
    if (steady::now() >= deadline) return readiness::timed_out;
    std::unique_lock lock(mutex_);
    if (changed_.wait_for(lock, probe_interval, [&] { return stopping_; })) {
      return readiness::stopping;
    }
  }
}

// AUTH + PING over the unix socket, and INFO to make sure the answer comes from our child and
// not from a stale server behind the same socket path.
bool embedded_redis::impl::answers_ping(pid_t pid) const {
  const auto tv = to_timeval(probe_io_timeout);
  context_ptr c(redisConnectUnixWithTimeout(socket_path_.c_str(), tv));
  if (!c || c->err != 0) return false;
  if (redisSetTimeout(c.get(), tv) != REDIS_OK) return false;
  std::string password;
  {
    std::lock_guard lock(mutex_);
    password = password_;
  }
  auto auth = command(c.get(), "AUTH %s", password.c_str());
  if (!auth || auth->type != REDIS_REPLY_STATUS) return false;
  auto pong = command(c.get(), "PING");
  if (!pong || pong->type != REDIS_REPLY_STATUS ||
      std::string_view(pong->str, pong->len) != "PONG") {
    return false;  // e.g. -LOADING while it replays the AOF
  }
  auto info = command(c.get(), "INFO server");
  if (!info || info->type != REDIS_REPLY_STRING) return false;
  const std::string_view text(info->str, info->len);
  const std::string key = "\nprocess_id:" + std::to_string(pid) + "\r";
  return text.find(key) != std::string_view::npos;
}

bool embedded_redis::impl::child_exited(pid_t pid) const {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // someone else reaped it (SIGCHLD set to SIG_IGN)
  }
  return info.si_pid == pid;
}

// Waits for the child to exit, then reaps it. The pid stays valid (a zombie) until the very end,
// so stop() can never signal an unrelated process that reused it.
int embedded_redis::impl::reap(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  // Anything left in its process group (an AOF rewrite child after a SIGKILL) goes too.
  ::kill(-pid, SIGKILL);
  {
    std::lock_guard lock(mutex_);
    if (pid_ == pid) pid_ = 0;
    running_ = false;
  }
  int status = 0;
  pid_t r = 0;
  while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  return r == pid ? status : -1;
}

std::string embedded_redis::impl::startup_failure(int status, off_t log_offset) const {
  const std::string tail = log_tail(log_path_, log_offset, 3);
  if (options_.port != 0 && tail.find("Address already in use") != std::string::npos) {
    return "embedded Redis cannot listen on 127.0.0.1:" + std::to_string(options_.port) +
           ": port " + std::to_string(options_.port) +
           " is already in use; stop the process using it or choose another embedded Redis port";
  }
  return "redis-server " + describe_status(status) +
         " during startup: " + (tail.empty() ? "no output" : tail) +
         " (log: " + log_path_.string() + ")";
}

embedded_redis::embedded_redis(embedded_redis_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

embedded_redis::~embedded_redis() = default;

boost::system::result<void, std::string> embedded_redis::start() {
  return impl_->start();
}
void embedded_redis::stop() {
  impl_->stop();
}
redis_endpoint embedded_redis::endpoint() const {
  return impl_->endpoint();
}
std::string embedded_redis::connect_hint() const {
  return impl_->connect_hint();
}
std::filesystem::path embedded_redis::password_file() const {
  return impl_->password_file();
}
std::filesystem::path embedded_redis::engine_password_file() const {
  return impl_->engine_password_file();
}
std::uint64_t embedded_redis::maxmemory_bytes() const {
  return impl_->maxmemory_bytes();
}
embedded_redis_stats embedded_redis::stats() const {
  return impl_->stats();
}

}  // namespace bellhop::broker
