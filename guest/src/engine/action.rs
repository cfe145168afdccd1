//! A decision written up as an `Action`: the waited time, the final error and the events that
//! tell the user what happened.

use super::table::Decision;
use super::text::position_name;
use super::{event, Engine};
use crate::env::Env;
use crate::types::*;

impl Engine {
    /// Writes a decision up as an `Action` with its final error and events.
    pub(super) fn finish(
        &mut self,
        d: Decision,
        classified: Classified,
        mut progress: CallProgress,
        from: &Route,
        now: u64,
        env: &mut dyn Env,
    ) -> Action {
        if matches!(d.kind, ActionKind::Retry | ActionKind::Wait) {
            progress.waited_ms = progress.waited_ms.saturating_add(d.delay_ms);
        }
        let mut error = None;
        match d.kind {
            ActionKind::GiveUp => {
                let e = self.final_error(&classified, from, &d, now);
                env.emit(event(EventKind::GaveUp, now, Some(from.clone()), d.rule, e.message.clone()));
                error = Some(e);
            }
            ActionKind::Retry | ActionKind::Wait => {
                env.emit(event(EventKind::RetryScheduled, now, d.route.clone(), d.rule, d.why.clone()));
            }
            // Only a move of the chain position in use is news: after a failed probe of the
            // primary the call falls back to the fallback already in use, and says nothing.
            ActionKind::FallBack => {
                if let Some(to) = d.route.as_ref().filter(|to| to.position != self.active_position) {
                    let chain = self.chain(now);
                    let who = if from.position == 0 {
                        cat!("Primary ", from.provider)
                    } else {
                        cat!("Fallback ", Decimal::of(from.position.into()), " ", from.provider)
                    };
                    let msg = cat!(
                        who,
                        " failed (",
                        classified.message,
                        "); using ",
                        position_name(to.position, chain.len()),
                        " ",
                        to.provider,
                        "/",
                        to.model
                    );
                    env.emit(event(EventKind::Notice, now, Some(to.clone()), d.rule, msg.clone()));
                    env.emit(event(EventKind::FallbackActivated, now, Some(to.clone()), d.rule, msg));
                    self.active_position = to.position;
                }
            }
            ActionKind::Rotate => {}
        }
        Action {
            kind: d.kind,
            route: d.route,
            delay_ms: d.delay_ms,
            fresh_connection: d.fresh_connection,
            classified,
            progress,
            rule: d.rule.to_string(),
            why: d.why,
            error,
        }
    }
}
