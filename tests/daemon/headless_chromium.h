#pragma once
// A real browser for the status page's tests: Debian's chromium, headless,
// driven over the DevTools protocol on a pipe (--remote-debugging-pipe: the
// browser reads NUL-terminated JSON commands on fd 3 and writes replies and
// events on fd 4). Only what the tests need: open a page at a window size,
// evaluate an expression, take a screenshot. Nothing is downloaded; the
// profile lives in a fresh directory removed with the object.
//
// Not thread-safe; one owner. The destructor closes the browser (SIGKILL
// after a grace) and reaps it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lib/util/text.h"

namespace ringwatch::testing {

class HeadlessChromium {
 public:
  static constexpr const char* kBinary = "/usr/bin/chromium";

  HeadlessChromium() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-chromium-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    int to_browser[2], from_browser[2];
    if (::pipe2(to_browser, O_CLOEXEC) != 0 || ::pipe2(from_browser, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> argv = {kBinary,
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--disable-quic",
                                     "--no-first-run",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--disable-extensions",
                                     "--remote-debugging-pipe",
                                     "--user-data-dir=" + (dir_ / "profile").string(),
                                     "about:blank"};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);  // its helper processes go with it
      const int log = ::open((dir_ / "chromium.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::dup2(to_browser[0], 3);
      ::dup2(from_browser[1], 4);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(to_browser[0]);
    ::close(from_browser[1]);
    write_fd_ = to_browser[1];
    read_fd_ = from_browser[0];
  }

  ~HeadlessChromium() {
    if (pid_ > 0) {
      try {
        call("Browser.close", "{}", "", std::chrono::seconds(5));
      } catch (const std::exception&) {
      }
      int status = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(-pid_, SIGKILL);
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      ::kill(-pid_, SIGKILL);  // any helper process left in its group
    }
    if (write_fd_ >= 0) ::close(write_fd_);
    if (read_fd_ >= 0) ::close(read_fd_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  // A new tab at `url` with a viewport of width x height CSS pixels; its session.
  std::string open(const std::string& url, int width, int height, bool mobile = false) {
    auto target = call("Target.createTarget", object({{"url", "about:blank"}}));
    const std::string target_id = target["targetId"].GetString();
    auto attached =
        call("Target.attachToTarget", "{\"targetId\":" + quote(target_id) + ",\"flatten\":true}");
    const std::string session = attached["sessionId"].GetString();
    call("Emulation.setDeviceMetricsOverride",
         "{\"width\":" + std::to_string(width) + ",\"height\":" + std::to_string(height) +
             ",\"deviceScaleFactor\":1,\"mobile\":" + (mobile ? "true" : "false") + "}",
         session);
    call("Page.enable", "{}", session);
    call("Page.navigate", object({{"url", url}}), session);
    return session;
  }

  // The value of a JavaScript expression that yields a string ("" for
  // undefined, null or an exception).
  std::string evaluate(const std::string& session, const std::string& expression) {
    auto result =
        call("Runtime.evaluate",
             "{\"expression\":" + quote(expression) + ",\"returnByValue\":true}", session);
    if (result.HasMember("exceptionDetails")) return "";
    const auto& value = result["result"];
    if (!value.HasMember("value") || !value["value"].IsString()) return "";
    return value["value"].GetString();
  }

  // A PNG of the viewport (the whole page when full_page) at `path`.
  void screenshot(const std::string& session, const std::filesystem::path& path,
                  bool full_page = false) {
    auto result = call("Page.captureScreenshot",
                       std::string("{\"format\":\"png\",\"captureBeyondViewport\":") +
                           (full_page ? "true" : "false") + "}",
                       session);
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary)
        << util::base64_decode(result["data"].GetString()).value_or("");
  }

  std::string log() const {
    std::ifstream in(dir_ / "chromium.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  static std::string quote(const std::string& text) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
    return buffer.GetString();
  }
  static std::string object(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out = "{";
    for (const auto& [key, value] : fields) {
      if (out.size() > 1) out += ',';
      out += quote(key) + ":" + quote(value);
    }
    return out + "}";
  }

  // Sends one command and waits for its reply (events in between are
  // dropped); the reply's "result". Throws on an error reply or a timeout.
  rapidjson::Document call(const std::string& method, const std::string& params,
                           const std::string& session = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const int id = ++next_id_;
    std::string message =
        "{\"id\":" + std::to_string(id) + ",\"method\":" + quote(method) + ",\"params\":" + params;
    if (!session.empty()) message += ",\"sessionId\":" + quote(session);
    message += "}";
    message.push_back('\0');
    for (std::size_t sent = 0; sent < message.size();) {
      const auto n = ::write(write_fd_, message.data() + sent, message.size() - sent);
      if (n <= 0) throw std::runtime_error("chromium: cannot send " + method);
      sent += static_cast<std::size_t>(n);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto end = pending_.find('\0');
      if (end != std::string::npos) {
        const std::string reply = pending_.substr(0, end);
        pending_.erase(0, end + 1);
        rapidjson::Document document;
        document.Parse(reply.c_str());
        if (document.HasParseError() || !document.IsObject() || !document.HasMember("id") ||
            document["id"].GetInt() != id) {
          continue;  // an event, or a reply to an earlier call
        }
        if (document.HasMember("error")) {
          throw std::runtime_error("chromium: " + method + ": " + reply);
        }
        rapidjson::Document result;
        result.CopyFrom(document["result"], result.GetAllocator());
        return result;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("chromium: no reply to " + method);
      pollfd p{read_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[65536];
      const auto n = ::read(read_fd_, buffer, sizeof buffer);
      if (n <= 0) throw std::runtime_error("chromium exited:\n" + log());
      pending_.append(buffer, static_cast<std::size_t>(n));
    }
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int write_fd_ = -1, read_fd_ = -1;
  int next_id_ = 0;
  std::string pending_;
};

}  // namespace ringwatch::testing
