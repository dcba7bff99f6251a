//! HTTP basic authentication against the web config's bcrypt hashes (RFC 7617).
//!
//! - An unknown user costs the same as a known one: each configured user's bcrypt cost has
//!   a decoy hash (of a random password, made at load), an unknown user name is mapped to
//!   one configured user's decoy, and the answer is then "no". Timing does not tell which
//!   user names exist, even when the users' hashes have different costs.
//! - bcrypt is slow on purpose; one verification runs at a time (on a blocking thread),
//!   so a burst of bad logins cannot take every core. The queue in front of it is short:
//!   past [`MAX_WAITING`] waiting requests, more are answered `429 Too Many Requests` at
//!   once instead of queueing without end (a flood of bad passwords would otherwise keep
//!   Prometheus's own scrapes waiting for ever).
//! - A successful verification is remembered while it keeps being used (each use renews
//!   it for a minute), so a scraper pays bcrypt once, not again every minute in the middle
//!   of a flood. The memory holds only a SHA-256 digest of user, hash and password, never
//!   the password; a changed hash in the web config no longer matches it.
//! - Nothing here logs a user name or password.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 256;
/// Requests waiting for the one bcrypt slot; more are refused with 429 at once.
pub const MAX_WAITING: usize = 8;
/// bcrypt's default cost, for a hash whose cost field does not parse (bcrypt then says
/// "no" anyway; the decoy still costs what a real check would).
const FALLBACK_COST: u32 = bcrypt::DEFAULT_COST;
/// The costs bcrypt accepts.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// The outcome of checking a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Too many requests are already waiting for a bcrypt verification.
    Busy,
}

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// For each bcrypt cost among the users' hashes, the hash of a random password made
    /// with that cost: what an unknown user's password is checked against.
    decoys: BTreeMap<u32, String>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    one_at_a_time: tokio::sync::Semaphore,
    /// Admission to the queue in front of `one_at_a_time`: the one running plus
    /// [`MAX_WAITING`].
    admission: tokio::sync::Semaphore,
}

/// The cost field of a modular-crypt bcrypt hash (`$2b$12$...`).
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

impl BasicAuth {
    /// `None` when no users are configured (authentication off). Makes one decoy hash per
    /// distinct cost: blocking, bcrypt-slow, so called where the web config is loaded.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Arc<Self>> {
        if users.is_empty() {
            return None;
        }
        let mut decoys = BTreeMap::new();
        for hash in users.values() {
            let cost = cost_of(hash)
                .filter(|c| BCRYPT_COSTS.contains(c))
                .unwrap_or(FALLBACK_COST);
            decoys.entry(cost).or_insert_with(|| {
                let secret: [u8; 24] = rand::random();
                bcrypt::hash(secret, cost).unwrap_or_else(|_| hash.clone())
            });
        }
        Some(Arc::new(Self {
            users: users.clone(),
            decoys,
            verified: Mutex::new(HashMap::new()),
            one_at_a_time: tokio::sync::Semaphore::new(1),
            admission: tokio::sync::Semaphore::new(1 + MAX_WAITING),
        }))
    }

    /// The decoy an unknown `user` is checked against: that of one configured user's
    /// cost, picked by a digest of the name, so that the same unknown name always costs
    /// the same and the costs of unknown names are spread as the real users' are.
    fn decoy_for(&self, user: &[u8]) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, user);
        let pick = digest.as_ref()[0] as usize % self.users.len().max(1);
        let cost = self
            .users
            .values()
            .nth(pick)
            .and_then(|h| cost_of(h))
            .unwrap_or(FALLBACK_COST);
        self.decoys
            .get(&cost)
            .or_else(|| self.decoys.values().next())
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the `Authorization` header value names a configured user and its password.
    pub async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        self.verdict(authorization).await == Verdict::Allowed
    }

    /// Checks the `Authorization` header value; [`Verdict::Busy`] when the queue for
    /// bcrypt is full (never waits for a place in it).
    pub async fn verdict(&self, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Verdict::Denied;
        };
        let known = std::str::from_utf8(&user)
            .ok()
            .and_then(|u| self.users.get(u));
        let hash = match known {
            Some(h) => h.clone(),
            None => self.decoy_for(&user),
        };
        let key = cache_key(&user, &hash, &password);
        if known.is_some() && self.recently_verified(&key) {
            return Verdict::Allowed;
        }
        let Ok(_place) = self.admission.try_acquire() else {
            return Verdict::Busy;
        };
        let Ok(_permit) = self.one_at_a_time.acquire().await else {
            return Verdict::Denied;
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let ok = ok && known.is_some();
        if ok {
            self.remember(key);
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// Whether `key` was verified within the last minute; a hit renews it.
    fn recently_verified(&self, key: &[u8; 32]) -> bool {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get_mut(key) {
            Some(at) if at.elapsed() < CACHE_TTL => {
                *at = Instant::now();
                true
            }
            _ => false,
        }
    }

    fn remember(&self, key: [u8; 32]) {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, at| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, Instant::now());
    }
}

fn cache_key(user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash.as_bytes(), password] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// `Basic base64(user:password)` → (user, password). The scheme is case-insensitive.
fn parse_basic(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = value.to_str().ok()?;
    let (scheme, credentials) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// axum middleware: when users are configured, every request needs valid credentials,
/// as with exporter-toolkit.
pub async fn require(
    State(security): State<Arc<super::WebSecurity>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(auth) = security.current().auth else {
        return next.run(request).await;
    };
    match auth
        .verdict(request.headers().get(header::AUTHORIZATION))
        .await
    {
        Verdict::Allowed => return next.run(request).await,
        Verdict::Busy => {
            tracing::debug!(path = %request.uri().path(), "credential check queue full: 429");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                "Too many authentication attempts at once; retry shortly\n",
            )
                .into_response();
        }
        Verdict::Denied => {}
    }
    tracing::debug!(path = %request.uri().path(), "request without valid credentials refused");
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mailauth-exporter\", charset=\"UTF-8\""),
        )],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
    }

    #[test]
    fn parses_basic_credentials() {
        let v = header("al:ice", "pw");
        assert_eq!(parse_basic(&v), Some((b"al".to_vec(), b"ice:pw".to_vec())));
        let v = HeaderValue::from_static("basic YTpi");
        assert_eq!(parse_basic(&v), Some((b"a".to_vec(), b"b".to_vec())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer YTpi")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic YWI=")), None);
    }

    #[tokio::test]
    async fn right_password_only_and_unknown_users_refused() {
        let users = BTreeMap::from([
            ("alice".to_string(), bcrypt::hash("wonderland", 4).unwrap()),
            ("bob".to_string(), bcrypt::hash("builder", 4).unwrap()),
        ]);
        let auth = BasicAuth::new(&users).unwrap();
        assert!(auth.allows(Some(&header("alice", "wonderland"))).await);
        // Cached now; still only for the right password.
        assert!(auth.allows(Some(&header("alice", "wonderland"))).await);
        assert!(!auth.allows(Some(&header("alice", "builder"))).await);
        assert!(auth.allows(Some(&header("bob", "builder"))).await);
        // An unknown user with the password of the decoy's owner is still refused.
        assert!(!auth.allows(Some(&header("carol", "wonderland"))).await);
        assert!(!auth.allows(Some(&header("carol", "builder"))).await);
        assert!(!auth.allows(None).await);
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }

    /// Each cost among the users has its own decoy; an unknown name is checked against a
    /// decoy of a configured user's cost, never against a real user's hash.
    #[test]
    fn unknown_users_get_a_decoy_of_a_real_users_cost() {
        let users = BTreeMap::from([
            ("alice".to_string(), bcrypt::hash("wonderland", 4).unwrap()),
            ("bob".to_string(), bcrypt::hash("builder", 5).unwrap()),
        ]);
        let auth = BasicAuth::new(&users).unwrap();
        assert_eq!(auth.decoys.keys().copied().collect::<Vec<_>>(), [4, 5]);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..64 {
            let decoy = auth.decoy_for(format!("user{i}").as_bytes());
            assert!(!users.values().any(|h| *h == decoy));
            seen.insert(cost_of(&decoy).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [4, 5]);
        assert_eq!(auth.decoy_for(b"carol"), auth.decoy_for(b"carol"));
    }

    /// A flood of bad passwords fills the short queue; past it requests are refused at
    /// once (429) instead of waiting, and a scraper already verified is let in at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flood_of_bad_passwords_is_refused_past_the_queue() {
        let users = BTreeMap::from([("prom".to_string(), bcrypt::hash("scrape", 4).unwrap())]);
        let auth = BasicAuth::new(&users).unwrap();
        assert_eq!(
            auth.verdict(Some(&header("prom", "scrape"))).await,
            Verdict::Allowed
        );
        // Hold the bcrypt slot, as a long verification would.
        let slot = auth.one_at_a_time.acquire().await.unwrap();
        let mut flood = Vec::new();
        for i in 0..MAX_WAITING {
            let auth = auth.clone();
            flood.push(tokio::spawn(async move {
                auth.verdict(Some(&header("prom", &format!("wrong{i}"))))
                    .await
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while auth.admission.available_permits() > 1 {
            assert!(Instant::now() < deadline, "the flood never queued");
            tokio::task::yield_now().await;
        }
        // One more bad request, and an unknown user: the queue is not full yet for one
        // (the running slot's place), then it is.
        let extra = {
            let auth = auth.clone();
            tokio::spawn(async move { auth.verdict(Some(&header("mallory", "x"))).await })
        };
        while auth.admission.available_permits() > 0 {
            assert!(Instant::now() < deadline, "the extra request never queued");
            tokio::task::yield_now().await;
        }
        let refused = tokio::time::timeout(
            Duration::from_secs(2),
            auth.verdict(Some(&header("prom", "wrong-again"))),
        )
        .await
        .expect("a request past the queue must not wait");
        assert_eq!(refused, Verdict::Busy);
        // The scraper verified before is not held up by the flood.
        let scrape = tokio::time::timeout(
            Duration::from_secs(2),
            auth.verdict(Some(&header("prom", "scrape"))),
        )
        .await
        .expect("a verified scraper must not wait behind the flood");
        assert_eq!(scrape, Verdict::Allowed);
        drop(slot);
        for f in flood {
            assert_eq!(f.await.unwrap(), Verdict::Denied);
        }
        assert_eq!(extra.await.unwrap(), Verdict::Denied);
    }
}
