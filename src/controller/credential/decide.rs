//! Decide: what to do about a credential, purely from an observation. A generated credential
//! whose write failed is stored (or held) first; otherwise the planner decides.

use chrono::{DateTime, Utc};

use super::gather::Observation;
use super::pending::Pending;
use crate::api::SpecError;
use crate::controller::Context;
use crate::planner::{self, BlockReason, Plan, Policy, SecretState, WaitReason};
use crate::secret;

/// What to do, decided purely from an observation.
#[derive(Debug)]
pub(super) enum Decision {
    SpecInvalid(SpecError),
    /// Write a credential generated earlier whose write failed; never generate again for it.
    StorePending(Box<Pending>),
    /// Wait out the short backoff before writing that credential again.
    HoldPending {
        until: DateTime<Utc>,
        trigger: planner::IssueReason,
    },
    Plan(Plan, Policy),
}

impl Decision {
    /// The decision in words, for the debug log.
    pub(super) fn describe(&self) -> String {
        let at = |until: Option<DateTime<Utc>>| {
            until.map_or_else(|| "nothing scheduled".to_owned(), secret::rfc3339)
        };
        match self {
            Self::SpecInvalid(error) => format!("report the invalid spec ({error})"),
            Self::StorePending(pending) => format!(
                "store the generated revision {} ({})",
                pending.record.revision,
                pending.trigger.as_str()
            ),
            Self::HoldPending { until, trigger } => format!(
                "hold the generated credential ({}) until {}",
                trigger.as_str(),
                at(Some(*until))
            ),
            Self::Plan(Plan::Issue(trigger), _) => format!("issue ({})", trigger.as_str()),
            Self::Plan(Plan::Wait { until, why }, _) => {
                let why = match why {
                    WaitReason::Scheduled => "scheduled".to_owned(),
                    WaitReason::Backoff(trigger) => format!("backoff of {}", trigger.as_str()),
                    WaitReason::Throttled(trigger) => format!("{} throttled", trigger.as_str()),
                };
                format!("wait until {} ({why})", at(*until))
            }
            Self::Plan(Plan::Blocked(reason), _) => format!(
                "blocked ({})",
                match reason {
                    BlockReason::Suspended => "suspended",
                    BlockReason::SecretNotOwned => "Secret not owned",
                    BlockReason::SyncClientInUse => "sync client in use",
                }
            ),
            Self::Plan(Plan::Rewrite(reason), _) => format!("write again ({})", reason.as_str()),
            Self::Plan(Plan::Verify, _) => "probe the stored token".to_owned(),
            Self::Plan(Plan::Preflight, _) => "preflight".to_owned(),
            Self::Plan(Plan::Deliver, _) => "deliver the stored token".to_owned(),
        }
    }

    /// Issues, and holds of an issue, are decided on a fresh read: the cache may miss the issue
    /// this operator recorded a moment ago (and report a served request as due).
    pub(super) fn needs_fresh_read(&self) -> bool {
        matches!(
            self,
            Self::Plan(
                Plan::Issue(_)
                    | Plan::Wait {
                        why: WaitReason::Throttled(_),
                        ..
                    },
                _
            ) | Self::StorePending(_)
        )
    }
}

pub(super) fn decide(ctx: &Context, observation: &Observation) -> Decision {
    if let Some(pending) = &observation.pending
        && !pending_is_superseded(observation, pending)
        && observation.state != SecretState::NotOwned
    {
        if pending.next_attempt > observation.now {
            return Decision::HoldPending {
                until: pending.next_attempt,
                trigger: pending.trigger,
            };
        }
        return Decision::StorePending(Box::new(pending.clone()));
    }
    match &observation.policy {
        Ok(policy) => Decision::Plan(
            planner::plan(&observation.plan_input(policy, ctx.min_issue_interval)),
            policy.clone(),
        ),
        Err(error) => Decision::SpecInvalid(error.clone()),
    }
}

/// The Secret already holds this credential (its write landed after all) or a newer one.
pub(super) fn pending_is_superseded(observation: &Observation, pending: &Pending) -> bool {
    matches!(&observation.state, SecretState::Owned(record) if record.revision >= pending.record.revision)
}
