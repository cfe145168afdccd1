//! Alibaba Cloud Model Studio (DashScope), native `{"code", "message", "request_id"}` and
//! OpenAI-compatible `{"error": {...}}` shapes, and its coding plan
//! (https://www.alibabacloud.com/help/en/model-studio/error-code). Its 429s need care: per its
//! rate-limit page "Allocated quota exceeded" and even "You exceeded your current quota, please
//! check your plan and billing details" (`insufficient_quota`) are the tokens-per-minute limit,
//! not billing; a used-up allocation ("usage allocated quota exceeded" on the coding plan, "Free
//! allocated quota exceeded", `AllocationQuota.FreeTierOnly`) is quota-exhausted. Overdue
//! payment (`Arrearage`) is billing; `DataInspectionFailed` is content-filter (shared signal).

use super::{hit, phrases, Evidence, Hit};
use crate::types::Reason;

// "usage allocated quota exceeded" (coding plan) and "free allocated quota exceeded" are usage
// windows, read by the shared signals before this file.
pub(super) const USED_UP: &[&str] = &["free tier of the model has been exhausted"];
pub(super) const TPM: &[&str] = &["quota exceeded", "exceeded your current quota", "increased too quickly"];
pub(super) const OVERDUE: &[&str] = &["overdue"];
pub(super) const MODEL_QUOTED: &[&str] = &["model '"];
pub(super) const NOT_SUPPORTED: &[&str] = &["is not supported"];

pub fn refine(ev: &Evidence) -> Option<Hit> {
    if ev.has(phrases!(USED_UP)) || ev.code(&["allocationquota.freetieronly"]) {
        return hit(Reason::QuotaExhausted, "dashscope.429-quota");
    }
    if ev.status == 429 && (ev.code(&["throttling.allocationquota", "insufficient_quota", "limit_requests"]) || ev.has(phrases!(TPM))) {
        return hit(Reason::RateLimit, "dashscope.429-tpm");
    }
    if ev.code(&["arrearage"]) || ev.has(phrases!(OVERDUE)) {
        return hit(Reason::Billing, "dashscope.arrearage");
    }
    // Coding plan: "model 'xxx' is not supported" for a model outside the plan.
    if ev.status == 400 && ev.has(phrases!(MODEL_QUOTED)) && ev.has(phrases!(NOT_SUPPORTED)) {
        return hit(Reason::ModelNotFound, "dashscope.400-model-not-supported");
    }
    None
}
