#include "tools/cli/progress_screen.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "lib/util/text.h"
#include "lib/util/time.h"

namespace ringwatch::cli {

namespace {

using migration::CheckVerdict;
using migration::ClusterView;
using migration::EtaBasis;
using migration::format_duration;
using migration::Phase;
using migration::ProgressView;

std::string position(const ClusterView& cluster) {
  if (cluster.step_number == 0)
    return "the end (" + std::to_string(cluster.steps_total) + " steps)";
  return "step " + std::to_string(cluster.step_number) + "/" + std::to_string(cluster.steps_total) +
         " " + cluster.step_name;
}

std::string phase_text(const ClusterView& cluster) {
  std::string text = migration::to_string(cluster.phase);
  if (cluster.phase == Phase::paused) {
    text += std::string(" (") + migration::to_string(cluster.reason) + ")";
  } else if (cluster.phase == Phase::running && cluster.attempt > 0) {
    text += " (attempt " + std::to_string(cluster.attempt) + ")";
  }
  return text;
}

std::string times(const ClusterView& cluster) {
  if (cluster.phase == Phase::pending) return "not started";
  std::string text = "total " + format_duration(cluster.overall_elapsed);
  if (!cluster.ended()) text = "step " + format_duration(cluster.step_elapsed) + ", " + text;
  return text;
}

std::string eta_text(const ClusterView& cluster) {
  if (cluster.ended()) return "";
  if (!cluster.eta) return "ETA unknown (no step done yet)";
  std::string text = "ETA " + format_duration(*cluster.eta);
  if (cluster.held) return text + " of work once it goes on";
  switch (cluster.eta_basis) {
    case EtaBasis::step_history:
      return text + " (step history)";
    case EtaBasis::mean_so_far:
      return text + " (mean of " + util::plural(cluster.samples, "step") + ")";
    case EtaBasis::mixed:
      break;
  }
  return text + " (step history and mean)";
}

// "" when no gating check has been decided at this step.
std::string verdict_text(const CheckVerdict& verdict) {
  switch (verdict.kind) {
    case CheckVerdict::Kind::none:
      return "";
    case CheckVerdict::Kind::pending:
      return "checks: " + verdict.what + " being evaluated";
    case CheckVerdict::Kind::passed:
      return "checks: " + verdict.what + " passed";
    case CheckVerdict::Kind::failing:
      break;
  }
  return "checks: FAILING: " + verdict.detail;
}

std::string summary(const ClusterView& cluster) {
  std::string text = position(cluster) + ", " + phase_text(cluster);
  if (const std::string eta = eta_text(cluster); !eta.empty()) text += ", " + eta;
  return text + ", " + times(cluster);
}

// What a plain line is about, without the times that change every second.
std::string what_it_says(const ClusterView& cluster) {
  return position(cluster) + "|" + phase_text(cluster) + "|" + verdict_text(cluster.verdict) + "|" +
         cluster.verdict.diagnosis;
}

std::pair<int, int> terminal_size() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0)
    return {size.ws_col, size.ws_row};
  return {80, 24};
}

std::string engine_line(const std::string& holder) {
  return holder.empty() ? "no engine is running" : "engine: " + holder;
}

std::atomic<bool> interrupted{false};

void on_interrupt(int) {
  interrupted = true;
}

}  // namespace

std::vector<std::string> view_lines(const ProgressView& view,
                                    const std::vector<std::string>& recent,
                                    const EngineHolder& engine) {
  const auto ended = std::count_if(view.clusters.begin(), view.clusters.end(),
                                   [](const ClusterView& c) { return c.ended(); });
  std::vector<std::string> lines{"migration of plan " + view.plan + " at " +
                                 util::format_clock_utc(view.at) + ": " + std::to_string(ended) +
                                 " of " + util::plural(view.clusters.size(), "cluster") + " ended"};
  if (engine) lines.push_back(engine_line(*engine));
  for (const ClusterView& cluster : view.clusters) {
    lines.push_back(cluster.name + ": " + summary(cluster));
    if (const std::string verdict = verdict_text(cluster.verdict); !verdict.empty())
      lines.push_back("  " + verdict);
    if (cluster.verdict.kind == CheckVerdict::Kind::failing && !cluster.verdict.diagnosis.empty())
      lines.push_back("  diagnosis: " + cluster.verdict.diagnosis);
  }
  if (!recent.empty()) lines.push_back("");
  for (const std::string& line : recent) lines.push_back("  " + line);
  return lines;
}

std::string plain_line(const ClusterView& cluster, std::chrono::system_clock::time_point at) {
  std::string line = util::format_rfc3339_ms(at) + " " + cluster.name + ": " + summary(cluster);
  if (const std::string verdict = verdict_text(cluster.verdict); !verdict.empty())
    line += "; " + verdict;
  if (cluster.verdict.kind == CheckVerdict::Kind::failing && !cluster.verdict.diagnosis.empty())
    line += "; diagnosis: " + cluster.verdict.diagnosis;
  return line;
}

bool is_terminal(const std::ostream& out) {
  const char* term = std::getenv("TERM");
  return &out == &std::cout && ::isatty(STDOUT_FILENO) &&
         !(term != nullptr && std::string_view(term) == "dumb");
}

void ProgressOutput::show(const ProgressView& view, const std::vector<std::string>& recent,
                          const EngineHolder& engine) {
  if (terminal_) {
    draw(view_lines(view, recent, engine));
    return;
  }
  if (engine && engine != last_engine_) {
    out_ << util::format_rfc3339_ms(view.at) << " " << engine_line(*engine) << "\n";
    last_engine_ = engine;
  }
  for (const ClusterView& cluster : view.clusters) {
    std::string& said = last_said_[cluster.name];
    if (said == what_it_says(cluster)) continue;
    said = what_it_says(cluster);
    out_ << plain_line(cluster, view.at) << "\n";
  }
  out_ << std::flush;
}

void ProgressOutput::message(const std::string& line) {
  if (terminal_) {
    draw({line});
  } else {
    out_ << line << std::endl;
  }
}

// One write per frame: back up over the last frame, rewrite each line and
// clear its rest, clear below.
void ProgressOutput::draw(std::vector<std::string> lines) {
  const auto [columns, rows] = terminal_size();
  const auto fits = static_cast<std::size_t>(std::max(rows - 1, 2));
  if (lines.size() > fits) {
    const std::size_t hidden = lines.size() - fits + 1;
    lines.resize(fits - 1);
    lines.push_back("... " + util::plural(static_cast<std::int64_t>(hidden), "more line") +
                    " (a taller terminal shows them)");
  }
  std::string frame;
  if (!cursor_hidden_) {
    frame += "\033[?25l";
    cursor_hidden_ = true;
  }
  if (drawn_ > 0) frame += "\r\033[" + std::to_string(drawn_) + "A";
  for (const std::string& line : lines) {
    frame += util::cut_to(line, static_cast<std::size_t>(std::max(columns - 1, 10)));
    frame += "\033[K\n";
  }
  frame += "\033[J";
  out_ << frame << std::flush;
  drawn_ = lines.size();
}

void ProgressOutput::close() {
  if (!cursor_hidden_) return;
  out_ << "\033[?25h" << std::flush;
  cursor_hidden_ = false;
}

int watch_migration(const WatchOptions& options, std::ostream& out, std::ostream& err) {
  interrupted = false;
  struct sigaction action {};
  struct sigaction old_int {};
  struct sigaction old_term {};
  action.sa_handler = on_interrupt;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  struct RestoreSignals {
    const struct sigaction &int_, &term_;
    ~RestoreSignals() {
      ::sigaction(SIGINT, &int_, nullptr);
      ::sigaction(SIGTERM, &term_, nullptr);
    }
  } restore{old_int, old_term};

  ProgressOutput output(out, options.terminal);
  JournalFollower journal(options.state_dir);
  for (;;) {
    std::vector<migration::Record> records;
    try {
      records = journal.records();
    } catch (const migration::JournalError& damaged) {
      output.close();
      err << "ringwatch migrate status: " << damaged.what() << "\n";
      return 3;
    }
    const ProgressView view = migration::progress_view(records, std::chrono::system_clock::now());
    output.show(view, {}, options.engine ? EngineHolder(options.engine()) : std::nullopt);
    if (view.all_ended() || interrupted) {
      output.close();
      return options.exit_code(migration::replay(records));
    }
    const auto until = std::chrono::steady_clock::now() + options.interval;
    while (!interrupted && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

const std::vector<migration::Record>& JournalFollower::records() {
  struct stat file {};
  Seen now;
  if (::stat((state_dir_ / "journal.jsonl").c_str(), &file) == 0) {
    now = {static_cast<long long>(file.st_size),
           static_cast<long long>(file.st_mtim.tv_sec) * 1000000000LL + file.st_mtim.tv_nsec,
           static_cast<long long>(file.st_ino)};
  }
  if (now == seen_ && now.size >= 0) return records_;
  records_ = migration::read_journal(state_dir_);
  seen_ = now;
  return records_;
}

std::vector<std::string> RecentLines::lines() const {
  std::lock_guard guard(mutex_);
  return {lines_.begin(), lines_.end()};
}

RecentLines::int_type RecentLines::overflow(int_type c) {
  if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
  std::lock_guard guard(mutex_);
  if (traits_type::to_char_type(c) != '\n') {
    partial_ += traits_type::to_char_type(c);
    return c;
  }
  lines_.push_back(std::move(partial_));
  partial_.clear();
  while (lines_.size() > keep_) lines_.pop_front();
  return c;
}

ProgressDisplay::ProgressDisplay(std::filesystem::path state_dir,
                                 std::chrono::milliseconds interval, std::ostream& out)
    : journal_(std::move(state_dir)), interval_(interval), output_(out, true) {}

void ProgressDisplay::start() {
  thread_ = std::thread([this] { loop(); });
}

ProgressDisplay::~ProgressDisplay() {
  finish();
}

void ProgressDisplay::finish() {
  if (!thread_.joinable()) return;  // never started, or finished
  {
    std::lock_guard guard(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  frame();
  output_.close();
}

void ProgressDisplay::loop() {
  std::unique_lock guard(mutex_);
  while (!done_) {
    guard.unlock();
    frame();
    guard.lock();
    wake_.wait_for(guard, interval_, [this] { return done_; });
  }
}

void ProgressDisplay::frame() {
  try {
    const auto& records = journal_.records();
    if (records.empty()) return;  // the engine has not made its journal yet
    output_.show(migration::progress_view(records, std::chrono::system_clock::now()),
                 recent_.lines());
  } catch (const migration::JournalError& damaged) {
    output_.message(damaged.what());
  }
}

}  // namespace ringwatch::cli
