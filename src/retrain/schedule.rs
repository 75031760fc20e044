//! The retraining loop inside `serve`: every `interval`, and whenever some
//! study and objective has `after` evaluations newer than its last
//! training attempt. Every replica runs it; the trainer lock makes one of
//! them train and the others skip that round.

use std::time::Duration;

use tokio::sync::watch;

use super::{RetrainConfig, RetrainError, Scope, retrain};
use crate::store::StoreHandle;

/// When the loop retrains.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Look at every study and objective this often; `None`: never on a
    /// timer.
    pub interval: Option<Duration>,
    /// Retrain a study and objective once it has this many new
    /// evaluations; `None`: never on a count.
    pub after: Option<i64>,
    /// How often the count is checked.
    pub check_every: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(30 * 60)),
            after: Some(100),
            check_every: Duration::from_secs(2),
        }
    }
}

/// Runs until `shutdown` turns true. A pass in progress at shutdown is
/// dropped; its lock goes with its connection and nothing half-promoted
/// remains (promotion is one transaction).
pub async fn run(
    store: StoreHandle,
    config: RetrainConfig,
    schedule: Schedule,
    mut shutdown: watch::Receiver<bool>,
) {
    if schedule.interval.is_none() && schedule.after.is_none() {
        return;
    }
    let mut ticker = tokio::time::interval(schedule.check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let Some(store) = store.get() else { continue };
        let full_due = schedule.interval.is_some_and(|i| last_full.elapsed() >= i);
        let scope = if full_due {
            Scope::default()
        } else if let Some(after) = schedule.after {
            // Cheap when nothing is due: one grouped count.
            match store.new_evaluation_counts().await {
                Ok(counts) if counts.iter().any(|(_, _, n)| *n >= after) => Scope {
                    min_new_evaluations: Some(after),
                    ..Scope::default()
                },
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot count new evaluations; retrying");
                    continue;
                }
            }
        } else {
            continue;
        };
        let pass = retrain(&store, &config, &scope);
        let result = tokio::select! {
            r = pass => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(reports) => {
                if full_due {
                    last_full = tokio::time::Instant::now();
                }
                let promoted = reports
                    .iter()
                    .filter(|r| matches!(r.outcome, super::Outcome::Promoted { .. }))
                    .count();
                tracing::info!(
                    objectives = reports.len(),
                    promoted,
                    "scheduled retraining finished"
                );
            }
            Err(RetrainError::Busy) => {
                tracing::debug!("another replica is retraining; skipping this round");
                if full_due {
                    last_full = tokio::time::Instant::now();
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduled retraining failed"),
        }
    }
}
