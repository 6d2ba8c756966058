//! Command line, shaped like `livekit-server`'s so operators find the same flags and
//! environment variables.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LoadOptions;

#[derive(Debug, Parser)]
#[command(
    name = "corelay",
    version,
    about = "corelay: a thread-per-core WebRTC SFU, a drop-in replacement for the LiveKit server",
    long_about = "corelay serves the LiveKit signal protocol, RoomService API and config format.\n\
                  Start a development server with `corelay --dev` (API key `devkey`, secret `secret`),\n\
                  or a production one with `corelay --config config.yaml`.",
    after_help = "Environment: LIVEKIT_CONFIG (config body), LIVEKIT_KEYS, NODE_IP, UDP_PORT, REDIS_HOST."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// path to LiveKit config file
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// LiveKit config in YAML, typically passed in as an environment var in a container
    #[arg(
        long,
        global = true,
        env = "LIVEKIT_CONFIG",
        hide_env_values = true,
        value_name = "YAML"
    )]
    pub config_body: Option<String>,
    /// api keys (key: secret\n)
    #[arg(long, global = true, env = "LIVEKIT_KEYS", hide_env_values = true)]
    pub keys: Option<String>,
    /// IP address of the current node, used to advertise to clients
    #[arg(long, global = true, env = "NODE_IP", value_name = "IP")]
    pub node_ip: Option<String>,
    /// UDP port(s) to use for WebRTC traffic, a port or a range like 7882-7892
    #[arg(long, global = true, env = "UDP_PORT", value_name = "PORT")]
    pub udp_port: Option<String>,
    /// ICE/TCP port, overriding `rtc.tcp_port` (0 picks a free port per shard)
    #[arg(long, global = true, value_name = "PORT")]
    pub tcp_port: Option<u16>,
    /// host (incl. port) to redis server
    #[arg(long, global = true, env = "REDIS_HOST", value_name = "HOST:PORT")]
    pub redis_host: Option<String>,
    /// IP address to listen on, use flag multiple times to specify multiple addresses
    #[arg(long = "bind", global = true, value_name = "ADDR")]
    pub bind: Vec<String>,
    /// HTTP/WebSocket port, overriding `port` from the config (0 picks a free port)
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// which cores run the control thread and the shards
    #[arg(
        long,
        global = true,
        default_value = "core-affinity.toml",
        value_name = "FILE"
    )]
    pub core_affinity: PathBuf,
    /// on SIGTERM/SIGINT, how long to wait for participants to leave before exiting
    #[arg(long, global = true, default_value_t = 20, value_name = "SECS")]
    pub drain_timeout: u64,
    /// sets log-level to debug, binds to localhost and uses devkey: secret when no keys are
    /// given. Insecure for production
    #[arg(long, global = true)]
    pub dev: bool,
}

impl ServerArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            config_file: self.config.clone(),
            config_body: self.config_body.clone(),
            keys: self.keys.clone(),
            dev: self.dev,
            bind: self.bind.clone(),
            port: self.port,
            node_ip: self.node_ip.clone(),
            udp_port: self.udp_port.clone(),
            tcp_port: self.tcp_port,
            redis_host: self.redis_host.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// generates an API key and secret pair
    GenerateKeys,
    /// print ports that the server is configured to use
    Ports,
    /// create a room join token for development use
    CreateJoinToken {
        /// name of the room to join
        #[arg(long)]
        room: String,
        /// identity of the participant that holds the token
        #[arg(long)]
        identity: String,
        /// how long the token is valid, in seconds
        #[arg(long, default_value_t = 6 * 3600)]
        valid_for: u64,
    },
    /// list the nodes of the cluster (redis.address) with their state and load
    ListNodes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_map_to_load_options() {
        let cli = Cli::try_parse_from([
            "corelay",
            "--dev",
            "--bind",
            "127.0.0.1",
            "--bind",
            "::1",
            "--port",
            "0",
            "--udp-port",
            "7882-7892",
            "--node-ip",
            "10.0.0.1",
            "--redis-host",
            "r:6379",
        ])
        .unwrap();
        let opts = cli.server.load_options();
        assert!(opts.dev);
        assert_eq!(opts.bind, ["127.0.0.1", "::1"]);
        assert_eq!(opts.port, Some(0));
        assert_eq!(opts.udp_port.as_deref(), Some("7882-7892"));
        assert_eq!(opts.node_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(opts.redis_host.as_deref(), Some("r:6379"));
    }

    #[test]
    fn global_flags_follow_subcommands() {
        let cli = Cli::try_parse_from([
            "corelay",
            "create-join-token",
            "--dev",
            "--room",
            "r",
            "--identity",
            "i",
        ])
        .unwrap();
        assert!(cli.server.dev);
        assert!(matches!(cli.command, Some(Command::CreateJoinToken { .. })));
    }
}
