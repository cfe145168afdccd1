//! Server-sent events framing: bytes as they come off the wire in, whole events out. Events end
//! at a blank line (`\n\n` or `\r\n\r\n`); a read may end anywhere, even inside a line ending.
//! One event is bounded: past `max_event` bytes without its end, the rest of it is skipped and
//! reported, so a 10 MB event or endless garbage costs bounded memory.

use memchr::memchr;

/// One complete event: its bytes as received (blank line included) and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub raw: Vec<u8>,
    /// The `event:` field (empty when absent).
    pub name: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// Only comments (`: keep-alive`) or empty: no field of meaning.
    pub comment_only: bool,
    /// The bytes were not UTF-8.
    pub not_utf8: bool,
}

/// What a push of bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    Event(Event),
    /// An event grew past the bound: its bytes are dropped up to its end.
    Oversized {
        bytes: usize,
    },
}

pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    /// Where the current line starts in `buf`.
    line_start: usize,
    max_event: usize,
    /// Skipping an oversized event until its blank line; counts what was dropped.
    skipping: Option<usize>,
}

impl Framer {
    pub fn new(max_event: usize) -> Framer {
        Framer { buf: Vec::new(), scanned: 0, line_start: 0, max_event, skipping: None }
    }

    /// Bytes held for an event not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Framed>) {
        self.buf.extend_from_slice(bytes);
        while let Some(i) = memchr(b'\n', &self.buf[self.scanned..]) {
            let end = self.scanned + i;
            self.scanned = end + 1;
            let line = &self.buf[self.line_start..end];
            let blank = line.is_empty() || line == b"\r";
            self.line_start = self.scanned;
            if !blank {
                continue;
            }
            let raw: Vec<u8> = self.buf.drain(..self.scanned).collect();
            self.scanned = 0;
            self.line_start = 0;
            match self.skipping.take() {
                Some(dropped) => out.push(Framed::Oversized { bytes: dropped + raw.len() }),
                // A blank line alone (between events) is no event.
                None if raw.iter().all(|b| *b == b'\n' || *b == b'\r') => {}
                None => out.push(Framed::Event(parse(raw))),
            }
        }
        self.scanned = self.buf.len();
        if self.buf.len() > self.max_event {
            // Keep only whether the current line is blank so far, so its end is still seen.
            let cur = &self.buf[self.line_start..];
            let tail = if cur.is_empty() || cur == b"\r" { cur.to_vec() } else { b"x".to_vec() };
            self.skipping = Some(self.skipping.unwrap_or(0) + self.buf.len() - tail.len());
            self.buf = tail;
            self.scanned = self.buf.len();
            self.line_start = 0;
        }
    }
}

fn parse(raw: Vec<u8>) -> Event {
    let (text, not_utf8) = match std::str::from_utf8(&raw) {
        Ok(t) => (t.to_string(), false),
        Err(_) => (String::from_utf8_lossy(&raw).into_owned(), true),
    };
    let mut name = String::new();
    let mut data: Option<String> = None;
    let mut comment_only = true;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        comment_only = false;
        let (field, value) = match line.find(':') {
            Some(i) => (&line[..i], line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..])),
            None => (line, ""),
        };
        match field {
            "event" => name = value.to_string(),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    let data = data.unwrap_or_default();
    Event { name, data, comment_only, not_utf8, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(out: &[Framed]) -> Vec<(String, String)> {
        out.iter()
            .filter_map(|f| match f {
                Framed::Event(e) => Some((e.name.clone(), e.data.clone())),
                Framed::Oversized { .. } => None,
            })
            .collect()
    }

    const STREAM: &[u8] = b": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\ndata: [DONE]\n\n";

    #[test]
    fn an_event_split_at_every_byte_position_frames_the_same() {
        let mut whole = Vec::new();
        Framer::new(1 << 20).push(STREAM, &mut whole);
        let expected = events(&whole);
        assert_eq!(expected.len(), 4);
        assert_eq!(expected[1], ("message_start".to_string(), "{\"a\":1}".to_string()));
        assert_eq!(expected[2].1, "line1\nline2");
        for cut in 0..=STREAM.len() {
            for cut2 in cut..=STREAM.len() {
                let mut f = Framer::new(1 << 20);
                let mut out = Vec::new();
                f.push(&STREAM[..cut], &mut out);
                f.push(&STREAM[cut..cut2], &mut out);
                f.push(&STREAM[cut2..], &mut out);
                assert_eq!(events(&out), expected, "cut at {cut} and {cut2}");
                assert_eq!(f.pending(), 0);
            }
        }
    }

    #[test]
    fn raw_bytes_are_kept_whole_for_passing_on() {
        let mut out = Vec::new();
        Framer::new(1 << 20).push(STREAM, &mut out);
        let joined: Vec<u8> = out
            .iter()
            .flat_map(|f| match f {
                Framed::Event(e) => e.raw.clone(),
                Framed::Oversized { .. } => Vec::new(),
            })
            .collect();
        assert_eq!(joined, STREAM);
    }

    #[test]
    fn an_oversized_event_is_skipped_in_bounded_memory_and_the_next_one_framed() {
        let mut f = Framer::new(1024);
        let mut out = Vec::new();
        f.push(b"data: ", &mut out);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            f.push(&chunk, &mut out);
            assert!(f.pending() <= 1024 + chunk.len());
        }
        f.push(b"\n\ndata: next\n\n", &mut out);
        assert!(matches!(out[0], Framed::Oversized { bytes } if bytes > 10_000_000));
        assert_eq!(events(&out), vec![(String::new(), "next".to_string())]);
    }

    #[test]
    fn garbage_and_comments_are_bounded_and_marked() {
        let mut f = Framer::new(4096);
        let mut out = Vec::new();
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        f.push(&garbage, &mut out);
        assert!(f.pending() <= 4096 + garbage.len());
        f.push(b"\n\n", &mut out);
        for _ in 0..10_000 {
            f.push(b": ping\n\n", &mut out);
        }
        assert!(f.pending() < 16);
        let comments = out.iter().filter(|o| matches!(o, Framed::Event(e) if e.comment_only)).count();
        assert_eq!(comments, 10_000);
    }
}
