//! Reading answers: an incremental HTTP/1.1 response parser (status line, headers,
//! a `Content-Length` or chunked body, or a body that ends when the server closes) and
//! the line protocol's answer, both fed the bytes of a connection's buffer as they come.
//!
//! Why a hand-written client and not a crate: the generator needs one request in flight
//! per connection that it owns, sends at a time it chooses, and timestamps itself, inside
//! its own poll loop, with nothing allocated per request. The Rust HTTP clients either
//! need an async runtime (hyper, reqwest) or pool connections out of sight and allocate
//! a response per request (ureq, attohttpc): what the issue asks to avoid is exactly
//! what they hide. The part a client needs here is a response parser of ~200 lines,
//! tested below; the request is rendered once (`target.rs`). `throttlebench bench
//! load` measures the whole client against wrk.
//!
//! The body is counted and dropped, never stored: only the head must fit in the buffer.

/// An answer that is not HTTP/1.x (or not a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadResponse(pub &'static str);

/// What feeding bytes gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The answer is not complete; feed more bytes.
    NeedMore,
    /// A whole answer: its status (0 for a line), and whether the server closes after it.
    Done { status: u16, close: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    /// No length given: the body runs until the server closes.
    UntilClose,
    /// One line answer (the line protocol).
    Line,
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// The parser of one answer; `reset` before each request.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    line: bool,
    state: State,
    status: u16,
    close: bool,
}

impl ResponseParser {
    /// A parser for HTTP answers, or (`line`) for one-line answers.
    pub fn new(line: bool) -> ResponseParser {
        let mut p = ResponseParser {
            line,
            state: State::Head,
            status: 0,
            close: false,
        };
        p.reset();
        p
    }

    /// Ready for the next answer.
    pub fn reset(&mut self) {
        self.state = if self.line { State::Line } else { State::Head };
        self.status = 0;
        self.close = false;
    }

    /// The server closed the connection: does that end the answer (a body without a
    /// length), and with which status?
    pub fn on_close(&self) -> Option<u16> {
        (self.state == State::UntilClose).then_some(self.status)
    }

    /// Consume what can be consumed of `data` (the unread bytes, in order). Returns how
    /// many bytes were used and whether the answer is complete; bytes not used (a head
    /// or line not yet complete) must be fed again with more after them.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Step), BadResponse> {
        let mut at = 0;
        loop {
            let rest = &data[at..];
            match self.state {
                State::Line => {
                    return match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => Ok((
                            at + i + 1,
                            Step::Done {
                                status: 0,
                                close: false,
                            },
                        )),
                        None => Ok((at, Step::NeedMore)),
                    };
                }
                State::Head => {
                    let Some(end) = find(rest, b"\r\n\r\n") else {
                        return Ok((at, Step::NeedMore));
                    };
                    self.head(&rest[..end])?;
                    at += end + 4;
                }
                State::Body(left) => {
                    let n = left.min(rest.len() as u64);
                    at += n as usize;
                    if n < left {
                        self.state = State::Body(left - n);
                        return Ok((at, Step::NeedMore));
                    }
                    return Ok((at, self.done()));
                }
                State::UntilClose => return Ok((data.len(), Step::NeedMore)),
                State::ChunkSize => {
                    let Some(end) = line_end(rest)? else {
                        return Ok((at, Step::NeedMore));
                    };
                    let text = &rest[..end];
                    let hex = text.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                        .ok_or(BadResponse("a chunk size that is not hexadecimal"))?;
                    at += end + 2;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    let n = left.min(rest.len() as u64);
                    at += n as usize;
                    if n < left {
                        self.state = State::ChunkData(left - n);
                        return Ok((at, Step::NeedMore));
                    }
                    self.state = State::ChunkEnd;
                }
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok((at, Step::NeedMore));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(BadResponse("a chunk not followed by CRLF"));
                    }
                    at += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(end) = line_end(rest)? else {
                        return Ok((at, Step::NeedMore));
                    };
                    at += end + 2;
                    if end == 0 {
                        return Ok((at, self.done()));
                    }
                }
            }
        }
    }

    fn done(&self) -> Step {
        Step::Done {
            status: self.status,
            close: self.close,
        }
    }

    /// Read a head (without its blank line) and choose how the body is framed.
    fn head(&mut self, head: &[u8]) -> Result<(), BadResponse> {
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().unwrap_or_default();
        let version = status_line
            .get(..8)
            .ok_or(BadResponse("a short status line"))?;
        self.close = match version {
            b"HTTP/1.1" => false,
            b"HTTP/1.0" => true,
            _ => return Err(BadResponse("not an HTTP/1.x status line")),
        };
        self.status = status_line
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or(BadResponse("no 3-digit status code"))?;
        let (mut length, mut chunked) = (None, false);
        for line in lines {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(BadResponse("a header line without a colon"))?;
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or(BadResponse("a Content-Length that is not a number"))?,
                );
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                if value.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if value.eq_ignore_ascii_case(b"keep-alive") {
                    self.close = false;
                }
            }
        }
        self.state = match self.status {
            // An interim answer (100 Continue): the real one follows.
            100..=199 => State::Head,
            // No body, whatever the headers say (RFC 9112, 6.3).
            204 | 304 => State::Body(0),
            _ if chunked => State::ChunkSize,
            _ => match length {
                Some(n) => State::Body(n),
                None => {
                    self.close = true;
                    State::UntilClose
                }
            },
        };
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the CRLF-ended line at the front of `rest` ends (before its CRLF), if it is all
/// there.
fn line_end(rest: &[u8]) -> Result<Option<usize>, BadResponse> {
    match find(rest, b"\r\n") {
        Some(i) => Ok(Some(i)),
        None if rest.len() > MAX_LINE => Err(BadResponse("a chunk line that never ends")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `parts` one after the other, as reads would bring them, keeping unused bytes.
    fn feed_all(p: &mut ResponseParser, parts: &[&[u8]]) -> Result<(Step, usize), BadResponse> {
        let mut buf = Vec::new();
        let mut step = Step::NeedMore;
        for part in parts {
            buf.extend_from_slice(part);
            let (used, s) = p.feed(&buf)?;
            buf.drain(..used);
            step = s;
            if s != Step::NeedMore {
                break;
            }
        }
        Ok((step, buf.len()))
    }

    fn done(status: u16, close: bool) -> Step {
        Step::Done { status, close }
    }

    #[test]
    fn content_length_bodies_in_pieces() {
        let mut p = ResponseParser::new(false);
        let r = feed_all(
            &mut p,
            &[
                b"HTTP/1.1 200 OK\r\nContent-",
                b"Length: 5\r\n\r\nab",
                b"c",
                b"de",
            ],
        );
        assert_eq!(r, Ok((done(200, false), 0)));
        p.reset();
        let r = feed_all(
            &mut p,
            &[b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nConnection: close\r\n\r\n"],
        );
        assert_eq!(r, Ok((done(503, true), 0)));
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let mut p = ResponseParser::new(false);
        let r = feed_all(
            &mut p,
            &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                b"4;x=y\r\nabcd\r\n1",
                b"0\r\n0123456789abcdef\r",
                b"\n0\r\nX-Trailer: 1\r\n\r\n",
            ],
        );
        assert_eq!(r, Ok((done(200, false), 0)));
        let mut p = ResponseParser::new(false);
        let r = feed_all(
            &mut p,
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        );
        assert!(r.is_err());
    }

    #[test]
    fn interim_and_bodiless_answers() {
        let mut p = ResponseParser::new(false);
        let r = feed_all(
            &mut p,
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"],
        );
        assert_eq!(r, Ok((done(204, false), 0)));
    }

    #[test]
    fn a_body_without_length_ends_at_close() {
        let mut p = ResponseParser::new(false);
        let r = feed_all(&mut p, &[b"HTTP/1.0 200 OK\r\n\r\nsome", b" body"]);
        assert_eq!(r, Ok((Step::NeedMore, 0)));
        assert_eq!(p.on_close(), Some(200));
        let mut p = ResponseParser::new(false);
        feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"]).unwrap();
        assert_eq!(p.on_close(), None);
    }

    #[test]
    fn http10_closes_unless_kept_alive() {
        let mut p = ResponseParser::new(false);
        let r = feed_all(&mut p, &[b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"]);
        assert_eq!(r, Ok((done(200, true), 0)));
        p.reset();
        let r = feed_all(
            &mut p,
            &[b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"],
        );
        assert_eq!(r, Ok((done(200, false), 0)));
    }

    #[test]
    fn leftover_bytes_are_not_used() {
        let mut p = ResponseParser::new(false);
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
        assert_eq!(p.feed(data), Ok((data.len() - 5, done(200, false))));
    }

    #[test]
    fn garbage_is_a_bad_response() {
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        ] {
            assert!(ResponseParser::new(false).feed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines_end_at_newline() {
        let mut p = ResponseParser::new(true);
        assert_eq!(p.feed(b"pi"), Ok((0, Step::NeedMore)));
        assert_eq!(p.feed(b"ping\nx"), Ok((5, done(0, false))));
    }
}
