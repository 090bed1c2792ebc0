#include "smtp_client.hpp"

#include <curl/curl.h>

#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace bellhop::gateway {
namespace {

struct job {
  std::string from, to, data;
  boost::asio::any_io_executor ex;
  std::function<void(smtp_result)> done;
};

// libcurl reads the message through this: what is left of it, as much as fits.
struct upload {
  const std::string* data;
  std::size_t sent = 0;
};

std::size_t read_message(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* u = static_cast<upload*>(user);
  const std::size_t n = std::min(size * count, u->data->size() - u->sent);
  std::memcpy(buffer, u->data->data() + u->sent, n);
  u->sent += n;
  return n;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

smtp_result transfer(const smtp_settings& s, const job& j) {
  smtp_result r;
  CURL* curl = curl_easy_init();
  if (!curl) {
    r.curl_code = CURLE_FAILED_INIT;
    r.error = "libcurl could not start a transfer";
    return r;
  }
  char error[CURL_ERROR_SIZE] = {};
  upload body{&j.data};
  curl_slist* rcpt = curl_slist_append(nullptr, j.to.c_str());
  const long timeout_ms = static_cast<long>(s.timeout.count());
  curl_easy_setopt(curl, CURLOPT_URL, s.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));  // never plain text
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!s.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, s.ca_file.c_str());
  if (!s.username.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, s.username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, s.password.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, ("<" + j.from + ">").c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message);
  curl_easy_setopt(curl, CURLOPT_READDATA, &body);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(j.data.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

  const CURLcode code = curl_easy_perform(curl);
  r.curl_code = static_cast<int>(code);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.smtp_code);
  if (code != CURLE_OK) r.error = error[0] ? error : curl_easy_strerror(code);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  return r;
}

}  // namespace

class smtp_client::impl {
 public:
  impl(smtp_settings s, std::size_t threads) : settings_(std::move(s)) {
    init_curl_once();
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i)
      workers_.emplace_back([this] { run(); });
  }

  ~impl() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      queue_.clear();
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  void push(job j) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(j));
    }
    wake_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      job j;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        j = std::move(queue_.front());
        queue_.pop_front();
      }
      auto r = transfer(settings_, j);
      boost::asio::post(j.ex, [done = std::move(j.done), r = std::move(r)]() mutable {
        done(std::move(r));
      });
    }
  }

  const smtp_settings settings_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

smtp_client::smtp_client(smtp_settings settings, std::size_t threads)
    : impl_(std::make_unique<impl>(std::move(settings), threads)) {}

smtp_client::~smtp_client() = default;

void smtp_client::send(std::string envelope_from, std::string envelope_to, std::string data,
                       boost::asio::any_io_executor ex, std::function<void(smtp_result)> done) {
  impl_->push({std::move(envelope_from), std::move(envelope_to), std::move(data), std::move(ex),
               std::move(done)});
}

}  // namespace bellhop::gateway
