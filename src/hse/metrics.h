// Prometheus text exposition (format 0.0.4) for best-hsed's metrics page, and a latency
// histogram that worker threads may feed. docs/operations.md lists every metric.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace best::hse {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Cumulative histogram with fixed bounds in seconds; observe() is thread-safe (atomics).
class LatencyHistogram {
public:
    // 100 us .. 10 s.
    static constexpr std::array<double, 14> kBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                    0.005,  0.01,    0.025,  0.05,  0.1,
                                                    0.25,   0.5,     1.0,    10.0};
    void observe(double seconds) noexcept;
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    double sumSeconds() const noexcept;
    // Observations <= kBounds[i] (cumulative).
    std::uint64_t cumulative(std::size_t i) const noexcept;

private:
    std::array<std::atomic<std::uint64_t>, kBounds.size()> buckets_{};  // not cumulative
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sumNanos_{0};
};

// Writes one page. Each family's HELP and TYPE come once, before its samples; families must
// not be interleaved (the writer checks: a sample of another family than the last declared
// one is a programming error and throws std::logic_error).
class PromWriter {
public:
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const MetricLabels& labels, double value);
    void sample(std::string_view name, const MetricLabels& labels, std::uint64_t value);
    void histogram(std::string_view name, std::string_view help, const LatencyHistogram& h,
                   const MetricLabels& labels = {});
    // For a histogram family with several label sets: family() once, then this per set.
    void histogramSamples(std::string_view name, const LatencyHistogram& h,
                          const MetricLabels& labels);
    const std::string& text() const noexcept { return out_; }

    static bool validName(std::string_view name);
    static std::string escapeLabelValue(std::string_view v);
    static std::string formatValue(double v);

private:
    void line(std::string_view name, const MetricLabels& labels, const std::string& value);
    std::string out_;
    std::string family_;
};

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Process basics from /proc/self (resident memory, CPU seconds, open fds, start time).
struct ProcessStats {
    double cpuSeconds = 0;
    std::uint64_t residentBytes = 0;
    std::uint64_t virtualBytes = 0;
    std::uint64_t openFds = 0;
    std::uint64_t maxFds = 0;
    double startTimeSeconds = 0;  // since the epoch
};
ProcessStats readProcessStats();
void writeProcessStats(PromWriter& w, const ProcessStats& s);

}  // namespace best::hse
