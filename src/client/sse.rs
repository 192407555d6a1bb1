//! A minimal server-sent-events decoder: bytes in, `data:` payloads out.
//!
//! Only what `/v1/events` needs: `data:` lines (joined with `\n` when an event has
//! several), a blank line ending the event, comments (`:`) and other fields ignored, and
//! `\n`, `\r\n` or `\r` line ends. Chunks may split lines anywhere, even inside a UTF-8
//! character, so the decoder buffers bytes, not strings.

/// Largest event we accept; a peer that streams more without a blank line is broken.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Incremental decoder state.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    skip_lf: bool,
}

/// The stream broke the rules we rely on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// An event grew beyond [`MAX_EVENT_BYTES`].
    #[error("event stream sent an event larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

impl SseDecoder {
    /// Feeds a chunk and returns the payloads of the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, SseError> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.skip_lf = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, &mut out);
                }
                _ => {
                    self.buf.push(b);
                    let pending = self.data.as_ref().map_or(0, String::len);
                    if self.buf.len() + pending > MAX_EVENT_BYTES {
                        return Err(SseError::TooLarge);
                    }
                }
            }
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(data);
            }
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        // "", "event", "id", "retry" and unknown fields: nothing we need.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_across_chunks() {
        let mut d = SseDecoder::default();
        let mut got = Vec::new();
        let stream = b": hello\n\nevent: x\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata:two\n\n";
        for chunk in stream.chunks(3) {
            got.extend(d.feed(chunk).unwrap());
        }
        assert_eq!(got, vec!["{\"a\":\n1}".to_string(), "two".to_string()]);
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::default();
        let big = vec![b'x'; MAX_EVENT_BYTES + 10];
        assert!(d.feed(b"data: ").is_ok());
        assert!(matches!(d.feed(&big), Err(SseError::TooLarge)));
    }
}
