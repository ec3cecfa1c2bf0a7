//! What the load generator talks to: `http://IP:PORT/path` (HTTP/1.1) or `tcp://IP:PORT`
//! (a line out, a line back), with `{port}` filled in, and the request rendered once
//! into bytes that every send reuses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// How requests and answers are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, keep-alive, one request in flight per connection.
    Http,
    /// One line out (ending in `\n`), one line back.
    Line,
}

/// A service to load, on an IP address (the generator resolves no names: `localhost`
/// is read as 127.0.0.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// Request path (HTTP), from its first `/`; "/" when the URL has none.
    pub path: String,
}

/// A target that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target `{text}`: {why} (write http://127.0.0.1:PORT/path or tcp://127.0.0.1:PORT)")]
pub struct TargetError {
    pub text: String,
    pub why: String,
}

impl Target {
    /// Read `text` with `{port}` replaced by `port`.
    pub fn with_port(text: &str, port: u16) -> Result<Target, TargetError> {
        text.replace("{port}", &port.to_string()).parse()
    }

    /// The bytes of one request: an HTTP/1.1 GET, or a POST when there is a body, with
    /// `headers` ("Name: value") added; for a line target, the body (default `ping`) and
    /// a `\n`.
    pub fn render(&self, body: Option<&[u8]>, headers: &[String]) -> Result<Vec<u8>, TargetError> {
        match self.protocol {
            Protocol::Http => {
                let mut extra = String::new();
                for h in headers {
                    let ok = h.split_once(':').is_some_and(|(name, _)| {
                        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
                    }) && !h.contains(['\r', '\n']);
                    if !ok {
                        return Err(TargetError {
                            text: self.to_string(),
                            why: format!("header `{h}` is not `Name: value` on one line"),
                        });
                    }
                    extra.push_str(h);
                    extra.push_str("\r\n");
                }
                let mut r = match body {
                    None => format!(
                        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: throttlebench\r\n{extra}\r\n",
                        self.path, self.addr
                    ),
                    Some(b) => format!(
                        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: throttlebench\r\n{extra}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                        self.path,
                        self.addr,
                        b.len()
                    ),
                }
                .into_bytes();
                r.extend_from_slice(body.unwrap_or_default());
                Ok(r)
            }
            Protocol::Line => {
                let line = body.unwrap_or(b"ping");
                if line.contains(&b'\n') {
                    return Err(TargetError {
                        text: self.to_string(),
                        why: "the line to send holds a line break".into(),
                    });
                }
                let mut r = line.to_vec();
                r.push(b'\n');
                Ok(r)
            }
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(text: &str) -> Result<Target, TargetError> {
        let err = |why: &str| TargetError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (protocol, rest) = if let Some(r) = text.strip_prefix("http://") {
            (Protocol::Http, r)
        } else if let Some(r) = text.strip_prefix("tcp://") {
            (Protocol::Line, r)
        } else {
            return Err(err("the scheme must be http:// or tcp://"));
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if protocol == Protocol::Line && path != "/" {
            return Err(err("a tcp:// target has no path"));
        }
        if path.contains(char::is_whitespace) {
            return Err(err("the path holds a blank"));
        }
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| err("the port is missing"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| err(&format!("`{port}` is not a port number")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .map_err(|_| err(&format!("`{host}` is not an IP address")))?
        };
        Ok(Target {
            protocol,
            addr: SocketAddr::new(ip, port),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::Http => write!(f, "http://{}{}", self.addr, self.path),
            Protocol::Line => write!(f, "tcp://{}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_and_tcp_targets() {
        let t = Target::with_port("http://127.0.0.1:{port}/a/b?x=1", 8080).unwrap();
        assert_eq!(t.protocol, Protocol::Http);
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path, "/a/b?x=1");
        assert_eq!(t.to_string(), "http://127.0.0.1:8080/a/b?x=1");
        let t: Target = "http://localhost:80".parse().unwrap();
        assert_eq!((t.path.as_str(), t.addr.port()), ("/", 80));
        let t: Target = "tcp://[::1]:9000".parse().unwrap();
        assert_eq!((t.protocol, t.addr.port()), (Protocol::Line, 9000));
    }

    #[test]
    fn bad_targets_say_why() {
        for (text, why) in [
            ("ftp://127.0.0.1:1/", "scheme"),
            ("http://127.0.0.1/", "port is missing"),
            ("http://127.0.0.1:{port}/", "not a port"),
            ("http://example.org:80/", "not an IP"),
            ("tcp://127.0.0.1:5/x", "no path"),
        ] {
            let e = text.parse::<Target>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(text), "{e}");
        }
    }

    #[test]
    fn headers_are_added_and_bad_ones_refused() {
        let t: Target = "http://127.0.0.1:8080/".parse().unwrap();
        let gz = vec!["Accept-Encoding: gzip".to_string()];
        let get = String::from_utf8(t.render(None, &gz).unwrap()).unwrap();
        assert!(
            get.ends_with("User-Agent: throttlebench\r\nAccept-Encoding: gzip\r\n\r\n"),
            "{get}"
        );
        for bad in ["no colon", ": empty name", "A: b\r\nInjected: 1"] {
            let e = t.render(None, &[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains("Name: value"), "{e}");
        }
    }

    #[test]
    fn renders_get_post_and_lines() {
        let t: Target = "http://127.0.0.1:8080/x".parse().unwrap();
        let get = String::from_utf8(t.render(None, &[]).unwrap()).unwrap();
        assert!(get.starts_with("GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(get.ends_with("\r\n\r\n"));
        let post = String::from_utf8(t.render(Some(b"abc"), &[]).unwrap()).unwrap();
        assert!(post.starts_with("POST /x HTTP/1.1\r\n"));
        assert!(post.contains("Content-Length: 3\r\n") && post.ends_with("\r\n\r\nabc"));
        let t: Target = "tcp://127.0.0.1:1".parse().unwrap();
        assert_eq!(t.render(None, &[]).unwrap(), b"ping\n");
        assert_eq!(t.render(Some(b"hi"), &[]).unwrap(), b"hi\n");
        assert!(t.render(Some(b"a\nb"), &[]).is_err());
    }
}
