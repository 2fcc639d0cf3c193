//! What the entropy coders' tests share: `scripts/kzstd-parts` runs
//! klauspost/compress 1.15.12 (Debian's sources) on a batch of cases and
//! [`check`] asserts that the port's results are equal, field by field
//! (output bytes, error kinds, reuse flags, tables, size estimates); and
//! the inputs, all from fixed seeds. One request per test keeps the Go
//! process count low.

use serde_json::{Value, json};
use tender_test_support::kzstd_parts_run;

use crate::test_inputs::binaries_tar;

// ---------------------------------------------------------------- inputs

/// A fixed-seed generator (xorshift64*).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Geometric-ish: small values far more often than large ones, below `n`.
    pub(super) fn skewed(&mut self, n: u64, bias: u32) -> u64 {
        let mut v = self.next();
        for _ in 1..bias {
            v = v.min(self.next());
        }
        v % n
    }
}

pub(super) fn uniform(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n).map(|_| r.next() as u8).collect()
}

pub(super) fn skewed(n: usize, symbols: u64, bias: u32, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n).map(|_| r.skewed(symbols, bias) as u8).collect()
}

/// Literal-like text: words of a small vocabulary with punctuation.
pub(super) fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "the", "layer", "image", "tender", "bundle", "site", "zstd", "of", "a", "and", "delta",
        "Registry", "manifest", "to", "digest", "sha256:", "blob", "in", "is", "0x1f", "config",
        "{\"", "\":", "usr/lib/",
    ];
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(WORDS[r.skewed(WORDS.len() as u64, 2) as usize].as_bytes());
        out.push(match r.below(8) {
            0 => b'\n',
            1 => b',',
            _ => b' ',
        });
    }
    out.truncate(n);
    out
}

/// Bytes of this machine's real binaries (a tar of /usr/bin files), from
/// `offset`.
pub(super) fn binary(n: usize, offset: usize) -> Vec<u8> {
    use std::sync::OnceLock;
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    let tar = TAR.get_or_init(|| binaries_tar(2 << 20, 512 << 10, |_| {}));
    assert!(tar.len() >= offset + n, "not enough binaries in /usr/bin");
    tar[offset..offset + n].to_vec()
}

// ------------------------------------------------------------ comparing

/// Runs the cases through Go and through `ours`, and asserts equal results.
pub(super) fn check(cases: Vec<Value>, ours: impl Fn(&Value) -> Value) -> Vec<Value> {
    let request = serde_json::to_vec(&json!({ "cases": cases })).unwrap();
    let answer: Value = serde_json::from_slice(&kzstd_parts_run(&request)).unwrap();
    let go = answer["results"].as_array().unwrap();
    assert_eq!(go.len(), cases.len());
    for (i, (case, want)) in cases.iter().zip(go).enumerate() {
        let got = ours(case);
        if let Some(path) = first_difference(want, &got, String::new()) {
            let mut brief = case.clone();
            shorten(&mut brief);
            panic!(
                "case {i} differs from Go at {path}\ncase: {brief}\ngo:   {}\nours: {}",
                pick(want, &path),
                pick(&got, &path)
            );
        }
    }
    go.clone()
}

fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                if let Some(p) = first_difference(va, vb, format!("{path}/{key}")) {
                    return Some(p);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, format!("{path}/{i}"))),
        _ => (a != b).then_some(path),
    }
}

fn pick(v: &Value, path: &str) -> String {
    let mut s = v.pointer(path).cloned().unwrap_or(Value::Null).to_string();
    if s.len() > 400 {
        s.truncate(400);
        s.push_str("...");
    }
    s
}

/// Long hex strings cut down, for the failure message.
fn shorten(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > 80 => {
            let n = s.len();
            s.truncate(80);
            s.push_str(&format!("...({n} hex digits)"));
        }
        Value::Array(a) if a.len() > 20 => {
            let n = a.len();
            a.truncate(20);
            a.push(json!(format!("...({n} items)")));
        }
        Value::Array(a) => a.iter_mut().for_each(shorten),
        Value::Object(o) => o.values_mut().for_each(shorten),
        _ => {}
    }
}

pub(super) fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or("")).unwrap()
}
