//! Progress on stderr: an indicatif bar on a terminal, a plain line every
//! few seconds otherwise (logs, CI, serial consoles), nothing with
//! `--no-progress`.

use indicatif::HumanBytes;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

pub enum Progress {
    Bar(ProgressBar),
    Plain {
        label: String,
        total: u64,
        lines: PlainLines,
    },
    Off,
}

/// The progress of a run without a terminal: a line at most every
/// [`PLAIN_INTERVAL`], `label: done of total (pct%)`, or `label: done` when
/// the total is not known. Used by [`Progress`] and the export observer.
#[derive(Default)]
pub struct PlainLines {
    last: Option<Instant>,
}

impl PlainLines {
    /// Lines that start one interval from now (a short run prints none).
    pub fn after_interval() -> Self {
        PlainLines {
            last: Some(Instant::now()),
        }
    }

    pub fn print(&mut self, label: &str, done: u64, total: Option<u64>) {
        if self.last.is_some_and(|t| t.elapsed() < PLAIN_INTERVAL) {
            return;
        }
        self.last = Some(Instant::now());
        match total {
            Some(total) => {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                eprintln!(
                    "{label}: {} of {} ({pct}%)",
                    HumanBytes(done),
                    HumanBytes(total)
                );
            }
            None => eprintln!("{label}: {}", HumanBytes(done)),
        }
    }
}

impl Progress {
    pub fn new(enabled: bool, label: &str, total: u64) -> Self {
        if !enabled {
            return Progress::Off;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>8} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            Progress::Bar(bar)
        } else {
            Progress::Plain {
                label: label.to_string(),
                total,
                lines: PlainLines::after_interval(),
            }
        }
    }

    pub fn set(&mut self, done: u64) {
        match self {
            Progress::Bar(bar) => bar.set_position(done),
            Progress::Plain {
                label,
                total,
                lines,
            } => lines.print(label, done, Some(*total)),
            Progress::Off => {}
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
