//! Runs the identity broker simulator on 127.0.0.1 for demos and manual testing.
//!
//! ```text
//! cargo run --example broker-sim -- --port 8443 --ca-out /tmp/broker-ca.pem --ttl-unit-seconds 1
//! ```

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, new_directory_id};

/// Simulated VMware identity broker + vCenter token API (test support, never for production).
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    port: u16,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// Directory UUID with one token-mode sync client; repeat for more. Default: one random id.
    #[arg(long = "directory", value_name = "UUID")]
    directories: Vec<String>,
    /// Seconds that one minute of `token_ttl` lasts (60 = real time).
    #[arg(long, default_value_t = 60)]
    ttl_unit_seconds: u64,
    /// Write the CA certificate (PEM) to this file (HTTPS only).
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "N")]
    exit_after_seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = BrokerSimConfig {
        tls: !args.http,
        port: args.port,
        ttl_unit: Duration::from_secs(args.ttl_unit_seconds),
        ..BrokerSimConfig::default()
    };
    let sim = BrokerSim::start(config).await?;

    let directories = if args.directories.is_empty() {
        vec![new_directory_id()]
    } else {
        args.directories
    };
    for directory in &directories {
        sim.add_directory_with_defaults(directory);
    }

    if let Some(path) = &args.ca_out {
        let pem = sim
            .ca_pem()
            .ok_or("--ca-out needs HTTPS; drop --http to get a CA")?;
        std::fs::write(path, pem)?;
        println!("ca:          {}", path.display());
    }
    // Printing the password is the point of this demo runner; the simulator never logs it.
    println!("url:         {}", sim.url());
    println!("username:    {}", sim.username());
    println!("password:    {}", sim.password());
    println!("tenant:      {}", sim.tenant());
    for directory in &directories {
        println!("directory:   {directory}");
    }

    match args.exit_after_seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    sim.shutdown().await;
    Ok(())
}
