//! The retry budget per provider, after gRPC's retry throttling: a bucket of tokens that every
//! provider-side failure drains by one and every success refills by a fraction; same-route
//! retries are allowed only while the bucket is above its threshold. Under a provider-wide outage
//! retries stop adding load after a few failures, and come back as successes return.
//! Kept in thousandths of a token so the state is whole numbers.

use std::collections::BTreeMap;

use crate::config::BudgetConfig;
use crate::types::Decimal;

const MILLI: f64 = 1000.0;

#[derive(Debug, Clone, Default)]
pub struct Budgets {
    /// Provider -> milli-tokens; a provider not listed has a full bucket.
    pub tokens: BTreeMap<String, u32>,
}

impl Budgets {
    fn full(cfg: &BudgetConfig) -> u32 {
        (cfg.max_tokens * MILLI) as u32
    }

    pub fn tokens(&self, provider: &str, cfg: &BudgetConfig) -> u32 {
        self.tokens.get(provider).copied().unwrap_or_else(|| Budgets::full(cfg))
    }

    pub fn allows_retry(&self, provider: &str, cfg: &BudgetConfig) -> bool {
        self.tokens(provider, cfg) as f64 > cfg.threshold * MILLI
    }

    pub fn record_failure(&mut self, provider: &str, cfg: &BudgetConfig) {
        let t = self.tokens(provider, cfg).saturating_sub(MILLI as u32);
        self.set(provider, t);
    }

    pub fn record_success(&mut self, provider: &str, cfg: &BudgetConfig) {
        let t = (self.tokens(provider, cfg) + (cfg.per_success * MILLI) as u32).min(Budgets::full(cfg));
        if t == Budgets::full(cfg) {
            self.tokens.remove(provider);
        } else {
            self.set(provider, t);
        }
    }

    /// The provider's key is copied only the first time: this runs on every failure.
    fn set(&mut self, provider: &str, t: u32) {
        match self.tokens.get_mut(provider) {
            Some(tokens) => *tokens = t,
            None => {
                self.tokens.insert(provider.to_string(), t);
            }
        }
    }

    /// `4.0 of 10 tokens left, retries need more than 5.0`
    pub fn describe(&self, provider: &str, cfg: &BudgetConfig) -> String {
        let left = self.tokens(provider, cfg) as f64 / MILLI;
        [
            tenths(left, false).as_str(),
            " of ",
            &tenths(cfg.max_tokens, true),
            " tokens left, retries need more than ",
            &tenths(cfg.threshold, false),
        ]
        .concat()
    }
}

/// `x` as `{:.1}` prints it, or as `{}` does when `as_display`: float formatting is slow in wasm,
/// so a number that is a whole count of tenths (the nearest double to one, as budgets are) is
/// written from integers, and any other goes through `format!`.
fn tenths(x: f64, as_display: bool) -> String {
    let n = (x * 10.0).round();
    // Where doubles are far finer than a tenth, the nearest double to n/10 prints as n/10.
    if x.is_sign_positive() && n < 1e12 && n / 10.0 == x {
        let n = n as u64;
        let whole = Decimal::of(n / 10);
        return match n % 10 {
            0 if as_display => whole.as_ref().to_string(),
            tenth => [whole.as_ref(), ".", Decimal::of(tenth).as_ref()].concat(),
        };
    }
    if as_display {
        format!("{x}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_drain_to_the_threshold_and_successes_refill() {
        let cfg = BudgetConfig::default();
        let mut b = Budgets::default();
        let mut allowed = 0;
        for _ in 0..20 {
            if b.allows_retry("p", &cfg) {
                allowed += 1;
            }
            b.record_failure("p", &cfg);
        }
        assert_eq!(allowed, 5, "10 tokens, threshold 5: five failures' worth of retries");
        assert_eq!(b.tokens("p", &cfg), 0);
        for _ in 0..51 {
            b.record_success("p", &cfg);
        }
        assert!(b.allows_retry("p", &cfg), "{}", b.describe("p", &cfg));
        for _ in 0..100 {
            b.record_success("p", &cfg);
        }
        assert!(b.tokens.is_empty(), "a full bucket is not stored");
    }

    #[test]
    fn tenths_read_as_format_writes_them() {
        let odd = [0.0, -0.0, 0.05, 0.25, 4.05, 2.675, 1.0 / 3.0, -1.5, 1e300, f64::MAX, 6e14 + 0.1, 99_999_999_999.9, 5e-324];
        let milli = (0..20_000u32).map(|t| t as f64 / MILLI);
        for x in odd.into_iter().chain(milli).chain((0..2_000).map(|n| n as f64 / 10.0)) {
            assert_eq!(tenths(x, false), format!("{x:.1}"), "{x:e}");
            assert_eq!(tenths(x, true), format!("{x}"), "{x:e}");
        }
        let cfg = BudgetConfig::default();
        let b = Budgets { tokens: [("p".to_string(), 4_000)].into() };
        assert_eq!(b.describe("p", &cfg), "4.0 of 10 tokens left, retries need more than 5.0");
    }
}
