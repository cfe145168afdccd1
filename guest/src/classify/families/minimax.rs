//! MiniMax (https://platform.minimax.io/docs/api-reference/errorcode): its native API answers
//! HTTP 200 with `base_resp: {status_code, status_msg}`, its Anthropic-compatible endpoint puts
//! the same code in the message ("insufficient balance (1008)"). Balance (1008), sensitive
//! content (1026, 1027) and usage windows (2056) are shared signals; the codes whose words say
//! too little are MiniMax's own:

use super::{by_code, Evidence, Hit};
use crate::types::Reason;

pub fn refine(ev: &Evidence) -> Option<Hit> {
    const CODES: &[(&str, Reason, &str)] = &[
        ("1001", Reason::Timeout, "minimax.1001-timeout"),
        ("1002", Reason::RateLimit, "minimax.1002-rate-limit"),
        ("1041", Reason::RateLimit, "minimax.1041-connections"),
        ("1004", Reason::Auth, "minimax.1004-auth"),
        ("2049", Reason::AuthPermanent, "minimax.2049-invalid-key"),
        ("1039", Reason::ContextOverflow, "minimax.1039-token-limit"),
        ("2064", Reason::Overloaded, "minimax.2064-high-load"),
        ("2013", Reason::BadRequest, "minimax.2013-invalid-params"),
    ];
    by_code(ev, CODES)
}
