//! Numbers for people.

/// Bytes per second, for throughput lines.
pub fn rate(n: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".into();
    }
    format!("{}/s", indicatif::HumanBytes((n as f64 / seconds) as u64))
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
    fn rate_is_bytes_per_second_in_binary_units() {
        assert_eq!(super::rate(3 << 30, 2.0), "1.50 GiB/s");
        assert_eq!(super::rate(512, 1.0), "512 B/s");
        // No time measured: no made-up rate.
        assert_eq!(super::rate(512, 0.0), "-");
    }
}
