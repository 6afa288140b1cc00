//! Prometheus metrics, kept in process and rendered as text by `GET /metrics`.

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

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
pub static CONFLICT_RETRIES: AtomicU64 = AtomicU64::new(0);
pub static EVENTS_APPENDED: AtomicU64 = AtomicU64::new(0);

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Registry::default))
}

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    with(|r| {
        *r.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        r.request_latency
            .entry(route.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    });
}

pub fn record_command(aggregate: &str, command: &str, elapsed: Duration, result: &Result<u32, ()>) {
    if let Ok(retries) = result {
        CONFLICT_RETRIES.fetch_add(u64::from(*retries), Ordering::Relaxed);
    }
    with(|r| {
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

/// The text exposition format.
pub fn render(extra: &[(String, String, f64)]) -> String {
    let mut out = String::new();
    with(|r| {
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
        CONFLICT_RETRIES.load(Ordering::Relaxed)
    );
    for (name, help, value) in extra {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    out
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {}", h.counts[i]);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}
