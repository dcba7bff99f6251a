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
use super::{
    Answer, Authenticated, AuthenticatedFuture, Dns, LookupFuture, LookupResult, RecordType,
};
use crate::name::normalize_name;

mod packed;

const ERROR_TTL: Duration = Duration::from_secs(2);
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Above this many entries, expired ones are swept on insert.
const SWEEP_THRESHOLD: usize = 50_000;
/// Entries kept at most, fresh or not (10,000 domains need some 130,000). Names are not
/// only the operator's: an any-domain `/probe` asks for names its clients make up, and
/// within one `cache_max_ttl` those could otherwise grow the cache without limit. Past
/// it, answered entries go (a later ask just queries again); queries in flight stay.
const MAX_ENTRIES: usize = 1_000_000;

/// The size at which the next sweep runs, after one left `live` entries: twice as many, so
/// that a cache of fresh answers larger than the threshold (10,000 domains ask some 130,000
/// names) is not scanned whole on every insert. Each sweep is paid for by as many inserts
/// as it scanned entries: amortised O(1).
fn next_sweep(live: usize) -> usize {
    live.saturating_mul(2).max(SWEEP_THRESHOLD)
}

struct Entry {
    result: LookupResult,
    /// For answers asked with DNSSEC OK: whether the resolver vouched for them (AD).
    authenticated: bool,
    expires: Instant,
}

/// (name, type, asked with DNSSEC OK): the AD-bit queries of DANE are cached apart from
/// the plain ones, since only they carry the resolver's verdict.
type Key = (Box<str>, RecordType, bool);

/// A name's place in the cache. While its query is in flight every asker waits on the
/// same cell; once answered it is kept inline in the map. With 10,000 domains the cache
/// holds some 107,000 answers, and a cell per answer (a semaphore and the entry behind an
/// `Arc`) cost more than the answers themselves. Failures stay in their cell, since
/// they live only briefly. Record lists are kept [`packed`] (one allocation instead of
/// four or more), and an answered slot is 24 bytes (its expiry a [`Moment`], not an
/// `Instant`): the map's buckets, at most half full after it grows, are paid for the
/// cache's whole life.
enum Slot {
    Pending(Arc<OnceCell<Entry>>),
    /// An answer kept as the wire gave it: NXDOMAIN and NODATA, one allocation each for the
    /// whole process, and a record list too long to pack.
    Shared {
        answer: Arc<Answer>,
        expires: Moment,
        authenticated: bool,
    },
    /// A record list, unpacked into a new `Answer` for each check that reads it.
    Packed {
        records: Box<[u8]>,
        expires: Moment,
        authenticated: bool,
    },
}

/// A moment as whole milliseconds since the cache was created, in 6 bytes (an `Instant`
/// takes 16), big-endian so that the derived order is the order in time (48 bits of
/// milliseconds last 8,900 years). Expiries are rounded down and a slot is fresh only
/// while the present millisecond is before its expiry's, so an answer is dropped up to a
/// millisecond early, never kept past its TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Moment([u8; 6]);

impl Moment {
    const LAST: u64 = (1 << 48) - 1;

    fn since(epoch: Instant, at: Instant) -> Moment {
        let millis = at.saturating_duration_since(epoch).as_millis();
        let millis = u64::try_from(millis).map_or(Self::LAST, |m| m.min(Self::LAST));
        let mut bytes = [0; 6];
        bytes.copy_from_slice(&millis.to_be_bytes()[2..]);
        Moment(bytes)
    }
}

impl Slot {
    /// An answer as the map keeps it: record lists packed when they fit, the rest shared.
    fn answered(answer: &Arc<Answer>, expires: Moment, authenticated: bool) -> Slot {
        if let Answer::Records {
            records,
            cname_chain,
        } = &**answer
        {
            if let Some(records) = packed::pack(records, cname_chain) {
                return Slot::Packed {
                    records,
                    expires,
                    authenticated,
                };
            }
        }
        Slot::Shared {
            answer: answer.clone(),
            expires,
            authenticated,
        }
    }

    fn fresh(&self, now: Instant, moment: Moment) -> bool {
        match self {
            Slot::Pending(cell) => cell.get().is_none_or(|e| e.expires > now),
            Slot::Shared { expires, .. } | Slot::Packed { expires, .. } => *expires > moment,
        }
    }
}

/// At or past `limit` entries, drops answered ones down to three quarters of it.
fn shrink(map: &mut HashMap<Key, Slot>, limit: usize) {
    if map.len() < limit {
        return;
    }
    let excess = map.len() - limit * 3 / 4;
    let victims: Vec<Key> = map
        .iter()
        .filter(|(_, slot)| !matches!(slot, Slot::Pending(_)))
        .map(|(key, _)| key.clone())
        .take(excess)
        .collect();
    for key in victims {
        map.remove(&key);
    }
}

/// What a lookup finds: an answer to use, or the cell of the query to wait for.
enum Found {
    Fresh(LookupResult, bool),
    Wait(Arc<OnceCell<Entry>>),
}

struct Slots {
    map: HashMap<Key, Slot>,
    sweep_at: usize,
}

pub struct CachingDns {
    wire: HickoryDns,
    max_ttl: Duration,
    /// What the answered slots' [`Moment`]s count from.
    epoch: Instant,
    slots: Mutex<Slots>,
}

impl CachingDns {
    pub fn new(wire: HickoryDns, max_ttl: Duration) -> Self {
        Self {
            wire,
            max_ttl,
            epoch: Instant::now(),
            slots: Mutex::new(Slots {
                map: HashMap::new(),
                sweep_at: SWEEP_THRESHOLD,
            }),
        }
    }

    pub fn wire(&self) -> &HickoryDns {
        &self.wire
    }

    /// Distinct (name, type) pairs asked since the cache was created or cleared (each asked
    /// again only after its TTL ran out, so in one short run: the queries that were needed).
    pub fn len(&self) -> usize {
        self.slots.lock().expect("dns cache lock").map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every answer (used by tests that change a zone and by config reload).
    pub fn clear(&self) {
        self.slots.lock().expect("dns cache lock").map.clear();
    }

    /// When an answer with this TTL stops being reused: never past its TTL or `max_ttl`;
    /// failures only briefly.
    fn expiry(&self, result: &LookupResult, ttl: Option<Duration>) -> Instant {
        let ttl = match (result, ttl) {
            (Err(_), _) => ERROR_TTL,
            (Ok(_), Some(ttl)) => ttl,
            (Ok(_), None) => DEFAULT_NEGATIVE_TTL,
        };
        Instant::now() + ttl.min(self.max_ttl)
    }

    /// The fresh answer for `key`, or the cell of its query (started here if none is in
    /// flight).
    fn find(&self, key: &Key) -> Found {
        let now = Instant::now();
        let moment = Moment::since(self.epoch, now);
        let mut slots = self.slots.lock().expect("dns cache lock");
        match slots.map.get(key) {
            Some(Slot::Shared {
                answer,
                authenticated,
                expires,
            }) if *expires > moment => return Found::Fresh(Ok(answer.clone()), *authenticated),
            Some(Slot::Packed {
                records,
                authenticated,
                expires,
            }) if *expires > moment => {
                // Bytes this cache packed always unpack; if not, the name is asked again.
                if let Some(answer) = packed::unpack(records) {
                    return Found::Fresh(Ok(Arc::new(answer)), *authenticated);
                }
            }
            Some(Slot::Pending(cell)) => match cell.get() {
                None => return Found::Wait(cell.clone()),
                Some(e) if e.expires > now => {
                    return Found::Fresh(e.result.clone(), e.authenticated)
                }
                Some(_) => {}
            },
            _ => {}
        }
        if slots.map.len() >= slots.sweep_at {
            slots.map.retain(|_, slot| slot.fresh(now, moment));
            shrink(&mut slots.map, MAX_ENTRIES);
            slots.sweep_at = next_sweep(slots.map.len()).min(MAX_ENTRIES);
        }
        let cell = Arc::new(OnceCell::new());
        slots.map.insert(key.clone(), Slot::Pending(cell.clone()));
        Found::Wait(cell)
    }

    /// Moves a finished query's answer from its cell into the map (unless the slot has
    /// been replaced or cleared meanwhile).
    fn settle(&self, key: &Key, cell: &Arc<OnceCell<Entry>>) {
        let Some(Entry {
            result: Ok(answer),
            authenticated,
            expires,
        }) = cell.get()
        else {
            return;
        };
        let mut slots = self.slots.lock().expect("dns cache lock");
        if let Some(slot) = slots.map.get_mut(key) {
            if matches!(slot, Slot::Pending(c) if Arc::ptr_eq(c, cell)) {
                *slot = Slot::answered(answer, Moment::since(self.epoch, *expires), *authenticated);
            }
        }
    }

    /// Answers `key` from the cache or by `ask`ing once, however many ask at the same time.
    async fn cached<F, Fut>(&self, key: Key, ask: F) -> (LookupResult, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Entry>,
    {
        match self.find(&key) {
            Found::Fresh(result, authenticated) => (result, authenticated),
            Found::Wait(cell) => {
                let entry = cell.get_or_init(ask).await;
                let found = (entry.result.clone(), entry.authenticated);
                self.settle(&key, &cell);
                found
            }
        }
    }
}

impl Dns for CachingDns {
    fn lookup_authenticated<'a>(
        &'a self,
        name: &'a str,
        rtype: RecordType,
    ) -> AuthenticatedFuture<'a> {
        Box::pin(async move {
            let key = (normalize_name(name).into_boxed_str(), rtype, true);
            let (result, authenticated) = self
                .cached(key, || async {
                    let answer = self.wire.query_authenticated(name, rtype).await;
                    Entry {
                        expires: self.expiry(&answer.result, answer.ttl),
                        result: answer.result,
                        authenticated: answer.authenticated,
                    }
                })
                .await;
            Authenticated {
                result,
                authenticated,
                ttl: None,
            }
        })
    }

    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> LookupFuture<'a> {
        Box::pin(async move {
            let key = (normalize_name(name).into_boxed_str(), rtype, false);
            self.cached(key, || async {
                let timed = self.wire.query(name, rtype).await;
                Entry {
                    expires: self.expiry(&timed.result, timed.ttl),
                    result: timed.result,
                    authenticated: false,
                }
            })
            .await
            .0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_of_fresh_answers_shrinks() {
        let answer = Arc::new(super::super::Answer::NoData);
        let far = Moment([0, 0, 0, 0x36, 0xee, 0x80]);
        let mut map: HashMap<Key, Slot> = (0..100)
            .map(|i| {
                let slot = Slot::Shared {
                    answer: answer.clone(),
                    authenticated: false,
                    expires: far,
                };
                (
                    (
                        format!("n{i}.example").into_boxed_str(),
                        RecordType::A,
                        false,
                    ),
                    slot,
                )
            })
            .collect();
        map.insert(
            ("pending.example".into(), RecordType::A, false),
            Slot::Pending(Arc::new(OnceCell::new())),
        );
        shrink(&mut map, 100);
        assert_eq!(map.len(), 75);
        assert!(map.contains_key(&("pending.example".into(), RecordType::A, false)));
    }

    #[test]
    fn a_cached_answer_is_small_in_the_map() {
        // The map's buckets hold (key, slot) and are paid for each of the 107,000 answers
        // 10,000 domains keep (twice over while the map is half full after growing). With
        // an `Instant` expiry the slot took 32 bytes and a bucket 56 (the packed record
        // list's length costs 8 of the 16 the expiry saved).
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        assert!(std::mem::size_of::<(Key, Slot)>() <= 48);
    }

    #[test]
    fn an_answer_expires_up_to_a_millisecond_early_never_late() {
        let epoch = Instant::now();
        let at = |us: u64| Moment::since(epoch, epoch + Duration::from_micros(us));
        let expires = at(5_900_700);
        assert_eq!(expires, Moment([0, 0, 0, 0, 0x17, 0x0c]), "5,900 ms");
        assert!(at(5_899_999) < expires, "fresh before");
        assert!(at(5_900_000) >= expires, "gone at the millisecond");
        assert!(at(5_900_700) >= expires, "gone by the expiry");
        assert!(at(4_999_999) < expires && at(300_000_000) > expires);
        // A moment before the epoch (cannot happen) and one past 48 bits.
        assert_eq!(
            Moment::since(epoch + Duration::from_secs(1), epoch),
            Moment([0; 6])
        );
        let far = epoch + Duration::from_secs(1 << 40);
        assert_eq!(Moment::since(epoch, far), Moment([0xff; 6]));
    }

    #[test]
    fn sweeps_are_spaced_out_beyond_the_threshold() {
        assert_eq!(next_sweep(0), SWEEP_THRESHOLD);
        assert_eq!(next_sweep(SWEEP_THRESHOLD / 4), SWEEP_THRESHOLD);
        // A sweep that freed nothing in a cache of 130,000 fresh answers: the next one only
        // after as many inserts again.
        assert_eq!(next_sweep(130_000), 260_000);
        assert_eq!(next_sweep(usize::MAX), usize::MAX);
    }
}
