//! Retries with exponential backoff and full jitter.
//!
//! What is retried is decided by [`crate::OciError::is_retryable`]: 5xx
//! (but 501), 429 and transport failures; never other 4xx, TLS or digest
//! errors. A 401 is not a retry: it triggers the auth flow once (see
//! `registry.rs`). A `Retry-After` the registry sends is honoured up to
//! [`RetryPolicy::max_delay`].

use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = no retries).
    pub attempts: u32,
    /// Upper bound of the wait before the first retry; it doubles for each
    /// further retry.
    pub initial_delay: Duration,
    /// Upper bound of any single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): uniformly
    /// random in [cap/2, cap], cap = min(initial * 2^(attempt-1), max),
    /// or the server's `Retry-After` (capped at `max_delay`).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let cap = self
            .initial_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = cap / 2;
        let spread = cap.saturating_sub(half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random_u64() % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

fn random_u64() -> u64 {
    // Jitter only: if the OS has no randomness for us, no jitter.
    getrandom::u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_are_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = policy.delay(2, None);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let late = policy.delay(30, None);
            assert!(late >= Duration::from_millis(175) && late <= Duration::from_millis(350));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(0))),
            Duration::from_secs(0)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            Duration::from_millis(350)
        );
    }
}
