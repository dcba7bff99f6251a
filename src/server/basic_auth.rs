//! HTTP basic authentication against the web config's bcrypt hashes (RFC 7617).
//!
//! - An unknown user costs the same as a known one: the password is checked against a
//!   configured user's hash and the answer is then "no", so timing does not tell which
//!   user names exist.
//! - bcrypt is slow on purpose; one verification runs at a time (on a blocking thread),
//!   so a burst of bad logins cannot take every core, and a successful verification is
//!   remembered for a minute so that a scrape every few seconds does not pay it each time.
//!   The memory holds only a SHA-256 digest of user, hash and password, never the password.
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

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// The hash an unknown user's password is checked against (a configured user's).
    decoy: String,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    one_at_a_time: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// `None` when no users are configured (authentication off).
    pub fn new(users: &BTreeMap<String, String>) -> Option<Arc<Self>> {
        let decoy = users.values().next()?.clone();
        Some(Arc::new(Self {
            users: users.clone(),
            decoy,
            verified: Mutex::new(HashMap::new()),
            one_at_a_time: tokio::sync::Semaphore::new(1),
        }))
    }

    /// Whether the `Authorization` header value names a configured user and its password.
    pub async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let known = std::str::from_utf8(&user)
            .ok()
            .and_then(|u| self.users.get(u));
        let hash = known.unwrap_or(&self.decoy).clone();
        let key = cache_key(&user, &hash, &password);
        if known.is_some() && self.recently_verified(&key) {
            return true;
        }
        let Ok(_permit) = self.one_at_a_time.acquire().await else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let ok = ok && known.is_some();
        if ok {
            self.remember(key);
        }
        ok
    }

    fn recently_verified(&self, key: &[u8; 32]) -> bool {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).is_some_and(|at| at.elapsed() < CACHE_TTL)
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
    if auth
        .allows(request.headers().get(header::AUTHORIZATION))
        .await
    {
        return next.run(request).await;
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
}
