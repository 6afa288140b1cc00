//! Prometheus metrics, kept per [`crate::app::App`] (not per process, so that two apps in
//! one process, as in the tests, count apart) and rendered as text by `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    request_latency: BTreeMap<String, Histogram>,
    command_latency: BTreeMap<(String, String), Histogram>,
    command_outcomes: BTreeMap<(String, String, &'static str), u64>,
}

/// One app's metrics.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    conflict_retries: AtomicU64,
    events_appended: AtomicU64,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut g = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.with(|r| {
            *r.requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
            r.request_latency
                .entry(route.to_string())
                .or_default()
                .observe(elapsed.as_secs_f64());
        });
    }

    pub fn record_command(
        &self,
        aggregate: &str,
        command: &str,
        elapsed: Duration,
        result: &Result<u32, ()>,
    ) {
        if let Ok(retries) = result {
            self.conflict_retries
                .fetch_add(u64::from(*retries), Ordering::Relaxed);
        }
        self.with(|r| {
            r.command_latency
                .entry((aggregate.to_string(), command.to_string()))
                .or_default()
                .observe(elapsed.as_secs_f64());
            let outcome = if result.is_ok() {
                "accepted"
            } else {
                "rejected"
            };
            *r.command_outcomes
                .entry((aggregate.to_string(), command.to_string(), outcome))
                .or_default() += 1;
        });
    }

    pub fn events_appended(&self, n: usize) {
        self.events_appended.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn appended(&self) -> u64 {
        self.events_appended.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self, extra: &[(String, String, f64)]) -> String {
        let mut out = String::new();
        self.with(|r| {
        out.push_str("# HELP tiaojie_http_requests_total HTTP requests by route and status.\n# TYPE tiaojie_http_requests_total counter\n");
        for ((m, route, s), n) in &r.requests {
            let _ = writeln!(out, "tiaojie_http_requests_total{{method=\"{m}\",route=\"{route}\",status=\"{s}\"}} {n}");
        }
        out.push_str("# HELP tiaojie_http_request_duration_seconds HTTP request latency.\n# TYPE tiaojie_http_request_duration_seconds histogram\n");
        for (route, h) in &r.request_latency {
            write_histogram(
                &mut out,
                "tiaojie_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                h,
            );
        }
        out.push_str("# HELP tiaojie_command_duration_seconds Command latency, conflict retries included.\n# TYPE tiaojie_command_duration_seconds histogram\n");
        for ((a, c), h) in &r.command_latency {
            write_histogram(
                &mut out,
                "tiaojie_command_duration_seconds",
                &format!("aggregate=\"{a}\",command=\"{c}\""),
                h,
            );
        }
        out.push_str("# HELP tiaojie_commands_total Commands by outcome.\n# TYPE tiaojie_commands_total counter\n");
        for ((a, c, o), n) in &r.command_outcomes {
            let _ = writeln!(
                out,
                "tiaojie_commands_total{{aggregate=\"{a}\",command=\"{c}\",outcome=\"{o}\"}} {n}"
            );
        }
    });
        let _ = writeln!(
        out,
        "# HELP tiaojie_conflict_retries_total Commands decided again after an optimistic-concurrency conflict.\n# TYPE tiaojie_conflict_retries_total counter\ntiaojie_conflict_retries_total {}",
        self.conflict_retries.load(Ordering::Relaxed)
    );
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {}", h.counts[i]);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}
