//! The two outputs: a human table on stdout and JSON lines for `--json`.

use serde_json::{Value, json};

use super::Host;

/// Rows of the human table: ROW METRIC BASELINE TENDER RATIO TARGET.
#[derive(Default)]
pub struct Table {
    lines: Vec<[String; 6]>,
    notes: Vec<String>,
}

impl Table {
    /// One line; "" for an empty cell (the row name is given on a row's first line).
    pub fn add(&mut self, cells: [&str; 6]) {
        self.lines.push(cells.map(str::to_string));
    }

    /// The CPU line every timed row prints: user + sys of each side.
    pub fn add_cpu(&mut self, how: &str, baseline_s: f64, tender_s: f64) {
        self.add([
            "",
            &format!("CPU user+sys, {how}"),
            &format!("{baseline_s:.2} s"),
            &format!("{tender_s:.2} s"),
            "",
            "",
        ]);
    }

    /// A peak-RSS line: `what` was measured, the baseline's ("-" when it
    /// has none) beside tender's, against `target`.
    pub fn add_peak_rss(
        &mut self,
        what: &str,
        baseline_kib: Option<u64>,
        tender_kib: u64,
        target: &str,
    ) {
        let baseline = baseline_kib.map_or_else(|| "-".to_string(), kib_mib);
        self.add([
            "",
            &format!("peak RSS, {what}"),
            &baseline,
            &kib_mib(tender_kib),
            "",
            target,
        ]);
    }

    /// A note printed under the table, e.g. what the baseline was.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn print(&self, host: &Host, quick: bool) {
        let mode = if quick { "quick" } else { "full" };
        println!();
        println!("tender bench ({mode}), {}", host.git_rev);
        println!(
            "host: {}; sha_ni: {}; nproc: {}; load average now: {}",
            host.cpu_model,
            host.sha_ni,
            host.ncpu,
            Host::loadavg()
        );
        println!();
        let header = ["ROW", "METRIC", "BASELINE", "TENDER", "RATIO", "TARGET"].map(str::to_string);
        for cells in std::iter::once(&header).chain(&self.lines) {
            let line = format!(
                "{:<7}  {:<30}  {:<13}  {:<13}  {:<6}  {}",
                cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
            );
            println!("{}", line.trim_end());
        }
        println!();
        println!("ratio = baseline wall time / tender wall time (> 1: tender is faster)");
        for note in &self.notes {
            println!("{note}");
        }
    }
}

/// One JSON line of a row, its fields in the order given (as bench.sh wrote
/// them). A list rather than a `serde_json::Map`: the map sorts its keys
/// unless serde_json's `preserve_order` feature is on, and turning that on
/// here would turn it on for every crate built with xtask, canonical JSON
/// included.
pub struct JsonRow {
    row: String,
    fields: Vec<(String, Value)>,
}

impl JsonRow {
    pub fn new(row: &str) -> JsonRow {
        JsonRow {
            row: row.to_string(),
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> JsonRow {
        self.fields.push((key.to_string(), value.into()));
        self
    }

    /// The line, host fields first, so each line stands alone.
    pub fn finish(self, host: &Host, quick: bool) -> String {
        let head = [
            ("row", json!(self.row)),
            ("mode", json!(if quick { "quick" } else { "full" })),
            ("git", json!(host.git_rev)),
            ("cpu_model", json!(host.cpu_model)),
            ("sha_ni", json!(host.sha_ni)),
            ("nproc", json!(host.ncpu)),
        ];
        let members: Vec<String> = head
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .chain(self.fields)
            .map(|(key, value)| format!("{}:{value}", Value::String(key)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// `value` rounded to `places` decimals, as bench.sh printed its numbers
/// (wall seconds to 6, CPU seconds to 2, ratios to 3), so that JSON lines of
/// both harnesses compare field by field.
pub fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// "200 MiB" / "2.00 GiB", as the table prints sizes.
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

pub fn kib_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
