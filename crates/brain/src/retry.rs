//! Retries with backoff around any brain, so a rate limit or a dropped stream costs a wait, not
//! a proposal, and a provider that stays down is reported as such.

use crate::{Brain, BrainError, Conversation, Reply, ReplyOptions};
pub use postdoc_web::RetryPolicy;

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
