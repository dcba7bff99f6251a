//! HTTP: `/metrics`, the landing page, health and lifecycle endpoints. Scrapes only read
//! the latest results; they never trigger DNS.
//!
//! The server is bounded against slow and numerous clients ([`HttpLimits`]): a request
//! head must arrive within 10 s, an idle keep-alive connection closes after as long, and
//! at most `max_connections` are served at once. With TLS, the listener in [`tls`] may
//! in addition hold up to 64 handshakes in progress and 64 finished ones waiting for a
//! slot: bounded too.

pub mod basic_auth;
pub mod gzip;
mod landing;
pub mod security;
pub mod tls;
pub mod web_config;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::service::app::App;
pub use security::{Security, WebSecurity, WebSecurityError};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(landing_page))
        .route("/domain/{name}", get(domain_page))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe_domain))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload))
        .with_state(app)
}

/// The exposition, gzip-compressed when the request accepts it ([`gzip::accepts_gzip`]).
/// Either way the response says that it varies with `Accept-Encoding`, so that a cache
/// between never hands one client's encoding to another.
async fn metrics(State(app): State<Arc<App>>, headers: header::HeaderMap) -> Response {
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let exposition = app.metrics.exposition();
    let content_type = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    let vary = (header::VARY, "Accept-Encoding");
    if gzip::accepts_gzip(&accept) {
        let body = axum::body::Body::new(gzip::GzipBody::new(exposition));
        (
            [content_type, vary, (header::CONTENT_ENCODING, "gzip")],
            body,
        )
            .into_response()
    } else {
        let body = axum::body::Body::new(exposition);
        ([content_type, vary], body).into_response()
    }
}

#[derive(serde::Deserialize)]
struct ProbeParams {
    domain: Option<String>,
}

async fn probe_domain(State(app): State<Arc<App>>, Query(params): Query<ProbeParams>) -> Response {
    let Some(raw) = params.domain else {
        return (StatusCode::BAD_REQUEST, "domain parameter is missing\n").into_response();
    };
    let Ok(domain) = crate::name::DomainName::new(&raw) else {
        let shown = crate::name::normalize_name(&raw);
        return (
            StatusCode::BAD_REQUEST,
            format!("invalid domain {shown:?}\n"),
        )
            .into_response();
    };
    let text = match app.probes.probe(&app, &domain).await {
        Ok(text) => text,
        Err(e @ crate::service::probe::ProbeError::NotWatched(_)) => {
            return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response();
        }
        Err(e @ crate::service::probe::ProbeError::DeadlineExceeded { .. }) => {
            return (StatusCode::GATEWAY_TIMEOUT, format!("{e}\n")).into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text.as_str().to_owned(),
    )
        .into_response()
}

async fn landing_page(State(app): State<Arc<App>>) -> Html<String> {
    let pass_counts = landing::pass_counts(&app).await;
    Html(landing::render_index(&app, pass_counts.as_ref()))
}

async fn domain_page(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    let sources = landing::sources(&app, &name).await;
    match landing::render_domain(&app, &name, sources.as_ref()) {
        Some(page) => Html(page).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("domain {name:?} is not configured\n"),
        )
            .into_response(),
    }
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    if !app.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled (set [exporter] enable_lifecycle or --web.enable-lifecycle).\n",
        )
            .into_response();
    }
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || app2.reload()).await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed: {e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "reload failed\n").into_response(),
    }
}

/// How the HTTP server treats slow and numerous clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head (and, on a kept-alive connection, the next one) must arrive within
    /// this; otherwise the connection is closed. hyper starts the timer when it begins to
    /// wait for a head, so an idle keep-alive connection is closed after it too.
    pub header_read_timeout: std::time::Duration,
    /// Connections served at once. Past it the listener stops accepting until one closes:
    /// further clients wait in the kernel's backlog rather than each holding a task and a
    /// socket here.
    pub max_connections: usize,
}

/// The head of a request must arrive within this (DESIGN.md, safe defaults).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl HttpLimits {
    /// The defaults, with the connection cap of `app`'s config.
    pub fn of(app: &App) -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: app.config().exporter.max_connections.max(1),
        }
    }
}

/// Serves until SIGTERM/SIGINT; SIGHUP reloads the configuration.
pub async fn serve(
    app: Arc<App>,
    addr: SocketAddr,
    security: Arc<WebSecurity>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_secured(app, listener, security).await
}

/// Plain HTTP without authentication on `listener`.
pub async fn serve_on(app: Arc<App>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_secured(app, listener, WebSecurity::fixed(Security::default())).await
}

pub async fn serve_secured(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    security: Arc<WebSecurity>,
) -> std::io::Result<()> {
    let limits = HttpLimits::of(&app);
    serve_with_limits(app, listener, security, limits, shutdown_signal()).await
}

/// As [`serve_secured`], with explicit limits and shutdown trigger (tests shorten the
/// header timeout and lower the connection cap so that they run in moments).
pub async fn serve_with_limits(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    security: Arc<WebSecurity>,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let now = security.current();
    tracing::info!(
        address = %listener.local_addr()?,
        tls = now.tls.is_some(),
        basic_auth = now.auth.is_some(),
        max_connections = limits.max_connections,
        "listening"
    );
    if now.auth.is_some() && now.tls.is_none() {
        tracing::warn!("basic auth without TLS: passwords cross the network readable");
    }
    #[cfg(unix)]
    {
        let app = app.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let app = app.clone();
                let _ = tokio::task::spawn_blocking(move || app.reload()).await;
            }
        });
    }
    let watcher = security.clone().watch();
    let mut routes = router(app.clone());
    if security.may_authenticate() {
        // Every path, /-/healthy included, as exporter-toolkit does.
        routes = routes.layer(axum::middleware::from_fn_with_state(
            security.clone(),
            basic_auth::require,
        ));
    }
    let result = match now.tls {
        Some(_) => {
            let listener = tls::TlsListener::new(listener, security)?;
            accept_loop(listener, routes, limits, shutdown).await;
            Ok(())
        }
        None => {
            accept_loop(listener, routes, limits, shutdown).await;
            Ok(())
        }
    };
    if let Some(w) = watcher {
        w.abort();
    }
    app.stop();
    result
}

/// Accepts while a connection slot is free, serves each connection with hyper's
/// header-read timer, and on `shutdown` stops accepting and lets open connections finish
/// their current request.
async fn accept_loop<L>(
    mut listener: L,
    routes: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()>,
) where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (io, _peer) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(routes.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit; // the slot frees when the connection ends
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(stop_rx);
    let _ = stop_tx.send(());
    // Every connection holds a receiver until it ends; each ends within the header-read
    // timeout once idle.
    stop_tx.closed().await;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
