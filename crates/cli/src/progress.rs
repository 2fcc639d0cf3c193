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
        last: Instant,
    },
    Off,
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
                last: Instant::now(),
            }
        }
    }

    pub fn set(&mut self, done: u64) {
        match self {
            Progress::Bar(bar) => bar.set_position(done),
            Progress::Plain { label, total, last } => {
                if last.elapsed() >= PLAIN_INTERVAL {
                    *last = Instant::now();
                    let pct = (done * 100).checked_div(*total).unwrap_or(100);
                    eprintln!(
                        "{label}: {} of {} ({pct}%)",
                        HumanBytes(done),
                        HumanBytes(*total)
                    );
                }
            }
            Progress::Off => {}
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
