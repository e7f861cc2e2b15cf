//! Runs the Microsoft Entra ID simulator on 127.0.0.1 for demos and manual testing: one tenant,
//! one app (client secret and the test-only certificate), one service principal with one
//! provisioning job.
//!
//! ```text
//! cargo run --example entra-sim -- --port 8444 --ca-out /tmp/entra-ca.pem --scim-ca /tmp/broker-ca.pem
//! ```

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sync_client_broker_sim::new_directory_id;
use sync_client_entra_sim::{
    AppRegistration, ClientSecret, EntraSim, EntraSimConfig, Permission, ServicePrincipal,
    test_app_key,
};

/// Simulated Microsoft Entra ID token endpoint and Graph provisioning jobs (test support, never
/// for production).
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8444)]
    port: u16,
    /// Write the simulator's CA certificate (PEM) to this file.
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// A CA (PEM file) to trust when validating credentials against the SCIM endpoint, such as
    /// the broker simulator's `--ca-out`; repeat for more.
    #[arg(long = "scim-ca", value_name = "PATH")]
    scim_cas: Vec<PathBuf>,
    /// Client id of the app. Default: a random GUID.
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret of the app. Default: a random value.
    #[arg(long)]
    client_secret: Option<String>,
    /// Grant Application.ReadWrite.OwnedBy and make the app an owner, instead of granting
    /// Synchronization.ReadWrite.All.
    #[arg(long)]
    owned_by: bool,
    /// Object id of the service principal. Default: a random GUID.
    #[arg(long)]
    service_principal: Option<String>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "N")]
    exit_after_seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut scim_trusted_ca_pems = Vec::new();
    for path in &args.scim_cas {
        scim_trusted_ca_pems.push(std::fs::read_to_string(path)?);
    }
    let config = EntraSimConfig {
        port: args.port,
        scim_trusted_ca_pems,
        ..EntraSimConfig::default()
    };
    let sim = EntraSim::start(config).await?;

    let client_id = args.client_id.unwrap_or_else(new_directory_id);
    let client_secret = args
        .client_secret
        .unwrap_or_else(|| new_directory_id().replace('-', ""));
    sim.register_app(
        AppRegistration::new(&client_id)
            .with_secret(ClientSecret::new(&client_secret))
            .with_certificate_pem(test_app_key().certificate_pem)?,
    );
    let service_principal = args.service_principal.unwrap_or_else(new_directory_id);
    let job = format!("scim.{}", new_directory_id().replace('-', ""));
    let mut principal = ServicePrincipal::new(&service_principal).with_job(&job, "scim");
    if args.owned_by {
        sim.grant(&client_id, Permission::ApplicationReadWriteOwnedBy);
        principal = principal.owned_by(&client_id);
    } else {
        sim.grant(&client_id, Permission::SynchronizationReadWriteAll);
    }
    sim.add_service_principal(principal);

    if let Some(path) = &args.ca_out {
        std::fs::write(path, sim.ca_pem())?;
        println!("ca:                {}", path.display());
    }
    // Printing the client secret is the point of this demo runner; the simulator never logs it.
    println!("url:               {}", sim.url());
    println!("token url:         {}", sim.token_url());
    println!("tenant id:         {}", sim.tenant_id());
    println!("client id:         {client_id}");
    println!("client secret:     {client_secret}");
    println!("service principal: {service_principal}");
    println!("job id:            {job}");

    match args.exit_after_seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    sim.shutdown().await;
    Ok(())
}
