#pragma once
// A lab in a fresh temporary directory for one test, stopped (and its
// processes verified gone) when the test ends, whatever happens in between.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "lib/spec/cluster_spec.h"
#include "tools/lab/lab.h"

namespace ringwatch::testing {

class ScopedLab {
 public:
  explicit ScopedLab(int proxies = 3, int backends = 3, const std::string& name = "lab",
                     lab::LabProxyKind kind = lab::LabProxyKind::twemproxy, bool netns = false,
                     int pools_per_process = 1) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("ringwatch-test-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    dir_ = root_ / name;
    lab::up({.dir = dir_,
             .proxies = proxies,
             .backends = backends,
             .netns = netns,
             .proxy_kind = kind,
             .pools_per_process = pools_per_process});
  }
  ~ScopedLab() {
    try {
      lab::down(dir_);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "lab down failed: " << error.what();
    }
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  ScopedLab(const ScopedLab&) = delete;
  ScopedLab& operator=(const ScopedLab&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  // A directory beside the lab's, removed with it (e.g. a migration's state).
  std::filesystem::path sibling(const std::string& name) const { return root_ / name; }
  spec::ClusterSpec spec() const { return spec::load_cluster_spec(lab::spec_path(dir_).string()); }
  void inject(const lab::Fault& fault) const { lab::inject(dir_, fault); }
  void heal() const { lab::heal(dir_); }
  int pid_of(const std::string& node) const {
    for (const auto& process : lab::status(dir_).processes) {
      if (process.node == node) return process.pid;
    }
    return 0;
  }

 private:
  std::filesystem::path root_, dir_;
};

}  // namespace ringwatch::testing
