//! The hub's metrics: counters, gauges and latency histograms, kept in one process-wide
//! registry and written in Prometheus's text exposition format (version 0.0.4) for the admin
//! listener's `/metrics`.
//!
//! Each metric is declared once, as a `static` [`Family`] beside the code that counts it;
//! label values are chosen from short fixed sets (a protocol, a result, a reply code, a route
//! pattern) and never carry an address, a name or anything typed by a user: a label value is
//! kept for the life of the process, and what the scrape shows must not be patient data.
//!
//! Gauges that are a property of the store (queue length, oldest queued message) are not kept
//! here but read at scrape time by a [`Collector`] the hub registers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Connections of every protocol, accepted or refused by a per-source limit.
pub static CONNECTIONS: Family = Family::counter(
    "mshub_connections_total",
    "Connections by protocol (smtp, imap, https), accepted or refused by a per-source limit.",
    &["protocol", "result"],
);

/// Connections of every protocol open now.
pub static CONNECTIONS_OPEN: Family = Family::gauge(
    "mshub_connections_open",
    "Connections open now, by protocol (smtp, imap, https).",
    &["protocol"],
);

/// What a family counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (name ends in `_total`).
    Counter,
    /// Goes up and down (open sessions).
    Gauge,
    /// Observations in [`BUCKETS`] (seconds), with their count and sum.
    Histogram,
}

/// Upper bounds of the latency buckets, in seconds (1 ms to 10 s).
pub const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One metric and its samples by label values.
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    samples: OnceLock<Mutex<BTreeMap<Vec<String>, Sample>>>,
}

#[derive(Clone, Default)]
struct Sample {
    /// Counter or gauge value; for a histogram, the sum of observations.
    value: f64,
    /// Histogram: observations at most each bucket's bound (not cumulative here).
    buckets: [u64; BUCKETS.len()],
    count: u64,
}

impl Family {
    pub const fn new(
        kind: Kind,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            help,
            kind,
            labels,
            samples: OnceLock::new(),
        }
    }

    pub const fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self::new(Kind::Counter, name, help, labels)
    }

    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self::new(Kind::Gauge, name, help, labels)
    }

    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self::new(Kind::Histogram, name, help, labels)
    }

    fn with(&'static self, values: &[&str], f: impl FnOnce(&mut Sample)) {
        debug_assert_eq!(values.len(), self.labels.len(), "labels of {}", self.name);
        registry().enlist(self);
        let samples = self.samples.get_or_init(Default::default);
        let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        f(samples.entry(key).or_default());
    }

    /// Counter: one more.
    pub fn inc(&'static self, values: &[&str]) {
        self.add(values, 1.0);
    }

    /// Counter or gauge: `by` more.
    pub fn add(&'static self, values: &[&str], by: f64) {
        self.with(values, |s| s.value += by);
    }

    /// Gauge: set to `value`.
    pub fn set(&'static self, values: &[&str], value: f64) {
        self.with(values, |s| s.value = value);
    }

    /// Gauge: one more for as long as the guard lives (an open session).
    pub fn hold(&'static self, values: &[&str]) -> Held {
        self.add(values, 1.0);
        Held {
            family: self,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Histogram: one observation of `elapsed`.
    pub fn observe(&'static self, values: &[&str], elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        self.with(values, |s| {
            s.value += secs;
            s.count += 1;
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                s.buckets[i] += 1;
            }
        });
    }

    /// The current value for these labels (counter or gauge; a histogram's count), for tests.
    pub fn value(&'static self, values: &[&str]) -> f64 {
        let mut out = 0.0;
        self.with(values, |s| {
            out = if self.kind == Kind::Histogram {
                s.count as f64
            } else {
                s.value
            }
        });
        out
    }

    fn write(&self, out: &mut String) {
        let Some(samples) = self.samples.get() else {
            return;
        };
        let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        header(out, self.name, self.help, self.kind);
        for (values, s) in &samples {
            let labels = label_text(self.labels, values);
            match self.kind {
                Kind::Counter | Kind::Gauge => sample(out, self.name, &labels, s.value),
                Kind::Histogram => {
                    let mut cumulative = 0;
                    for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                        cumulative += n;
                        let le = with_label(&labels, "le", &bound.to_string());
                        sample(
                            out,
                            &format!("{}_bucket", self.name),
                            &le,
                            cumulative as f64,
                        );
                    }
                    let inf = with_label(&labels, "le", "+Inf");
                    sample(out, &format!("{}_bucket", self.name), &inf, s.count as f64);
                    sample(out, &format!("{}_sum", self.name), &labels, s.value);
                    sample(
                        out,
                        &format!("{}_count", self.name),
                        &labels,
                        s.count as f64,
                    );
                }
            }
        }
    }
}

/// Takes back a [`Family::hold`] when dropped.
pub struct Held {
    family: &'static Family,
    values: Vec<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        self.family.add(&values, -1.0);
    }
}

/// Writes samples read at scrape time (e.g. from the store).
pub trait Collector: Send + Sync {
    fn collect(&self, out: &mut Exposition);
}

/// The text being written for one scrape.
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// A gauge without labels, read now.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        header(&mut self.text, name, help, Kind::Gauge);
        sample(&mut self.text, name, "", value);
    }

    /// A gauge with one sample per label values, read now.
    pub fn gauges(&mut self, name: &str, help: &str, labels: &[&str], samples: &[(&[&str], f64)]) {
        header(&mut self.text, name, help, Kind::Gauge);
        for (values, value) in samples {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            sample(&mut self.text, name, &label_text(labels, &values), *value);
        }
    }
}

struct Registry {
    families: Mutex<Vec<&'static Family>>,
    collectors: Mutex<Vec<Box<dyn Collector>>>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        families: Mutex::new(Vec::new()),
        collectors: Mutex::new(Vec::new()),
    })
}

impl Registry {
    fn enlist(&self, family: &'static Family) {
        if family.samples.get().is_some() {
            return;
        }
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if !families.iter().any(|f| std::ptr::eq(*f, family)) {
            families.push(family);
        }
    }
}

/// Adds a collector, run at every scrape.
pub fn register(collector: Box<dyn Collector>) {
    registry()
        .collectors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(collector);
}

/// Everything counted so far and what the collectors read now, in Prometheus's text format.
pub fn render() -> String {
    let reg = registry();
    let mut families: Vec<&'static Family> = reg
        .families
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    families.sort_by_key(|f| f.name);
    let mut out = String::new();
    for f in families {
        f.write(&mut out);
    }
    let mut exposition = Exposition { text: out };
    for c in reg
        .collectors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        c.collect(&mut exposition);
    }
    exposition.text
}

fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// `{a="x",b="y"}`, values escaped as the format requires; empty without labels.
fn label_text(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn with_label(labels: &str, name: &str, value: &str) -> String {
    match labels.strip_suffix('}') {
        Some(open) => format!("{open},{name}=\"{value}\"}}"),
        None => format!("{{{name}=\"{value}\"}}"),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    static LOGINS: Family = Family::counter(
        "test_logins_total",
        "Logins by protocol and result.",
        &["protocol", "result"],
    );
    static OPEN: Family = Family::gauge("test_sessions", "Open sessions.", &["protocol"]);
    static LATENCY: Family =
        Family::histogram("test_request_seconds", "Request latency.", &["route"]);

    #[test]
    fn counters_gauges_and_histograms_are_written_in_the_text_format() {
        LOGINS.inc(&["imap", "ok"]);
        LOGINS.inc(&["imap", "ok"]);
        LOGINS.inc(&["smtp", "fail\"ed"]);
        {
            let _one = OPEN.hold(&["imap"]);
            let _two = OPEN.hold(&["imap"]);
            assert_eq!(OPEN.value(&["imap"]), 2.0);
        }
        assert_eq!(
            OPEN.value(&["imap"]),
            0.0,
            "sessions closed give their count back"
        );
        LATENCY.observe(&["/inbox"], Duration::from_millis(3));
        LATENCY.observe(&["/inbox"], Duration::from_secs(20));
        let text = render();
        assert!(
            text.contains("# TYPE test_logins_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("test_logins_total{protocol=\"imap\",result=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("test_logins_total{protocol=\"smtp\",result=\"fail\\\"ed\"} 1\n"),
            "a quote in a value is escaped: {text}"
        );
        assert!(
            text.contains("test_sessions{protocol=\"imap\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE test_request_seconds histogram\n"),
            "{text}"
        );
        // 3 ms is in the 5 ms bucket and every later one; 20 s only in +Inf.
        assert!(
            text.contains("test_request_seconds_bucket{route=\"/inbox\",le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("test_request_seconds_bucket{route=\"/inbox\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("test_request_seconds_bucket{route=\"/inbox\",le=\"10\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("test_request_seconds_bucket{route=\"/inbox\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("test_request_seconds_count{route=\"/inbox\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("test_request_seconds_sum{route=\"/inbox\"} 20.003\n"),
            "{text}"
        );
    }

    struct Queue;
    impl Collector for Queue {
        fn collect(&self, out: &mut Exposition) {
            out.gauge("test_queue_length", "Messages waiting.", 3.0);
        }
    }

    #[test]
    fn collectors_are_read_at_each_scrape() {
        register(Box::new(Queue));
        let text = render();
        assert!(
            text.contains("# TYPE test_queue_length gauge\ntest_queue_length 3\n"),
            "{text}"
        );
    }
}
