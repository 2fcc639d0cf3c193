//! What is wrong with one volume of a cut bundle. The volume reader
//! (`volumes`) finds it and the rejection it causes (`error`) carries it;
//! it lives apart from both so that neither needs the other.

use serde::Serialize;

/// What is wrong with one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum VolumeProblem {
    Missing,
    Truncated {
        size: u64,
        expected: u64,
    },
    TooLong {
        size: u64,
        expected: u64,
    },
    Corrupt,
    /// The bytes are another bundle's (or another cut's) volume.
    ForeignBundle,
}

/// A volume and its problem, for `--list-missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeCheck {
    pub number: u32,
    pub count: u32,
    pub file: String,
    #[serde(flatten)]
    pub problem: VolumeProblem,
}

impl std::error::Error for VolumeCheck {}

impl std::fmt::Display for VolumeCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, c, file) = (self.number, self.count, &self.file);
        match &self.problem {
            VolumeProblem::Missing => write!(f, "volume {n} of {c} ({file}) is missing: copy it"),
            VolumeProblem::Truncated { size, expected } => write!(
                f,
                "volume {n} of {c} ({file}) is truncated ({size} of {expected} bytes): re-copy it"
            ),
            VolumeProblem::TooLong { size, expected } => write!(
                f,
                "volume {n} of {c} ({file}) is {size} bytes, {expected} expected: re-copy it"
            ),
            VolumeProblem::Corrupt => {
                write!(f, "volume {n} of {c} ({file}) is corrupt: re-copy it")
            }
            VolumeProblem::ForeignBundle => write!(
                f,
                "volume {n} of {c} ({file}) belongs to another bundle: copy the right one"
            ),
        }
    }
}
