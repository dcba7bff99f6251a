//! Entry point: parse the command line and hand over. Nothing about checks lives here.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures::StreamExt;

use mailauth_exporter::checks::DomainSpec;
use mailauth_exporter::cli::{CheckArgs, Cli, Command, ConfigCommand, Format, LogArgs, ServeArgs};
use mailauth_exporter::commands;
use mailauth_exporter::commands::demo;
use mailauth_exporter::config::Config;
use mailauth_exporter::resolver::{build_stack, QueryCounters, ResolverSettings};
use mailauth_exporter::service::app::App;
use mailauth_exporter::{output, server};

/// mimalloc instead of glibc's malloc: with 10,000 domains glibc kept 145 MiB resident for
/// a live heap of 48 MB (what stays, answers and series, is scattered among the freed
/// buffers of each run in arenas it does not give back; one arena was worse), mimalloc
/// 76 MiB. Built without transparent huge pages (`no_thp`): with them its arenas were
/// backed by 2 MiB pages and the same heap took 96 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        None => runtime.block_on(serve(cli.serve)),
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Check(args)) => runtime.block_on(check(args)),
        Some(Command::Inspect(args)) => {
            runtime.block_on(mailauth_exporter::commands::inspect::run(&args))
        }
        Some(Command::Report(args)) => {
            runtime.block_on(mailauth_exporter::commands::report::run(&args))
        }
        Some(Command::Demo(args)) => runtime.block_on(run_demo(
            args.listen_address,
            args.web_config_file.as_deref(),
            &args.log,
        )),
        Some(Command::Config {
            command: ConfigCommand::Check { config },
        }) => config_check(&config),
    }
}

fn init_logging(log: &LogArgs) {
    // The exporter's own messages at the chosen level; libraries (DNS server and client,
    // HTTP) only when they warn, unless RUST_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(format!("mailauth_exporter={},warn", log.level))
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A `--web.listen-address` or `listen_address` that is not `IP:PORT` (a host name is
/// refused: the exporter binds exactly what it is told, never what a lookup returns).
#[derive(Debug, thiserror::Error)]
#[error("invalid listen address {0:?}: expected IP:PORT")]
struct InvalidListenAddress(String);

fn parse_listen(text: &str) -> Result<SocketAddr, InvalidListenAddress> {
    text.parse()
        .map_err(|_| InvalidListenAddress(text.to_string()))
}

async fn serve(args: ServeArgs) -> ExitCode {
    init_logging(&args.log);
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            if !args.config.exists() {
                eprintln!("(to look around without a config, run: mailauth-exporter demo)");
            }
            return ExitCode::from(2);
        }
    };
    let listen = args
        .listen_address
        .clone()
        .unwrap_or_else(|| config.exporter.listen_address.clone());
    run_exporter(
        config,
        Some(args.config.clone()),
        &listen,
        args.enable_lifecycle,
        args.web_config_file.as_deref(),
        args.probe_any_domain,
    )
    .await
}

/// The web config file's TLS and authentication, its files read; `None` on an error
/// (printed).
fn load_security(web_config: Option<&std::path::Path>) -> Option<Arc<server::WebSecurity>> {
    let Some(path) = web_config else {
        return Some(server::WebSecurity::fixed(server::Security::default()));
    };
    match server::WebSecurity::load(path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

async fn run_exporter(
    config: Config,
    path: Option<std::path::PathBuf>,
    listen: &str,
    lifecycle: bool,
    web_config: Option<&std::path::Path>,
    probe_any_domain: bool,
) -> ExitCode {
    let addr = match parse_listen(listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(security) = load_security(web_config) else {
        return ExitCode::from(2);
    };
    let app = match App::start(config, path, lifecycle) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if probe_any_domain {
        app.set_probe_any_domain();
    }
    if app.probe_any_domain() {
        tracing::warn!("/probe answers for any domain (probe_any_domain): connections to non-public addresses are refused for unwatched domains");
    }
    match server::serve(app, addr, security).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot serve on {addr}: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_demo(listen: String, web_config: Option<&std::path::Path>, log: &LogArgs) -> ExitCode {
    init_logging(log);
    let zones = match demo::start_zone_server().await {
        Ok(z) => z,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let config = demo::demo_config(&zones, &listen);
    eprintln!(
        "demo: sample zones served by an embedded DNS server on {}",
        zones.addr()
    );
    eprintln!("demo: open http://{listen}/ and http://{listen}/metrics");
    let code = run_exporter(config, None, &listen, false, web_config, false).await;
    zones.shutdown().await;
    code
}

async fn check(args: CheckArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let settings = ResolverSettings {
        nameservers: args.nameservers.clone(),
        timeout: args.timeout,
        attempts: 2,
        ..ResolverSettings::default()
    };
    let counters = Arc::new(QueryCounters::default());
    let dns = match build_stack(&settings, std::time::Duration::from_secs(300), counters) {
        Ok(dns) => dns,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut names = Vec::new();
    for raw in &args.domains {
        let Ok(domain) = mailauth_exporter::name::DomainName::from_unicode(raw) else {
            eprintln!("invalid domain name {raw:?}");
            return ExitCode::from(2);
        };
        names.push(domain);
    }
    if let Some(path) = &args.domains_file {
        match mailauth_exporter::config::domains_file::read(path) {
            Ok(list) => {
                for skipped in &list.skipped {
                    eprintln!("{}: {skipped}", path.display());
                }
                names.extend(list.domains);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    let specs: Vec<DomainSpec> = names
        .into_iter()
        .map(|name| DomainSpec {
            dkim_selectors: args.dkim_selectors.clone(),
            sending_ips: args.sending_ips.clone(),
            helo: args.helo.clone(),
            expect_dmarc_policy: args.expect_dmarc_policy,
            parked: args.parked,
            blocklists: args.blocklists.clone(),
            ..DomainSpec::named(name)
        })
        .collect();
    let count = specs.len();
    let style = output::text::Style {
        color: std::io::stdout().is_terminal(),
    };
    let (mut unanswered, mut errors) = (false, false);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut reports = std::pin::pin!(commands::check::check_all(
        dns.clone(),
        specs,
        args.concurrency as usize
    ));
    let mut first = true;
    while let Some(report) = reports.next().await {
        unanswered |= !report.fully_answered();
        errors |= report.has_errors();
        let written = match args.format {
            Format::Json => writeln!(out, "{}", output::json::domain_line(&report)),
            Format::Text => {
                let sep = if first { "" } else { "\n" };
                write!(out, "{sep}{}", output::text::render(&report, &style))
            }
        };
        first = false;
        if written.is_err() {
            // Standard output closed (a pager quit): the rest would go nowhere.
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if args.stats {
        eprintln!(
            "{}",
            commands::check::RunStats::collect(&dns, count, started).line()
        );
    }
    if unanswered {
        ExitCode::from(2)
    } else if errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn config_check(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!("{}: valid", path.display());
            print!("{}", mailauth_exporter::config::describe(&config));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
