//! Progress for long operations: the current phase, overall bytes and a
//! bar per blob on a terminal; plain periodic lines otherwise; retries and
//! log lines always (on stderr).

use crate::progress::PlainLines;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tender_export::export::ExportObserver;
use tender_oci::{BlobOutcome, Digest, Observer, OciError};

pub struct CliObserver {
    enabled: bool,
    bars: Option<Bars>,
    state: Mutex<State>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    blobs: Mutex<HashMap<Digest, ProgressBar>>,
}

#[derive(Default)]
struct State {
    phase: String,
    /// Bytes of blobs finished, plus progress of blobs in flight.
    done: u64,
    in_flight: HashMap<Digest, u64>,
    lines: PlainLines,
}

impl CliObserver {
    pub fn new(enabled: bool) -> Self {
        let bars = (enabled && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new_spinner());
            overall.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:>8} {bytes} {bytes_per_sec} {elapsed}",
                )
                .expect("valid template"),
            );
            overall.enable_steady_tick(Duration::from_millis(120));
            Bars {
                multi,
                overall,
                blobs: Mutex::new(HashMap::new()),
            }
        });
        CliObserver {
            enabled,
            bars,
            state: Mutex::new(State::default()),
        }
    }

    fn println(&self, line: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn set_done(&self, state: &mut State) {
        let total = state.done + state.in_flight.values().sum::<u64>();
        if let Some(b) = &self.bars {
            b.overall.set_position(total);
        } else if self.enabled {
            let State { phase, lines, .. } = state;
            lines.print(phase, total, None);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

impl Observer for CliObserver {
    fn on_retry(&self, what: &str, attempt: u32, error: &OciError, delay: Duration) {
        self.println(&format!(
            "retry {attempt}: {what}: {error} (next try in {:.1}s)",
            delay.as_secs_f64()
        ));
    }

    fn on_blob_start(&self, digest: &Digest, size: u64) {
        if let Some(b) = &self.bars {
            let bar = b.multi.add(ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template("  {msg} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(digest.hex()[..12].to_string());
            b.blobs
                .lock()
                .expect("no panics while locked")
                .insert(*digest, bar);
        }
    }

    fn on_blob_progress(&self, digest: &Digest, bytes: u64) {
        if let Some(b) = &self.bars
            && let Some(bar) = b.blobs.lock().expect("no panics while locked").get(digest)
        {
            bar.set_position(bytes);
        }
        let mut state = self.state.lock().expect("no panics while locked");
        state.in_flight.insert(*digest, bytes);
        self.set_done(&mut state);
    }

    fn on_blob_done(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        if let Some(b) = &self.bars
            && let Some(bar) = b
                .blobs
                .lock()
                .expect("no panics while locked")
                .remove(digest)
        {
            bar.finish_and_clear();
            b.multi.remove(&bar);
        }
        let mut state = self.state.lock().expect("no panics while locked");
        state.in_flight.remove(digest);
        if outcome == BlobOutcome::Transferred {
            state.done += size;
        }
        self.set_done(&mut state);
    }
}

impl ExportObserver for CliObserver {
    fn phase(&self, name: &str, _total: u64) {
        let mut state = self.state.lock().expect("no panics while locked");
        state.phase = name.to_string();
        state.done = 0;
        state.in_flight.clear();
        match &self.bars {
            Some(b) => b.overall.set_message(name.to_string()),
            None if self.enabled => eprintln!("{name}..."),
            None => {}
        }
    }

    fn advance(&self, done: u64) {
        let mut state = self.state.lock().expect("no panics while locked");
        state.done = done;
        self.set_done(&mut state);
    }

    fn log(&self, line: &str) {
        if self.enabled {
            self.println(line);
        }
    }

    fn warn(&self, line: &str) {
        self.println(&format!("warning: {line}"));
    }
}
