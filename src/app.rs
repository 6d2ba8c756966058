//! Start-up: subcommands, logging, listeners, and the control and shard executors.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tracing::{debug, error, info, warn};

use crate::api::server::{serve as serve_http, Surface};
use crate::auth::{self, KeyStore};
use crate::cli::{Cli, Command, ServerArgs};
use crate::config::{self, Config};
use crate::control::quiet::Quiet;
use crate::control::Control;
use crate::lifecycle::{self, Lifecycle};
use crate::room::ice_servers::{ExternalTurn, IceServerConfig, TurnAuth};
use crate::room::{NodeInfo, RoomDefaults, RoomLimits, Rooms};
use crate::session::EnabledCodecs;
use crate::shard::{worker, FromShard, ToShard};
use crate::{clock, ids, net};

/// Room operations queued per shard before the control thread waits.
const SHARD_INBOX: usize = 1024;
const SHARD_OUTBOX: usize = 1024;

pub fn main(cli: Cli) -> Result<()> {
    match cli.command {
        None => serve(&cli.server),
        Some(Command::GenerateKeys) => {
            println!("API Key: {}", ids::guid("API"));
            println!("API Secret: {}", random_secret());
            Ok(())
        }
        Some(Command::Ports) => {
            let config = load_config(&cli.server)?.0;
            print_ports(&config);
            Ok(())
        }
        Some(Command::ListNodes) => {
            let config = load_config(&cli.server)?.0;
            let nodes = crate::cluster::store::list_nodes(&config.redis)?;
            print!(
                "{}",
                crate::cluster::record::table(&nodes, clock::unix_millis())
            );
            Ok(())
        }
        Some(Command::CreateJoinToken {
            room,
            identity,
            valid_for,
        }) => {
            let config = load_config(&cli.server)?.0;
            let keys = KeyStore::new(config.keys.clone());
            let (key, secret) = keys.first().context("no API keys configured")?;
            let claims = auth::join_claims(key, &identity, &room, clock::unix_secs(), valid_for);
            println!("{}", auth::sign(&claims, secret)?);
            Ok(())
        }
    }
}

fn load_config(args: &ServerArgs) -> Result<(Config, Vec<String>)> {
    let loaded = config::load(&args.load_options())?;
    Ok((loaded.config, loaded.warnings))
}

fn serve(args: &ServerArgs) -> Result<()> {
    let drain_timeout = std::time::Duration::from_secs(args.drain_timeout);
    let (config, warnings) = load_config(args)?;
    // Taken before anything listens or joins the cluster: a SIGTERM that arrives while
    // the node starts must drain (and deregister), not kill the process.
    let signals = lifecycle::shutdown_signals()?;
    init_logging(&config);
    for w in &warnings {
        warn!("{w}");
    }
    if std::env::var_os("CORELAY_TEST_PANIC_HOOK").is_some_and(|v| v == "1") {
        warn!("CORELAY_TEST_PANIC_HOOK=1: a data message can make its session panic (tests only)");
        crate::session::enable_test_panic_hook();
    }
    let affinity = config::load_affinity(&args.core_affinity)?;
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let dropped = config::dropped_cores(&affinity, &allowed);
    if !dropped.is_empty() {
        warn!(
            ?dropped,
            ?allowed,
            "core-affinity.toml names CPUs this process may not run on; ignoring them"
        );
    }
    let plan = config::plan_threads(&affinity, &allowed);
    let spread_after = affinity.spread_after();
    let listeners = bind_listeners(&config, config.port, "")?;
    let metrics_listeners = match config.prometheus.port {
        Some(port) => bind_listeners(&config, port, "/metrics")?,
        None => Vec::new(),
    };

    let keys = KeyStore::new(config.keys.clone());
    let defaults = RoomDefaults {
        empty_timeout: config.room.empty_timeout,
        departure_timeout: config.room.departure_timeout,
        max_participants: config.room.max_participants,
    };
    let limits = RoomLimits {
        max_metadata_size: config.limit.max_metadata_size,
        max_room_name_length: config.limit.max_room_name_length,
        max_attributes_size: config.limit.max_attributes_size,
        // LiveKit's "0 or negative: no limit".
        subscription_limit_video: config.limit.subscription_limit_video.max(0) as u32,
        subscription_limit_audio: config.limit.subscription_limit_audio.max(0) as u32,
    };

    let node = NodeInfo {
        node_id: ids::guid(ids::NODE_PREFIX),
        region: config.region.clone(),
    };
    let codecs =
        EnabledCodecs::from_mimes(config.room.enabled_codecs.iter().map(|c| c.mime.as_str()));
    debug!(
        ?codecs,
        "codecs peer connections negotiate (room.enabled_codecs)"
    );
    let mut ice_servers = ice_server_config(&config);
    let turn_stats = std::sync::Arc::new(crate::turn::TurnStats::default());
    ice_servers.embedded = crate::turn::start_from_config(&config, &keys, &turn_stats)?;
    let turn_stats = ice_servers.embedded.is_some().then_some(turn_stats);
    let mut to_shards = Vec::new();
    let mut from_shards = Vec::new();
    let mut handles = Vec::new();
    let mut media_ip = None;
    let mut relays = crate::shard::relay_io::mesh(plan.shard_cores.len()).into_iter();
    for (shard, &core) in plan.shard_cores.iter().enumerate() {
        let relay = relays
            .next()
            .ok_or_else(|| anyhow::anyhow!("no relay ends for shard {shard}"))?;
        let (to_tx, to_rx) = tokio::sync::mpsc::channel::<ToShard>(SHARD_INBOX);
        let (from_tx, from_rx) = tokio::sync::mpsc::channel::<FromShard>(SHARD_OUTBOX);
        to_shards.push(to_tx);
        from_shards.push(from_rx);
        let mut rooms = Rooms::new(defaults, limits, node.clone());
        rooms.set_codecs(codecs);
        rooms.set_ice_servers(ice_servers.clone());
        rooms.set_tcp_fallback(config.rtc.allow_tcp_fallback.unwrap_or(true));
        let udp = bind_udp(&config, shard)?;
        media_ip = media_ip.or(udp.first().map(|(_, a)| a.ip()));
        let tcp = bind_tcp(&config, shard, &udp)?;
        let core = placement(&allowed, core, &format!("shard {shard}"));
        let handle = crate::runtime::spawn(
            &format!("shard-{shard}"),
            core,
            || {},
            move || async move {
                debug!(shard, "shard runtime running");
                worker::run(shard, to_rx, from_tx, rooms, udp, tcp, relay).await;
            },
        )
        .map_err(|e| anyhow::anyhow!("cannot start shard {shard}: {e}"))?;
        handles.push(handle);
    }

    info!(
        shards = plan.shard_cores.len(),
        control_core = plan.control_core,
        shard_cores = ?plan.shard_cores,
        "starting corelay"
    );
    let node_id = node.node_id.clone();
    let api = listeners.first().map(|l| l.local_addr()).transpose()?;
    let me = crate::cluster::record::NodeRecord::this_node(&node, api, media_ip);
    let cluster = crate::cluster::Cluster::start(&config, me)?;
    if cluster.is_some() {
        info!(node = %node_id, region = %config.region, "joining the cluster (redis.address)");
    }
    let webhooks = start_webhooks(&config);
    let listener_fds: Vec<_> = (listeners.iter().chain(&metrics_listeners))
        .map(|l| l.as_raw_fd())
        .collect();
    // The listeners are moved into the control thread and live as long as it does.
    let quiet = Arc::new(Quiet::new(clock::now().mono, &listener_fds));
    let park_quiet = Arc::clone(&quiet);
    let lifecycle = Lifecycle::new();
    let control_lifecycle = lifecycle.clone();
    let control_core = placement(&allowed, plan.control_core, "control");
    let park = move || park_quiet.before_park();
    let control = crate::runtime::spawn("control", control_core, park, move || async move {
        debug!("control thread running");
        let ctx = Control::new(
            config,
            keys,
            to_shards,
            quiet,
            control_lifecycle,
            node_id,
            crate::control::Outside { webhooks, cluster },
        );
        tokio::task::spawn_local(ctx.clone().report_to_cluster());
        ctx.set_turn_stats(turn_stats);
        ctx.set_spread_after(spread_after);
        ctx.start_news();
        tokio::task::spawn_local(ctx.clone().watch_drain());
        for rx in from_shards {
            tokio::task::spawn_local(ctx.clone().pump(rx, || clock::now().mono));
        }
        let mut servers = Vec::new();
        let surfaces = listeners
            .into_iter()
            .map(|l| (l, Surface::Api))
            .chain(metrics_listeners.into_iter().map(|l| (l, Surface::Metrics)));
        for (std_listener, surface) in surfaces {
            match net::stream::TcpListener::from_std(std_listener) {
                Ok(listener) => servers.push(tokio::task::spawn_local(serve_http(
                    listener,
                    ctx.clone(),
                    surface,
                ))),
                Err(e) => error!(error = %e, "cannot serve a listener"),
            }
        }
        for server in servers {
            let _ = server.await;
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot start the control thread: {e}"))?;

    // The runtimes run until the process exits; the main thread waits for a signal
    // and drains. Each is watched instead of joined: a runtime that could not be built
    // or a thread that panicked shows only through its handle, and unseen that would
    // leave a node that listens but never answers.
    for (i, handle) in handles.into_iter().enumerate() {
        watch_executor(format!("shard {i}"), move || match handle.join() {
            Ok(result) => result,
            Err(_) => Err(format!("shard {i} panicked")),
        });
    }
    watch_executor("control".to_string(), move || match control.join() {
        Ok(result) => result,
        Err(_) => Err("the control thread panicked".to_string()),
    });
    lifecycle::wait_for_shutdown(&lifecycle, signals, drain_timeout);
    Ok(())
}

/// A thread that waits for an executor to end and stops the process if it failed.
fn watch_executor(name: String, join: impl FnOnce() -> Result<(), String> + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(format!("watch {name}"))
        .spawn(move || {
            if let Err(e) = join() {
                error!(executor = %name, error = %e, "executor failed; exiting");
                eprintln!("corelay: the {name} executor failed: {e}");
                std::process::exit(1);
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot watch an executor");
    }
}

/// With this set, `rtc.node_ip` gets a wildcard media socket even when it is an
/// address of this host: the 1:1 NAT path, which tests cannot reach otherwise.
const MEDIA_WILDCARD_ENV: &str = "CORELAY_MEDIA_WILDCARD";

/// Binds a shard's media sockets: one per local address on the shard's port, or one
/// socket advertised as `rtc.node_ip` when that is set. When `node_ip` is an address
/// of this host the socket is bound to it; otherwise (1:1 NAT) it is a wildcard
/// socket, which learns each datagram's destination (IP_PKTINFO) and replies from it,
/// since the kernel's own choice of source is often not the address the client used
/// and ICE drops such replies.
fn bind_udp(config: &Config, shard: usize) -> Result<Vec<(UdpSocket, SocketAddr)>> {
    let (first, last) = config.udp_ports();
    let port = net::udp::shard_port(first, last, shard).with_context(|| {
        format!("rtc.udp_port / port range {first}-{last} has no port left for shard {shard}")
    })?;
    let mut bound = Vec::new();
    if let Some(node_ip) = &config.rtc.node_ip {
        let ip: IpAddr = node_ip
            .parse()
            .with_context(|| format!("rtc.node_ip: {node_ip:?} is not an IP address"))?;
        let any = if ip.is_ipv6() {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::from([0, 0, 0, 0])
        };
        let wildcard = || {
            net::udp::bind(any, port)
                .with_context(|| format!("cannot bind UDP port {port} for shard {shard}"))
        };
        // MEDIA_WILDCARD_ENV: the setting tests use to take the 1:1 NAT path on one host.
        let socket = if std::env::var_os(MEDIA_WILDCARD_ENV).is_some() {
            wildcard()?
        } else {
            match net::udp::bind(ip, port) {
                Ok(socket) => socket,
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => wildcard()?,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot bind {ip}:{port} for shard {shard}"))
                }
            }
        };
        let local = socket.local_addr()?;
        bound.push((socket, SocketAddr::new(ip, local.port())));
        return Ok(bound);
    }
    let ips = net::addrs::media_ips(&net::addrs::interface_ips(), &config.rtc.addr_filters());
    for ip in ips {
        match net::udp::bind(ip, port) {
            Ok(socket) => {
                let local = socket.local_addr()?;
                bound.push((socket, local));
            }
            Err(e) => warn!(%ip, port, error = %e, "cannot bind media socket, skipping"),
        }
    }
    if bound.is_empty() {
        bail!("shard {shard}: could not bind any UDP socket on port {port}");
    }
    Ok(bound)
}

/// What clients are told in `ice_servers`: `rtc.turn_servers` and `rtc.stun_servers`.
fn ice_server_config(config: &Config) -> IceServerConfig {
    let turn = config
        .rtc
        .turn_servers
        .iter()
        .map(|s| {
            let auth = if s.secret.is_empty() {
                TurnAuth::Static {
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                }
            } else {
                TurnAuth::Secret {
                    secret: s.secret.clone(),
                    ttl_secs: i64::from(s.ttl),
                }
            };
            ExternalTurn::new(&s.host, s.port, &s.protocol, auth)
        })
        .collect();
    IceServerConfig {
        turn,
        stun: config.rtc.stun_servers.clone(),
        embedded: None,
    }
}

/// The shard's passive ICE/TCP listeners (`rtc.tcp_port + shard`): one beside each UDP
/// socket, on the same local address, advertised with the same IP. None when
/// `rtc.tcp_port` is 0.
fn bind_tcp(
    config: &Config,
    shard: usize,
    udp: &[(UdpSocket, SocketAddr)],
) -> Result<Vec<(std::net::TcpListener, SocketAddr)>> {
    let Some(base) = config.rtc.ice_tcp_port() else {
        return Ok(Vec::new());
    };
    let port = net::tcp::shard_port(base, shard)
        .with_context(|| format!("rtc.tcp_port {base} has no port left for shard {shard}"))?;
    let mut bound = Vec::new();
    for (socket, advertised) in udp {
        let local = socket.local_addr()?.ip();
        let listener = net::tcp::listen(local, port)
            .with_context(|| format!("cannot listen on {local}:{port} (TCP) for shard {shard}"))?;
        let port = listener.local_addr()?.port();
        bound.push((listener, SocketAddr::new(advertised.ip(), port)));
    }
    Ok(bound)
}

/// Starts webhook delivery when `webhook.urls` is set. Config validation made sure the
/// API key exists.
fn start_webhooks(config: &Config) -> Option<crate::webhook::WebhookSender> {
    let api_key = config.webhook.api_key.clone();
    let secret = config.keys.get(&api_key)?.clone();
    crate::webhook::WebhookSender::start(config.webhook.urls.clone(), api_key, secret)
}

/// Pins to CPU `core` when this process may run there; otherwise logs and lets the OS
/// place the thread (a failed pin is not fatal).
fn placement(allowed: &[usize], core: usize, what: &str) -> Option<usize> {
    if allowed.contains(&core) {
        return Some(core);
    }
    warn!(
        what,
        core, "core not available to this process; running unpinned"
    );
    None
}

/// Binds every configured address on the HTTP port. With port 0 the first bind picks a
/// free port and the others reuse it. Addresses that fail are skipped with a warning,
/// as long as one succeeds. Each bound address is printed to stdout so scripts and
/// tests can find the server.
fn bind_listeners(config: &Config, port: u16, path: &str) -> Result<Vec<StdTcpListener>> {
    let addresses: Vec<String> = if config.bind_addresses.is_empty() {
        vec!["0.0.0.0".into()]
    } else {
        config.bind_addresses.clone()
    };
    let wanted = port;
    let mut port = port;
    let mut listeners = Vec::new();
    for address in &addresses {
        let ip: IpAddr = address
            .parse()
            .with_context(|| format!("bind_addresses: {address:?} is not an IP address"))?;
        match StdTcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                let local = l.local_addr()?;
                port = local.port();
                listeners.push(l);
            }
            Err(e) => warn!(%address, error = %e, "cannot listen on this address, skipping"),
        }
    }
    if listeners.is_empty() {
        bail!("could not listen on any of {addresses:?} port {wanted}");
    }
    let mut out = std::io::stdout().lock();
    for l in &listeners {
        let local = l.local_addr()?;
        if path.is_empty() {
            writeln!(out, "corelay listening on http://{local}")?;
        } else {
            writeln!(out, "corelay metrics on http://{local}{path}")?;
        }
        info!(address = %local, "listening");
    }
    out.flush()?;
    Ok(listeners)
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    // The TURN libraries open a span per poll and per datagram, whose fields cost more
    // than relaying the datagram (measured): quiet unless RUST_LOG names them.
    const QUIET: &str = "turn_server_proto=warn,turn_types=warn,stun_proto=warn,stun_types=warn";
    let directives = match std::env::var("RUST_LOG") {
        Ok(env) if env.contains("turn") || env.contains("stun") => env,
        Ok(env) if !env.trim().is_empty() => format!("{env},{QUIET}"),
        _ => format!("corelay={0},{0},{QUIET}", config.logging.level),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| {
        EnvFilter::new(format!("corelay={0},{0},{QUIET}", config.logging.level))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_thread_names(true);
    let result = if config.logging.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("corelay: logging already initialised: {e}");
    }
}

fn print_ports(config: &Config) {
    println!("HTTP/WebSocket:  {} (TCP)", config.port);
    if let Some(p) = config.prometheus.port {
        println!("Prometheus:      {p} (TCP)");
    }
    let (first, last) = config.udp_ports();
    if first == last {
        println!("ICE/UDP:         {first} (UDP)");
    } else {
        println!("ICE/UDP range:   {first}-{last} (UDP)");
    }
    match config.rtc.ice_tcp_port() {
        Some(0) => println!("ICE/TCP:         a free port per shard (TCP)"),
        Some(p) => println!("ICE/TCP:         {p}, plus one per further shard (TCP)"),
        None => {}
    }
    let turn = &config.turn;
    if !turn.enabled {
        return;
    }
    if turn.udp_port != 0 {
        println!("TURN/UDP:        {} (UDP)", turn.udp_port);
    }
    if turn.tls_port != 0 {
        let what = if turn.external_tls {
            "TURN/TCP:        {} (TCP; TLS ends at a load balancer)"
        } else {
            "TURN/TLS:        {} (TCP)"
        };
        println!("{}", what.replace("{}", &turn.tls_port.to_string()));
    }
    if turn.udp_port != 0 || turn.tls_port != 0 {
        let (start, end) = (turn.relay_range_start, turn.relay_range_end);
        println!("TURN relays:     {start}-{end} (UDP)");
    }
}

/// 43 characters from a 62-letter alphabet: about 256 bits, like LiveKit's secrets.
fn random_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..43)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
