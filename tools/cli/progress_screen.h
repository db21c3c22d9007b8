#pragma once
// The live view of a migration (migration/progress_view.h) as people see it:
// `ringwatch migrate status --watch` and `migrate run` on a terminal.
//
// On a terminal (stdout is a tty, TERM is not "dumb") the view is redrawn in
// place every interval: the cursor is hidden, moved back up over the lines
// drawn last time, each line rewritten and cleared to its end, and what is
// left below cleared; one write per frame, so nothing flickers. Lines are cut
// to the terminal's width and the frame to its height (so moving up always
// lands on the first line). The cursor is shown again when the view closes,
// including after SIGINT.
//
// Anywhere else (a pipe, a file, a log collector) the view is plain lines:
// one line per cluster each time what it says changes (step, phase,
// attempt, verdict), never an escape sequence and never a redraw.
//
// Wording: docs/migration.md, "Watching a migration".
//
// Thread-safety: a ProgressDisplay's view thread is its own; finish() is
// called once, from the thread that made it. watch_migration blocks.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "migration/journal.h"
#include "migration/progress_view.h"

namespace ringwatch::cli {

// Who runs the migration, for a watcher: "" no engine runs, else the state
// lock's holder ("pid 4242, ringwatch migrate run since ..."); nullopt: not
// shown (the view of `migrate run` itself).
using EngineHolder = std::optional<std::string>;

// A terminal's view: a header (and the engine), then per cluster its line
// and, below it, its checks and diagnosis; `recent` (engine log lines) at
// the bottom.
std::vector<std::string> view_lines(const migration::ProgressView& view,
                                    const std::vector<std::string>& recent = {},
                                    const EngineHolder& engine = std::nullopt);
// The plain line of one cluster: "<time> <cluster>: step 2/4 roll, running
// (attempt 1), step 12s, total 40s, ETA 25s (step history); checks: ...".
std::string plain_line(const migration::ClusterView& cluster,
                       std::chrono::system_clock::time_point at);

// Shows successive views on `out`, redrawn or as plain lines.
class ProgressOutput {
 public:
  ProgressOutput(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}
  ~ProgressOutput() { close(); }
  ProgressOutput(const ProgressOutput&) = delete;
  ProgressOutput& operator=(const ProgressOutput&) = delete;

  // Plain lines also say when the engine comes or goes.
  void show(const migration::ProgressView& view, const std::vector<std::string>& recent = {},
            const EngineHolder& engine = std::nullopt);
  // A line that is not the view (an unreadable journal): on a terminal, it
  // goes in the view's place until the next frame.
  void message(const std::string& line);
  void close();  // shows the cursor again (once)

 private:
  void draw(std::vector<std::string> lines);

  std::ostream& out_;
  const bool terminal_;
  bool cursor_hidden_ = false;
  std::size_t drawn_ = 0;                         // lines of the last frame
  std::map<std::string, std::string> last_said_;  // plain: what each cluster said last
  EngineHolder last_engine_;                      // plain: the engine line said last
};

// The journal's records, read again only when the file changed (its size,
// modification time or inode: the journal is append-only, and a repair
// replaces it whole), so a frame during a long step parses nothing. Throws
// JournalError as read_journal() does.
class JournalFollower {
 public:
  explicit JournalFollower(std::filesystem::path state_dir) : state_dir_(std::move(state_dir)) {}
  const std::vector<migration::Record>& records();

 private:
  std::filesystem::path state_dir_;
  std::vector<migration::Record> records_;
  struct Seen {
    long long size = -1, mtime_ns = 0, inode = 0;
    bool operator==(const Seen&) const = default;
  } seen_;
};

// True when `out` is this process's stdout on a terminal that takes escape
// sequences (TERM is not "dumb").
bool is_terminal(const std::ostream& out);

struct WatchOptions {
  std::filesystem::path state_dir;
  std::chrono::milliseconds interval{1000};
  bool terminal = false;
  // The exit code once the watch ends (`migrate status`'s rule).
  std::function<int(const migration::JournalState&)> exit_code;
  std::function<std::string()> engine;  // the state lock's holder, "" when none
};

// `migrate status --watch`: shows the journal's view every interval until
// every cluster is finished or aborted, or SIGINT/SIGTERM; returns
// options.exit_code of the last state read, or 3 (with the reason on `err`)
// when the journal cannot be read.
int watch_migration(const WatchOptions& options, std::ostream& out, std::ostream& err);

// The last few lines written to it, kept for the view (the engine's log while
// `migrate run` shows the view instead). Thread-safe.
class RecentLines : public std::streambuf {
 public:
  explicit RecentLines(std::size_t keep) : keep_(keep) {}
  std::vector<std::string> lines() const;

 protected:
  int_type overflow(int_type c) override;

 private:
  mutable std::mutex mutex_;
  std::string partial_;
  std::deque<std::string> lines_;
  const std::size_t keep_;
};

// `migrate run` on a terminal: a thread that redraws the journal's view
// every interval while the engine runs, with the engine's last log lines
// (log() is the engine's log; made before the engine, started after it).
class ProgressDisplay {
 public:
  ProgressDisplay(std::filesystem::path state_dir, std::chrono::milliseconds interval,
                  std::ostream& out);
  ~ProgressDisplay();
  std::ostream& log() { return log_stream_; }  // for EngineOptions::log
  void start();                                // the view thread
  void finish();  // a last frame and the cursor back; nothing when never started

 private:
  void loop();
  void frame();

  JournalFollower journal_;
  const std::chrono::milliseconds interval_;
  RecentLines recent_{4};
  std::ostream log_stream_{&recent_};
  ProgressOutput output_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace ringwatch::cli
