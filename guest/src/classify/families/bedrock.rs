//! AWS Bedrock: the exception name comes in `x-amzn-ErrorType` (and `__type`), the body is
//! `{"message": "..."}`. `ThrottlingException` (429) is a rate limit, or a quota for "Too many
//! tokens per day" (shared signals); `ValidationException` (400) is an overflow for "Input is
//! too long", a missing model for "The provided model identifier is invalid", else a bad request;
//! `UnrecognizedClientException` / `ExpiredTokenException` (403) are auth (STS tokens expire and
//! refresh, so never permanent). The rest differ from their status:

use super::{by_code, hit, phrases, Evidence, Hit};
use crate::types::Reason;

pub(super) const MODEL_ACCESS: &[&str] = &["access to the model"];

pub fn refine(ev: &Evidence) -> Option<Hit> {
    const EXCEPTIONS: &[(&str, Reason, &str)] = &[
        // 403 "You don't have access to the model with the specified model ID.": model access
        // is granted per model, so another model or provider may work.
        ("accessdeniedexception", Reason::ModelNotFound, "bedrock.access-denied"),
        ("resourcenotfoundexception", Reason::ModelNotFound, "bedrock.resource-not-found"),
        // 429 "Model is not ready for inference": capacity, not the account's limit.
        ("modelnotreadyexception", Reason::Overloaded, "bedrock.model-not-ready"),
        ("serviceunavailableexception", Reason::Overloaded, "bedrock.service-unavailable"),
        ("modeltimeoutexception", Reason::Timeout, "bedrock.model-timeout"),
        // 424: the model failed on this request.
        ("modelerrorexception", Reason::ServerError, "bedrock.model-error"),
    ];
    let access_to_account = ev.code(&["accessdeniedexception"]) && !ev.has(phrases!(MODEL_ACCESS));
    if access_to_account {
        return hit(Reason::Auth, "bedrock.access-denied-account");
    }
    by_code(ev, EXCEPTIONS)
}
