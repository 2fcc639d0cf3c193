//! The fleet page: one self-contained HTML file (inline CSS and SVG, no
//! script, no external asset) for an offline hub PC's browser. Every text
//! that comes from a file (fleet, receipts, hub state) is escaped.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use tender_format::atomic;

use crate::error::ExportError;

use crate::fleet_report::{CellState, ClusterCell, FleetReport};
use tender_render::fleet::format_duration;

/// Writes the page as `DIR/index.html` (atomically: a browser open on it
/// sees the old page or the new one).
pub fn write(dir: &Path, report: &FleetReport) -> Result<PathBuf, ExportError> {
    atomic::create_dir_all(dir).map_err(|e| ExportError::io_at("creating", dir, e))?;
    let path = dir.join("index.html");
    atomic::write(&path, render(report).as_bytes())
        .map_err(|e| ExportError::io_at("writing the fleet page", &path, e))?;
    Ok(path)
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#5b6475;font-size:13px}
table.grid{border-collapse:collapse;font-size:12px}
.grid th,.grid td{border:1px solid #d5d9e0;padding:6px;vertical-align:top;text-align:left}
.grid thead th{background:#eef1f5}.grid th.wave{background:#eef1f5;white-space:nowrap}
.grid th small{display:block;font-weight:normal;color:#5b6475}
th.overdue{background:#fde2c8!important}
.cluster{border-radius:4px;padding:4px 6px;margin:2px 0;border-left:5px solid #9aa3b2;background:#fff;min-width:150px}
.cluster b{display:block;font-size:12px}
.cluster span{display:block;color:#3c4454}
.current{border-left-color:#2e9d4b;background:#ecf8ef}
.stale{border-left-color:#d08700;background:#fff4dc}
.ahead{border-left-color:#6b4fd1;background:#f0ecff}
.unknown,.never-reported{border-left-color:#9aa3b2;background:#f1f2f4}
.rolled-back{border-left-color:#c62828;background:#fde8e8}
.flag,.cluster span.flag{display:inline-block;font-size:10px;font-weight:bold;color:#fff;background:#c62828;border-radius:3px;padding:1px 5px;margin:3px 4px 0 0}
.cluster span.flag.stale-flag{background:#d08700}
ul.gates{padding-left:18px;font-size:13px}
.gate.holds{color:#2e7d32}.gate.pending{color:#b3261e}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
";

/// Line colours of the adoption plot, newest sequence first.
const COLOURS: [&str; 6] = [
    "#2e9d4b", "#1f6fd1", "#d08700", "#6b4fd1", "#c62828", "#5b6475",
];

/// The whole page.
pub fn render(report: &FleetReport) -> String {
    let mut h = String::new();
    let title = format!("tender fleet {}", escape(&report.fleet));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n"
    );
    let latest = report.latest.map_or("none".to_string(), |l| l.to_string());
    let _ = writeln!(
        h,
        "<h1>{title}</h1><p class=\"meta\">channel <b>{}</b> · latest sequence exported \
         <b id=\"latest\">{latest}</b> · {} cluster(s) · {} receipt(s) · as of {} (hub clock) · \
         sites without a receipt for more than {} day(s) are flagged</p>",
        escape(&report.channel),
        report.clusters,
        report.receipts,
        escape(&report.now),
        report.stale_after_days
    );
    grid(&mut h, report);
    gates(&mut h, report);
    adoption(&mut h, report);
    h.push_str("</body></html>\n");
    h
}

fn grid(h: &mut String, report: &FleetReport) {
    let rows = if report.has_waves { "wave" } else { "tier" };
    let _ = write!(
        h,
        "<h2>Releases by {rows} and site</h2>\n<table class=\"grid\" id=\"grid\"><thead><tr><th>{rows}</th>"
    );
    for s in &report.sites {
        let seen = match &s.last_seen {
            Some(t) => format!("last receipt {}", escape(t)),
            None => "never reported".to_string(),
        };
        let (class, flag) = if s.overdue {
            (" class=\"overdue\"", " <span class=\"flag\">OVERDUE</span>")
        } else {
            ("", "")
        };
        let _ = write!(
            h,
            "<th{class} data-site=\"{}\">{}{flag}<small>{seen}</small></th>",
            escape(&s.site),
            escape(&s.site)
        );
    }
    h.push_str("</tr></thead><tbody>\n");
    for row in &report.rows {
        let _ = write!(
            h,
            "<tr data-wave=\"{}\"><th class=\"wave\">{}</th>",
            escape(&row.wave),
            escape(&row.wave)
        );
        for cells in &row.cells {
            h.push_str("<td>");
            for c in cells {
                cell(h, c, report);
            }
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

fn cell(h: &mut String, c: &ClusterCell, report: &FleetReport) {
    let mut classes = vec!["cluster", c.state.as_str()];
    if c.rolled_back {
        classes.push("rolled-back");
    }
    let _ = write!(
        h,
        "<div class=\"{}\" data-cluster=\"{}\" data-state=\"{}\"{}>",
        classes.join(" "),
        escape(&c.cluster),
        c.state.as_str(),
        c.sequence
            .map(|s| format!(" data-sequence=\"{s}\""))
            .unwrap_or_default()
    );
    let _ = write!(h, "<b>{}</b>", escape(&c.cluster));
    match (c.sequence, &c.bundle_id) {
        (Some(seq), Some(bundle)) => {
            let channel = c
                .channel
                .as_deref()
                .filter(|ch| *ch != report.channel)
                .map(|ch| format!(" ({})", escape(ch)))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<span>sequence {seq}{channel}</span><span title=\"bundle id\">{}</span>",
                escape(bundle)
            );
        }
        _ => h.push_str("<span>no receipt</span>"),
    }
    if let (Some(since), Some(age)) = (&c.since, c.age_seconds) {
        let _ = write!(
            h,
            "<span title=\"since {}\">{}</span>",
            escape(since),
            age_text(age)
        );
    }
    if c.rolled_back {
        h.push_str("<span class=\"flag\">ROLLED BACK</span>");
    }
    if c.state == CellState::Stale {
        h.push_str("<span class=\"flag stale-flag\">STALE</span>");
    }
    h.push_str("</div>");
}

/// `3d 4h ago`, `25m ago`; a site clock ahead of the hub's says so.
fn age_text(seconds: i64) -> String {
    if seconds < 0 {
        return format!(
            "site clock {} ahead",
            format_duration(seconds.unsigned_abs())
        );
    }
    let s = seconds as u64;
    let text = if s >= 86_400 {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3_600)
    } else if s >= 3_600 {
        format!("{}h {}m", s / 3_600, (s % 3_600) / 60)
    } else {
        format!("{}m", s / 60)
    };
    format!("{text} ago")
}

fn gates(h: &mut String, report: &FleetReport) {
    if report.gates.is_empty() {
        return;
    }
    h.push_str("<h2>Gates</h2>\n<ul class=\"gates\" id=\"gates\">");
    for g in &report.gates {
        let class = if g.holds() { "holds" } else { "pending" };
        let _ = write!(
            h,
            "<li class=\"gate {class}\" data-gate=\"{}\">{}: {}</li>",
            escape(&g.gate.wave),
            if g.holds() { "OPEN" } else { "PENDING" },
            escape(&g.describe())
        );
    }
    h.push_str(
        "</ul><p class=\"meta\">Checked against the release this hub last exported to each \
         cluster of the wave before; <code>tender export</code> checks against what it renders.</p>\n",
    );
}

/// A step plot: per sequence (the newest six), how many clusters ran it.
fn adoption(h: &mut String, report: &FleetReport) {
    h.push_str("<h2>Release adoption</h2>\n");
    let points = &report.adoption;
    let Some((first, _)) = points.first() else {
        h.push_str("<p class=\"meta\" id=\"adoption-empty\">No receipts yet.</p>\n");
        return;
    };
    let now = match time::OffsetDateTime::parse(
        &report.now,
        &time::format_description::well_known::Rfc3339,
    ) {
        Ok(t) => t,
        Err(_) => return,
    };
    let at = |t: &str| -> i64 {
        now.unix_timestamp() - crate::hub::history::seconds_since(t, now).unwrap_or(0)
    };
    let t0 = at(first);
    let t1 = now.unix_timestamp().max(t0 + 1);
    let (w, ht, left, bottom, top, right) = (720.0, 220.0, 40.0, 30.0, 10.0, 10.0);
    let max = report.clusters.max(1) as f64;
    let x = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * (w - left - right);
    let y = |n: usize| top + (1.0 - n as f64 / max) * (ht - top - bottom);
    let mut sequences: Vec<u64> = points
        .iter()
        .flat_map(|(_, counts)| counts.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    sequences.reverse();
    sequences.truncate(COLOURS.len());
    let _ = write!(
        h,
        "<svg id=\"adoption\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" \
         viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"clusters per sequence over time\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{ht}\" fill=\"#fff\"/>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9aa3b2\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#9aa3b2\"/>\
         <text x=\"4\" y=\"{}\" font-size=\"10\">{}</text><text x=\"4\" y=\"{}\" font-size=\"10\">0</text>\
         <text x=\"{left}\" y=\"{}\" font-size=\"10\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">now</text>",
        ht - bottom,
        w - right,
        ht - bottom,
        ht - bottom,
        top + 8.0,
        report.clusters,
        ht - bottom,
        ht - 10.0,
        escape(first),
        w - right,
        ht - 10.0,
    );
    for (i, seq) in sequences.iter().enumerate() {
        let mut path = String::new();
        let mut last = 0usize;
        for (t, counts) in points {
            let n = counts.get(seq).copied().unwrap_or(0);
            let px = x(at(t));
            if path.is_empty() {
                let _ = write!(path, "M{px:.1},{:.1}", y(n));
            } else {
                let _ = write!(path, " H{px:.1} V{:.1}", y(n));
            }
            last = n;
        }
        let _ = write!(path, " H{:.1}", x(t1));
        let _ = write!(
            h,
            "<path class=\"sequence\" data-sequence=\"{seq}\" data-now=\"{last}\" d=\"{path}\" \
             fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            COLOURS[i]
        );
    }
    h.push_str("</svg>\n<p class=\"legend\">");
    for (i, seq) in sequences.iter().enumerate() {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>sequence {seq}</span>",
            COLOURS[i]
        );
    }
    h.push_str("</p>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_file_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age_text(90), "1m ago");
        assert_eq!(age_text(3 * 3600 + 120), "3h 2m ago");
        assert_eq!(age_text(2 * 86_400 + 5 * 3600), "2d 5h ago");
        assert_eq!(age_text(-7200), "site clock 2h ahead");
    }
}
