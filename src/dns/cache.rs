//! A shared answer cache in front of the wire: each (name, type) is asked once while its
//! TTL lasts, however many domains' checks need it (10,000 customer domains including the
//! same provider SPF record cost one query), and concurrent askers wait for the one query
//! in flight instead of sending their own.
//!
//! TTLs are honoured, never stretched, so a changed record is seen as soon as a receiver
//! would see it; `max_ttl` caps them further so that a long TTL cannot hide a change from
//! the monitor for a day. Failures are kept only briefly so that an outage is noticed once
//! per run, not once per domain, and recovery is noticed quickly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::client::HickoryDns;
use super::{normalize_name, Dns, LookupFuture, LookupResult, RecordType};

const ERROR_TTL: Duration = Duration::from_secs(2);
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Above this many entries, expired ones are swept on insert.
const SWEEP_THRESHOLD: usize = 50_000;

struct Entry {
    result: LookupResult,
    expires: Instant,
}

type Slot = Arc<OnceCell<Entry>>;

pub struct CachingDns {
    wire: HickoryDns,
    max_ttl: Duration,
    slots: Mutex<HashMap<(String, RecordType), Slot>>,
}

impl CachingDns {
    pub fn new(wire: HickoryDns, max_ttl: Duration) -> Self {
        Self {
            wire,
            max_ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn wire(&self) -> &HickoryDns {
        &self.wire
    }

    /// Distinct (name, type) pairs asked since the cache was created or cleared (each asked
    /// again only after its TTL ran out, so in one short run: the queries that were needed).
    pub fn len(&self) -> usize {
        self.slots.lock().expect("dns cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every answer (used by tests that change a zone and by config reload).
    pub fn clear(&self) {
        self.slots.lock().expect("dns cache lock").clear();
    }

    fn slot(&self, key: (String, RecordType)) -> Slot {
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("dns cache lock");
        if let Some(slot) = slots.get(&key) {
            match slot.get() {
                Some(entry) if entry.expires <= now => {}
                _ => return slot.clone(), // fresh, or still in flight
            }
        }
        if slots.len() >= SWEEP_THRESHOLD {
            slots.retain(|_, s| s.get().is_none_or(|e| e.expires > now));
        }
        let slot: Slot = Arc::new(OnceCell::new());
        slots.insert(key, slot.clone());
        slot
    }
}

impl Dns for CachingDns {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> LookupFuture<'a> {
        Box::pin(async move {
            let slot = self.slot((normalize_name(name), rtype));
            let entry = slot
                .get_or_init(|| async {
                    let timed = self.wire.query(name, rtype).await;
                    let ttl = match (&timed.result, timed.ttl) {
                        (Err(_), _) => ERROR_TTL,
                        (Ok(_), Some(ttl)) => ttl,
                        (Ok(_), None) => DEFAULT_NEGATIVE_TTL,
                    };
                    Entry {
                        result: timed.result,
                        expires: Instant::now() + ttl.min(self.max_ttl),
                    }
                })
                .await;
            entry.result.clone()
        })
    }
}
