//! The study as of its latest event, kept in the server's memory.
//!
//! Every page reads the whole lineage (the curves, the tree, the specialists' records), and a
//! long study has a hundred thousand trials. So the server holds every trial's node and, when
//! the study's latest event id moves, reads again only the trials the new events touched: a
//! refresh costs what changed, not the study's length. Each answer is computed once per
//! snapshot, on first request, and then served as bytes to every reader until the next change.

use axum::body::Bytes;
use postdoc_core::TrialNode;
use postdoc_store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::{Mutex, OnceCell};

use crate::model;

/// Events read again before the last one seen. PostgreSQL numbers an event when it is written,
/// not when its transaction commits, so one written a moment earlier may commit with an id
/// below one already seen; reading a margin of the log again catches it.
const LOOK_BACK: i64 = 1000;

/// The lineage as one event id left it, and the answers computed from it so far.
pub(crate) struct Snapshot {
    pub(crate) event_id: i64,
    /// Every trial, in number order.
    pub(crate) nodes: Vec<TrialNode>,
    pub(crate) overview: OnceCell<Bytes>,
    pub(crate) trials: OnceCell<Bytes>,
    pub(crate) specialists: OnceCell<Bytes>,
    pub(crate) notes: OnceCell<Bytes>,
    pub(crate) data: OnceCell<Bytes>,
}

impl Snapshot {
    fn new(event_id: i64, nodes: Vec<TrialNode>) -> Snapshot {
        Snapshot {
            event_id,
            nodes,
            overview: OnceCell::new(),
            trials: OnceCell::new(),
            specialists: OnceCell::new(),
            notes: OnceCell::new(),
            data: OnceCell::new(),
        }
    }
}

/// The latest snapshot of one study, brought up to date on demand.
#[derive(Default)]
pub(crate) struct Snapshots {
    latest: Mutex<Option<Arc<Snapshot>>>,
}

impl Snapshots {
    /// The study as of its latest event.
    pub(crate) async fn current(&self, store: &Store, study: i64) -> Result<Arc<Snapshot>, StoreError> {
        // One refresh at a time: readers arriving during one wait for it and share its result.
        let mut latest = self.latest.lock().await;
        let event_id = store.last_event_id(study).await?;
        if let Some(s) = latest.as_ref().filter(|s| s.event_id == event_id) {
            return Ok(s.clone());
        }
        let nodes = match latest.take() {
            Some(old) => {
                let touched = store.trial_nodes_touched_since(study, old.event_id - LOOK_BACK).await?;
                // The old snapshot's nodes are reused in place unless a reader still holds it.
                let mut nodes = Arc::try_unwrap(old).map(|s| s.nodes).unwrap_or_else(|old| old.nodes.clone());
                model::merge(&mut nodes, touched);
                nodes
            }
            None => store.trial_nodes(study).await?,
        };
        let snapshot = Arc::new(Snapshot::new(event_id, nodes));
        *latest = Some(snapshot.clone());
        Ok(snapshot)
    }
}
