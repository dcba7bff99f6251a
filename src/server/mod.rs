//! HTTP: `/metrics`, the landing page, health and lifecycle endpoints. Scrapes only read
//! the latest results; they never trigger DNS.

pub mod basic_auth;
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
pub use security::{Security, WebSecurity};

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

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let body = axum::body::Body::new(app.metrics.exposition());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct ProbeParams {
    domain: Option<String>,
}

async fn probe_domain(State(app): State<Arc<App>>, Query(params): Query<ProbeParams>) -> Response {
    let Some(domain) = params.domain.map(|d| crate::name::normalize_name(&d)) else {
        return (StatusCode::BAD_REQUEST, "domain parameter is missing\n").into_response();
    };
    if !crate::name::is_domain_name(&domain) {
        return (
            StatusCode::BAD_REQUEST,
            format!("invalid domain {domain:?}\n"),
        )
            .into_response();
    }
    let text = app.probes.probe(&app, &domain).await;
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
    Html(landing::render_index(&app))
}

async fn domain_page(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match landing::render_domain(&app, &name) {
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
    let now = security.current();
    tracing::info!(
        address = %listener.local_addr()?,
        tls = now.tls.is_some(),
        basic_auth = now.auth.is_some(),
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
            axum::serve(tls::TlsListener::new(listener, security)?, routes)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        None => {
            axum::serve(listener, routes)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    };
    app.stop();
    result
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
