//! Server-sent events, as both providers stream them: decoded incrementally, since a network
//! chunk may end anywhere, even inside a line or a UTF-8 character.

use crate::BrainError;
use futures_util::StreamExt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(len) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let mut line = &self.buf[start..start + len];
            start += len + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.line(&line, &mut out);
        }
        self.buf.drain(..start);
        out
    }

    /// The end of the stream: an event missing its closing blank line still counts.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        if !rest.is_empty() {
            self.line(&String::from_utf8_lossy(&rest), &mut out);
        }
        self.line("", &mut out);
        out.pop()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if !self.data.is_empty() || self.event.is_some() {
                out.push(SseEvent { event: self.event.take(), data: self.data.join("\n") });
                self.data.clear();
            }
            return;
        }
        if line.starts_with(':') {
            return; // a comment, e.g. a keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
    }
}

/// Whether the reader wants more events.
pub(crate) enum Flow {
    More,
    Done,
}

/// Reads a streamed response, handing each event to `on_event`, until it says `Done` or the
/// stream ends. A stream silent for longer than `idle` or broken mid-way is a transient error.
/// Returns whether `on_event` said `Done` (a stream that just ends may have been cut).
pub(crate) async fn read_events(
    provider: &str,
    response: reqwest::Response,
    idle: Duration,
    mut on_event: impl FnMut(SseEvent) -> Result<Flow, BrainError>,
) -> Result<bool, BrainError> {
    let mut decoder = SseDecoder::default();
    let mut stream = response.bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                return Err(BrainError::transient(format!(
                    "{provider}'s stream was silent for {} s",
                    idle.as_secs_f64()
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BrainError::transient(format!("{provider}'s stream broke: {e}"))),
            Ok(Some(Ok(bytes))) => bytes,
        };
        for event in decoder.push(&chunk) {
            if let Flow::Done = on_event(event)? {
                return Ok(true);
            }
        }
    }
    if let Some(event) = decoder.finish()
        && let Flow::Done = on_event(event)?
    {
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &str, piece: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            out.extend(d.push(chunk));
        }
        out.extend(d.finish());
        out
    }

    #[test]
    fn events_survive_any_chunking() {
        let text = ": keep-alive\r\nevent: message_start\r\ndata: {\"a\":\r\ndata: \"é\"}\r\n\r\ndata: [DONE]\n\nevent: ping\n";
        let expected = vec![
            SseEvent { event: Some("message_start".into()), data: "{\"a\":\n\"é\"}".into() },
            SseEvent { event: None, data: "[DONE]".into() },
            SseEvent { event: Some("ping".into()), data: String::new() },
        ];
        for piece in 1..text.len() {
            assert_eq!(decode_in_pieces(text, piece), expected, "in pieces of {piece} bytes");
        }
    }
}
