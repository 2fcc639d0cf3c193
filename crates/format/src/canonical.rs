//! Canonical JSON: the one byte form of a document that gets signed.
//!
//! Rules (bundle-spec §3): UTF-8, no insignificant whitespace, object keys
//! sorted by byte order, no duplicate keys, integers only (no fractions or
//! exponents), strings escaped the way `serde_json` escapes them (only `"`,
//! `\` and control characters). A reader re-encodes what it parsed and
//! rejects the document unless the bytes are identical, so two encodings of
//! one manifest can never carry two different signatures' meanings.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why bytes are not a canonical JSON document.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("not valid JSON")]
    Syntax(#[from] serde_json::Error),
    #[error("JSON is valid but not in canonical form (sorted keys, no whitespace, integers only)")]
    NotCanonical,
    #[error("JSON numbers must be integers in canonical form")]
    Float,
}

/// Encodes a value in canonical form.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    // serde_json's Value keeps objects in a BTreeMap (the `preserve_order`
    // feature is off in this workspace), so going through it sorts keys.
    let value = serde_json::to_value(value)?;
    reject_floats(&value)?;
    Ok(serde_json::to_vec(&value)?)
}

/// Parses bytes that must already be canonical.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CanonicalError> {
    let value: Value = serde_json::from_slice(bytes)?;
    reject_floats(&value)?;
    if serde_json::to_vec(&value)? != bytes {
        // Also catches duplicate keys: the parsed map holds one of them, so
        // its re-encoding is shorter than the input.
        return Err(CanonicalError::NotCanonical);
    }
    Ok(serde_json::from_value(value)?)
}

fn reject_floats(value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Err(CanonicalError::Float),
        Value::Array(items) => items.iter().try_for_each(reject_floats),
        Value::Object(map) => map.values().try_for_each(reject_floats),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Doc {
        zeta: u64,
        alpha: String,
    }

    #[test]
    fn keys_are_sorted_and_whitespace_removed() {
        let bytes = to_vec(&Doc {
            zeta: 1,
            alpha: "a\"b".into(),
        })
        .unwrap();
        assert_eq!(bytes, br#"{"alpha":"a\"b","zeta":1}"#);
        let back: Doc = from_slice(&bytes).unwrap();
        assert_eq!(back.zeta, 1);
    }

    #[test]
    fn non_canonical_input_is_rejected() {
        for bad in [
            &br#"{"zeta":1,"alpha":"x"}"#[..],
            br#"{"alpha":"x", "zeta":1}"#,
            br#"{"alpha":"x","zeta":1,"zeta":2}"#,
            br#"{"alpha":"x","zeta":1.0}"#,
            br#"{"alpha":"\u0078","zeta":1}"#,
        ] {
            assert!(
                from_slice::<Doc>(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
