//! The command line, shaped like kubectl's: the same global flags, `-o` formats, `-A`.

use std::path::PathBuf;

use chrono::TimeDelta;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cluster::Target;

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-syncclient",
    bin_name = "kubectl syncclient",
    version,
    about = "Status, deliberate rotation, preflight checks and history of SyncClientCredentials",
    long_about = "Status, deliberate rotation, preflight checks and history of SyncClientCredentials \
                  (sync-client-operator). Every rotation revokes the live sync-client token: \
                  `rotate` asks first; `preflight` checks that a rotation would work without minting."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, as kubectl spells them.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the credentials (default: the context's namespace, then `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

impl GlobalArgs {
    pub fn target(&self) -> Target {
        Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show credentials at a glance: readiness, expiry, next rotation, failures, deliveries,
    /// broker; with a NAME, each of its deliveries in full.
    Status(StatusArgs),
    /// Rotate a credential now (revokes the live token; asks first).
    Rotate(RotateArgs),
    /// Check that a credential would rotate (vCenter login, broker token, sync-client read)
    /// without minting anything.
    Preflight(PreflightArgs),
    /// Show the last issue attempts of a credential, newest first, and where each of its
    /// deliveries stands.
    History(HistoryArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// One credential; all in the namespace when omitted.
    pub name: Option<String>,
    /// Credentials of every namespace.
    #[arg(short = 'A', long, conflicts_with = "name")]
    pub all_namespaces: bool,
    /// Only credentials with these labels (`key=value,...`, as kubectl's -l).
    #[arg(short = 'l', long, conflicts_with = "name")]
    pub selector: Option<String>,
    /// Output format: a table (default), a wider table, or the summary as JSON or YAML.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<StatusFormat>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Wide,
    Json,
    Yaml,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Json,
    Yaml,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    pub name: String,
    /// Wait until the operator has served the request, then print the outcome.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (Go duration: 90s, 2m, 1h).
    #[arg(long, default_value = "2m", value_parser = parse_timeout, requires = "wait")]
    pub timeout: TimeDelta,
    /// Do not ask: confirm that the live token may be revoked (needed without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct PreflightArgs {
    pub name: String,
    /// Wait until the operator has run the check, then print the Preflight condition.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (Go duration: 90s, 2m, 1h).
    #[arg(long, default_value = "2m", value_parser = parse_timeout, requires = "wait")]
    pub timeout: TimeDelta,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub name: String,
    /// The history as JSON or YAML instead of a table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<DataFormat>,
}

/// A positive Go duration (`90s`, `2m`, `1h30m`).
fn parse_timeout(value: &str) -> Result<TimeDelta, String> {
    let delta = sync_client_operator::duration::parse(value).map_err(|e| e.to_string())?;
    if delta <= TimeDelta::zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-syncclient").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let before = parse(&["-n", "team-a", "--context", "c", "status"]).unwrap();
        let after = parse(&["status", "-n", "team-a", "--context", "c"]).unwrap();
        for cli in [before, after] {
            assert_eq!(cli.global.namespace.as_deref(), Some("team-a"));
            assert_eq!(cli.global.context.as_deref(), Some("c"));
        }
    }

    #[test]
    fn a_name_and_all_namespaces_exclude_each_other() {
        assert!(parse(&["status", "okta", "-A"]).is_err());
        assert!(parse(&["status", "-A", "-o", "wide"]).is_ok());
    }

    #[test]
    fn timeouts_are_go_durations_and_need_wait() {
        let Command::Rotate(args) = parse(&["rotate", "x", "--wait", "--timeout", "90s"])
            .unwrap()
            .command
        else {
            panic!("rotate expected");
        };
        assert_eq!(args.timeout, TimeDelta::seconds(90));
        assert!(!args.yes);
        let Command::Rotate(args) = parse(&["rotate", "x"]).unwrap().command else {
            panic!("rotate expected");
        };
        assert_eq!(args.timeout, TimeDelta::minutes(2));
        assert!(parse(&["rotate", "x", "--timeout", "90s"]).is_err());
        assert!(parse(&["preflight", "x", "--wait", "--timeout", "0s"]).is_err());
        assert!(parse(&["preflight", "x", "--wait", "--timeout", "soon"]).is_err());
    }
}
