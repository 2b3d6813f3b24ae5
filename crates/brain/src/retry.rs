//! Retries with backoff around any brain, so a rate limit or a dropped stream costs a wait, not
//! a proposal, and a provider that stays down is reported as such.

use crate::{Brain, BrainError, Conversation, Reply, ReplyOptions};
use std::time::Duration;

/// How hard to try: `attempts` in all, waiting `base_delay`, then twice that, and so on up to
/// `max_delay` (or what the provider's `Retry-After` asks, up to `max_delay`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 6, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failures.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

pub struct Retrying<B> {
    inner: B,
    policy: RetryPolicy,
}

impl<B: Brain> Retrying<B> {
    pub fn new(inner: B, policy: RetryPolicy) -> Retrying<B> {
        Retrying { inner, policy }
    }
}

#[async_trait::async_trait]
impl<B: Brain> Brain for Retrying<B> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn reply(&self, conversation: &Conversation, options: &ReplyOptions) -> Result<Reply, BrainError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.reply(conversation, options).await {
                Err(BrainError::Transient { reason, retry_after }) => {
                    if attempt >= self.policy.attempts {
                        return Err(BrainError::Unavailable { attempts: attempt, last: reason });
                    }
                    let wait = self.policy.delay(attempt, retry_after);
                    tracing::warn!(brain = %self.inner.describe(), attempt, wait_s = wait.as_secs_f64(), "{reason}; trying again");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy { attempts: 5, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(5) };
        let waits: Vec<u64> = (1..=5).map(|a| p.delay(a, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(300))), Duration::from_secs(5));
    }
}
