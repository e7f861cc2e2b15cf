//! `kubectl-syncclient`: the kubectl plugin of sync-client-operator (`kubectl syncclient ...`).
//!
//! Every rotation revokes the live sync-client token, so the plugin shows state at a glance
//! (`status`, `history`), rotates only on purpose (`rotate` asks first), and checks that a
//! credential would rotate without minting anything (`preflight`). It talks only to the
//! Kubernetes API: rotations and checks are requested through annotations the operator serves.
//!
//! Exit codes: 0 success; 1 error (not found, no permission, operator not installed, not
//! confirmed, ...); 2 bad usage; 3 the operator reported a failure for the request; 4 `--wait`
//! timed out (the request stays set).

mod cli;
mod cluster;
mod confirm;
mod delivery;
mod error;
mod history;
mod humanize;
mod outcome;
mod output;
mod request;
mod status;
mod summary;
mod table;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::PluginError;
use crate::request::Finish;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(Finish::Done) => ExitCode::SUCCESS,
        Ok(Finish::Failed) => ExitCode::from(3),
        Ok(Finish::TimedOut) => ExitCode::from(4),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: &Cli) -> Result<Finish, PluginError> {
    let cluster = cluster::connect(&cli.global.target()).await?;
    match &cli.command {
        Command::Status(args) => status::run(&cluster, args).await.map(|()| Finish::Done),
        Command::History(args) => history::run(&cluster, args).await.map(|()| Finish::Done),
        Command::Rotate(args) => request::rotate(&cluster, args).await,
        Command::Preflight(args) => request::preflight(&cluster, args).await,
    }
}
