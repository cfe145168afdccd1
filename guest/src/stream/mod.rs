//! Streamed answers: framing (`sse`), what each event means per format (`judge`), and what a
//! committed stream does on a failure (`resume`). The driven call (`crate::drive`) uses them.

pub mod judge;
pub mod resume;
pub mod sse;

/// One event is bounded: past this it is dropped (after commit) or a failure (before).
pub const MAX_EVENT: usize = 1 << 20;
/// What is held back before commit is bounded the same way.
pub const MAX_HELD: usize = 1 << 20;
/// The text a resume prefills is bounded; past it the answer is not resumed.
pub const MAX_RESUME_TEXT: usize = 256 * 1024;
