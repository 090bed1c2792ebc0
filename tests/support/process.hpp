#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bellhop::test {

// A child process for tests: stdout and stderr go to a log file that the test can read.
class child_process {
 public:
  child_process() = default;
  // Starts argv[0] (looked up on PATH) with extra environment variables.
  child_process(std::vector<std::string> argv, std::filesystem::path log_file,
                std::map<std::string, std::string> env = {});
  ~child_process();  // SIGKILLs and reaps if still running
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;

  int pid() const noexcept { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit status (WEXITSTATUS, or 128+signal) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string output() const;  // the log file's content
  const std::filesystem::path& log_file() const noexcept { return log_file_; }

 private:
  void reap();

  int pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_file_;
};

// A free loopback TCP port, below the kernel's ephemeral range (see process.cpp).
std::uint16_t free_port();

// A fresh temporary directory removed on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// Polls `pred` every 20 ms until it is true or the timeout passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Runs a shell command; returns its stdout (with stderr when `with_stderr`), trailing
// newlines trimmed.
std::string run_capture(const std::string& shell_command, bool with_stderr = false);

// Process ids of running processes whose command line contains `needle`.
std::vector<int> find_processes(const std::string& needle);
// Live (not zombie) children of `parent` whose command name is `comm` (e.g. "redis-server").
std::vector<int> children_of(int parent, const std::string& comm);
// Whether `pid` exists and is not a zombie.
bool process_alive(int pid);

}  // namespace bellhop::test
