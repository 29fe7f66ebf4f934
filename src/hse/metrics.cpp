#include "hse/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace best::hse {

void LatencyHistogram::observe(double seconds) noexcept {
    if (!(seconds >= 0))
        seconds = 0;
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
        if (seconds <= kBounds[i]) {
            buckets_[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
    sumNanos_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
}

double LatencyHistogram::sumSeconds() const noexcept {
    return static_cast<double>(sumNanos_.load(std::memory_order_relaxed)) / 1e9;
}

std::uint64_t LatencyHistogram::cumulative(std::size_t i) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t j = 0; j <= i && j < kBounds.size(); ++j)
        n += buckets_[j].load(std::memory_order_relaxed);
    return n;
}

bool PromWriter::validName(std::string_view name) {
    if (name.empty())
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

std::string PromWriter::escapeLabelValue(std::string_view v) {
    std::string s;
    for (char c : v) {
        if (c == '\\')
            s += "\\\\";
        else if (c == '"')
            s += "\\\"";
        else if (c == '\n')
            s += "\\n";
        else
            s += c;
    }
    return s;
}

std::string PromWriter::formatValue(double v) {
    if (std::isnan(v))
        return "NaN";
    if (std::isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    // The shortest text that reads back as the same double ("0.0025", not "0.0025000000000000001").
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v)
            break;
    }
    return buf;
}

void PromWriter::family(std::string_view name, std::string_view type, std::string_view help) {
    if (!validName(name))
        throw std::logic_error("bad metric name " + std::string(name));
    family_ = std::string(name);
    out_ += "# HELP " + family_ + " ";
    for (char c : help) {
        if (c == '\\')
            out_ += "\\\\";
        else if (c == '\n')
            out_ += "\\n";
        else
            out_ += c;
    }
    out_ += "\n# TYPE " + family_ + " " + std::string(type) + "\n";
}

void PromWriter::line(std::string_view name, const MetricLabels& labels, const std::string& value) {
    const bool ours =
        name == family_ ||
        (name.size() > family_.size() && name.substr(0, family_.size()) == family_ &&
         (name.substr(family_.size()) == "_bucket" || name.substr(family_.size()) == "_sum" ||
          name.substr(family_.size()) == "_count"));
    if (family_.empty() || !ours)
        throw std::logic_error("sample " + std::string(name) + " outside its family");
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!validName(k) || k.find(':') != std::string::npos)
                throw std::logic_error("bad label name " + k);
            out_ += (first ? "" : ",") + k + "=\"" + escapeLabelValue(v) + "\"";
            first = false;
        }
        out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
}

void PromWriter::sample(std::string_view name, const MetricLabels& labels, double value) {
    line(name, labels, formatValue(value));
}

void PromWriter::sample(std::string_view name, const MetricLabels& labels, std::uint64_t value) {
    line(name, labels, std::to_string(value));
}

void PromWriter::histogramSamples(std::string_view name, const LatencyHistogram& h,
                                  const MetricLabels& labels) {
    const std::string n(name);
    // One consistent snapshot is not needed for monotonic counters, but +Inf must equal count:
    // read count last and never report a bucket above it.
    std::array<std::uint64_t, LatencyHistogram::kBounds.size()> cum{};
    for (std::size_t i = 0; i < cum.size(); ++i)
        cum[i] = h.cumulative(i);
    const std::uint64_t count = std::max(h.count(), cum.back());
    for (std::size_t i = 0; i < cum.size(); ++i) {
        MetricLabels l = labels;
        l.emplace_back("le", formatValue(LatencyHistogram::kBounds[i]));
        line(n + "_bucket", l, std::to_string(cum[i]));
    }
    MetricLabels inf = labels;
    inf.emplace_back("le", "+Inf");
    line(n + "_bucket", inf, std::to_string(count));
    line(n + "_sum", labels, formatValue(h.sumSeconds()));
    line(n + "_count", labels, std::to_string(count));
}

void PromWriter::histogram(std::string_view name, std::string_view help, const LatencyHistogram& h,
                           const MetricLabels& labels) {
    family(name, "histogram", help);
    histogramSamples(name, h, labels);
}

ProcessStats readProcessStats() {
    ProcessStats s;
    std::ifstream stat("/proc/self/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const std::size_t rp = all.rfind(')');
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (rp != std::string::npos && ticks > 0) {
        std::istringstream in(all.substr(rp + 2));
        std::vector<std::string> f;
        std::string w;
        while (in >> w)
            f.push_back(w);
        // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
        if (f.size() > 21) {
            s.cpuSeconds = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(ticks);
            const double startTicks = std::stod(f[19]);
            s.virtualBytes = std::stoull(f[20]);
            s.residentBytes = std::stoull(f[21]) * static_cast<std::uint64_t>(page);
            std::ifstream up("/proc/stat");
            std::string key;
            while (up >> key) {
                if (key == "btime") {
                    double btime = 0;
                    up >> btime;
                    s.startTimeSeconds = btime + startTicks / static_cast<double>(ticks);
                    break;
                }
            }
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.')
                ++s.openFds;
        ::closedir(d);
        if (s.openFds > 0)
            --s.openFds;  // the directory stream itself
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
        s.maxFds = rl.rlim_cur;
    return s;
}

void writeProcessStats(PromWriter& w, const ProcessStats& s) {
    w.family("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, s.cpuSeconds);
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.sample("process_resident_memory_bytes", {}, s.residentBytes);
    w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    w.sample("process_virtual_memory_bytes", {}, s.virtualBytes);
    w.family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.sample("process_open_fds", {}, s.openFds);
    w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    w.sample("process_max_fds", {}, s.maxFds);
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, s.startTimeSeconds);
}

}  // namespace best::hse
