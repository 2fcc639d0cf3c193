//! The forms the format's string fields take: names are tokens, times are
//! UTC seconds. The manifest, the signature slot and policy updates all
//! check them (and `manifest` re-exports them, where callers look).

/// `2026-11-26T03:42:00Z`: the one form `created` and `signed_at` take.
pub fn is_utc_seconds(s: &str) -> bool {
    s.len() == 20
        && s.ends_with('Z')
        && time::PrimitiveDateTime::parse(
            &s[..19],
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        )
        .is_ok()
}

/// Names (ids, channels, sites, clusters) are tokens: 1 to 128 characters
/// of `[A-Za-z0-9._-]`, not starting with a dot. Safe as file names.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
