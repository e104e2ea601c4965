// Progress reporting for long work: a redrawn bar on a terminal (rate, ETA,
// loss, accuracy), plain periodic lines otherwise (logs, CI, pipes).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace lowbit::cli {

class Progress {
 public:
  // total: work units (e.g. images); unit: "img"; label: "epoch 1/3".
  Progress(std::string label, int64_t total, std::string unit, bool quiet = false)
      : label_(std::move(label)), unit_(std::move(unit)), total_(total), quiet_(quiet),
        tty_(isatty(fileno(stderr)) != 0), start_(Clock::now()), last_(start_) {}

  // done: units finished so far; extra: e.g. "loss 0.4123 acc 0.8912".
  void update(int64_t done, const std::string& extra) {
    if (quiet_) return;
    const auto now = Clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    // Terminal: redraw at most 10×/s. Otherwise: one line every 10 s.
    if (done < total_ && since_last < (tty_ ? 0.1 : 10.0)) return;
    last_ = now;
    const double el = std::chrono::duration<double>(now - start_).count();
    const double rate = el > 0 ? (double)done / el : 0.0;
    const double eta = rate > 0 ? (double)(total_ - done) / rate : 0.0;
    char buf[256];
    if (tty_) {
      const int width = 24;
      const int fill = total_ > 0 ? (int)((double)width * (double)done / (double)total_) : width;
      std::string bar(fill, '#');
      bar.resize(width, '.');
      std::snprintf(buf, sizeof buf, "\r%s [%s] %3d%% %.0f %s/s ETA %s %s\033[K", label_.c_str(), bar.c_str(),
                    total_ > 0 ? (int)(100.0 * (double)done / (double)total_) : 100, rate, unit_.c_str(),
                    fmt_time(eta).c_str(), extra.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "%s %lld/%lld %s (%.0f %s/s, ETA %s) %s\n", label_.c_str(), (long long)done,
                    (long long)total_, unit_.c_str(), rate, unit_.c_str(), fmt_time(eta).c_str(), extra.c_str());
    }
    std::fputs(buf, stderr);
    if (tty_ && done >= total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string fmt_time(double s) {
    char b[32];
    const int t = (int)(s + 0.5);
    if (t >= 3600) std::snprintf(b, sizeof b, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(b, sizeof b, "%d:%02d", t / 60, t % 60);
    return b;
  }
  std::string label_, unit_;
  int64_t total_;
  bool quiet_, tty_;
  Clock::time_point start_, last_;
};

}  // namespace lowbit::cli
