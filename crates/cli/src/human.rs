//! Numbers for people.

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes per second, for throughput lines.
pub fn rate(n: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".into();
    }
    format!("{}/s", bytes((n as f64 / seconds) as u64))
}

/// Text from a bundle, made safe for a terminal: control characters (an
/// escape sequence could repaint "valid" over "bad signature") are shown
/// escaped. Unsigned fields such as `signer` are attacker-controlled.
pub fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clean_escapes_terminal_controls() {
        assert_eq!(super::clean("ops\x1b[2K valid"), "ops\\u{1b}[2K valid");
        assert_eq!(super::clean("plain-name"), "plain-name");
    }

    #[test]
    fn bytes() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 << 30), "3.0 GiB");
    }
}
