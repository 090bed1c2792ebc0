#include "support/process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bellhop::test {

child_process::child_process(std::vector<std::string> argv, std::filesystem::path log_file,
                             std::map<std::string, std::string> env)
    : log_file_(std::move(log_file)) {
  int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_file_.string());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::setpgid(0, 0);
    // Never outlive a crashed test. Note: this fires when the *thread* that forked exits.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
}

child_process::~child_process() { reap(); }

void child_process::reap() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  pid_ = -1;
}

child_process::child_process(child_process&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_file_(std::move(other.log_file_)) {
  other.pid_ = -1;
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    reap();
    pid_ = other.pid_;
    status_ = other.status_;
    log_file_ = std::move(other.log_file_);
    other.pid_ = -1;
  }
  return *this;
}

bool child_process::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  int r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void child_process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string child_process::output() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// The first port the kernel may give the local end of an outgoing connection.
std::uint32_t ephemeral_low() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  std::uint32_t low = 32768;
  range >> low;
  return low;
}

// Binds a socket to 127.0.0.1:`port` (0: a port the kernel picks) and closes it: the port it
// was bound to, or 0 when the bind failed.
std::uint16_t bind_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  return ok ? ntohs(addr.sin_port) : 0;
}

}  // namespace

// A port the kernel handed out (bind to port 0) lies in the ephemeral range, where any
// connect() of a test running alongside may take it as its local port between this probe and
// the server's own bind ("Address already in use"). So the port is drawn at random below that
// range, where only a listener binds, and never handed out twice by one test process.
std::uint16_t free_port() {
  static std::mutex mutex;
  static std::set<std::uint16_t> given;
  static std::mt19937 random(std::random_device{}() ^ static_cast<std::uint32_t>(::getpid()));
  constexpr std::uint32_t first = 10000;
  const std::uint32_t low = ephemeral_low();
  std::lock_guard lock(mutex);
  if (low > first + 1000) {
    std::uniform_int_distribution<std::uint32_t> pick(first, low - 1);
    for (int attempt = 0; attempt < 2000; ++attempt) {
      const auto port = static_cast<std::uint16_t>(pick(random));
      if (!given.contains(port) && bind_loopback(port) == port) {
        given.insert(port);
        return port;
      }
    }
  }
  // No room below the ephemeral range: let the kernel choose.
  return bind_loopback(0);
}

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "bellhop-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string run_capture(const std::string& shell_command, bool with_stderr) {
  const std::string cmd = shell_command + (with_stderr ? " 2>&1" : " 2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
  if (!pipe) return {};
  std::string out;
  std::array<char, 4096> buf{};
  while (auto n = std::fread(buf.data(), 1, buf.size(), pipe.get())) out.append(buf.data(), n);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::vector<int> find_processes(const std::string& needle) {
  std::vector<int> pids;
  for (auto& entry : std::filesystem::directory_iterator("/proc")) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(needle) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

namespace {

// Fields of /proc/<pid>/stat: comm (in parentheses, may contain spaces), state, ppid.
bool read_stat(int pid, std::string& comm, char& state, int& ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  rest >> state >> ppid;
  return true;
}

}  // namespace

std::vector<int> children_of(int parent, const std::string& comm) {
  std::vector<int> pids;
  for (auto& entry : std::filesystem::directory_iterator("/proc")) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string c;
    char state = 0;
    int ppid = 0;
    const int pid = std::stoi(name);
    if (read_stat(pid, c, state, ppid) && ppid == parent && c == comm && state != 'Z') {
      pids.push_back(pid);
    }
  }
  return pids;
}

bool process_alive(int pid) {
  std::string comm;
  char state = 0;
  int ppid = 0;
  return read_stat(pid, comm, state, ppid) && state != 'Z';
}

}  // namespace bellhop::test
