//! A small authoritative DNS server on loopback, serving zones written in master-file
//! format. It backs the `demo` command (a first look without internet) and the test
//! suites, which need a real server speaking real DNS over UDP and TCP.
//!
//! Zones can be replaced while it runs (a record changed between two runs), and single
//! names can be made to misbehave the way broken servers do (SERVFAIL, REFUSED, silence),
//! faults an intact zone cannot produce by itself.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

/// How a name misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    ServFail,
    Refused,
    /// No answer at all: the client times out.
    Silence,
}

#[derive(Default)]
struct State {
    zones: HashMap<LowerName, String>,
    catalog: Arc<Catalog>,
    faults: HashMap<LowerName, Fault>,
}

struct Handler {
    state: Arc<RwLock<State>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let (catalog, fault) = {
            let state = self.state.read().expect("zone state lock");
            let fault = request
                .queries
                .queries()
                .first()
                .and_then(|q| state.faults.get(q.name()))
                .copied();
            (state.catalog.clone(), fault)
        };
        match fault {
            None => {
                catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            Some(Fault::Silence) => {
                let mut metadata = Metadata::new(
                    request.metadata.id,
                    MessageType::Response,
                    request.metadata.op_code,
                );
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
            Some(fault) => {
                let code = if fault == Fault::Refused {
                    ResponseCode::Refused
                } else {
                    ResponseCode::ServFail
                };
                let response = MessageResponseBuilder::new(&request.queries, None)
                    .error_msg(&request.metadata, code);
                match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => {
                        let mut metadata = Metadata::new(
                            request.metadata.id,
                            MessageType::Response,
                            request.metadata.op_code,
                        );
                        metadata.response_code = code;
                        ResponseInfo::from(Header {
                            metadata,
                            counts: HeaderCounts::default(),
                        })
                    }
                }
            }
        }
    }
}

/// A running server. Dropping it stops it.
pub struct ZoneServer {
    addr: SocketAddr,
    state: Arc<RwLock<State>>,
    server: Server<Handler>,
}

impl ZoneServer {
    /// Starts on `ip`, UDP and TCP on the same free port.
    pub async fn start(ip: IpAddr) -> std::io::Result<Self> {
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => return Ok(Self::serve(udp, tcp)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    /// Starts on exactly `addr` (UDP and TCP).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Ok(Self::serve(udp, tcp))
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> Self {
        let addr = udp.local_addr().expect("bound socket has an address");
        let state = Arc::new(RwLock::new(State::default()));
        let mut server = Server::new(Handler {
            state: state.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65_535);
        Self {
            addr,
            state,
            server,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds or replaces the zone `origin` with the records of `text` (master-file format;
    /// `$ORIGIN` defaults to `origin`; an SOA is required).
    pub fn set_zone(&self, origin: &str, text: &str) -> Result<(), ZoneError> {
        let origin_name =
            Name::from_ascii(format!("{}.", origin.trim_end_matches('.'))).map_err(|e| {
                ZoneError::BadOrigin {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                }
            })?;
        parse_zone(&origin_name, text)?;
        let mut state = self.state.write().expect("zone state lock");
        state
            .zones
            .insert(LowerName::new(&origin_name), text.to_string());
        state.catalog = Arc::new(build_catalog(&state.zones)?);
        Ok(())
    }

    /// Removes a zone: its names become REFUSED, as from a server not authoritative for them.
    pub fn remove_zone(&self, origin: &str) -> Result<(), ZoneError> {
        let lower = lower_name(origin)?;
        let mut state = self.state.write().expect("zone state lock");
        state.zones.remove(&lower);
        state.catalog = Arc::new(build_catalog(&state.zones)?);
        Ok(())
    }

    /// Makes queries for exactly `name` misbehave (`None` heals it).
    pub fn set_fault(&self, name: &str, fault: Option<Fault>) -> Result<(), ZoneError> {
        let lower = lower_name(name)?;
        let mut state = self.state.write().expect("zone state lock");
        match fault {
            Some(f) => state.faults.insert(lower, f),
            None => state.faults.remove(&lower),
        };
        Ok(())
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

/// Why a zone or a fault was not taken; the server keeps serving what it had.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("bad zone origin {origin:?}: {reason}")]
    BadOrigin { origin: String, reason: String },
    #[error("bad name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    /// The master-file text does not parse.
    #[error("zone {origin}: {reason}")]
    Syntax { origin: String, reason: String },
    /// The records parse but make no zone (no SOA, records outside the origin).
    #[error("zone {origin}: {reason}")]
    Unusable { origin: String, reason: String },
}

fn lower_name(name: &str) -> Result<LowerName, ZoneError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map(|n| LowerName::new(&n))
        .map_err(|e| ZoneError::BadName {
            name: name.to_string(),
            reason: e.to_string(),
        })
}

fn parse_zone(
    origin: &Name,
    text: &str,
) -> Result<
    std::collections::BTreeMap<
        hickory_server::proto::rr::RrKey,
        hickory_server::proto::rr::RecordSet,
    >,
    ZoneError,
> {
    let (_, records) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| ZoneError::Syntax {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
    Ok(records)
}

fn build_catalog(zones: &HashMap<LowerName, String>) -> Result<Catalog, ZoneError> {
    let mut catalog = Catalog::new();
    for (origin, text) in zones {
        let name = Name::from(origin.clone());
        let records = parse_zone(&name, text)?;
        let handler =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
                name,
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .map_err(|e| ZoneError::Unusable {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        catalog.upsert(origin.clone(), vec![Arc::new(handler)]);
    }
    Ok(catalog)
}
