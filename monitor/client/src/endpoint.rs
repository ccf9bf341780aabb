//! Where a daemon listens.

use std::path::PathBuf;

use htsr_api::{Error, Result};

/// A daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The Unix socket beside a store.
    Unix(PathBuf),
    /// `http://HOST:PORT`: a daemon started with `--serve`, or a local end of an SSH tunnel.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Endpoint {
    /// The socket of the daemon serving the store at `store`.
    pub fn for_store(store: &std::path::Path) -> Endpoint {
        Endpoint::Unix(htsr_api::local::socket_path(store))
    }

    /// `http://HOST:PORT[/]`, `HOST:PORT` is not accepted: a path could look like one.
    pub fn parse_url(url: &str) -> Result<Endpoint> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| Error::invalid(format!("{url}: expected http://HOST:PORT")))?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') {
            return Err(Error::invalid(format!(
                "{url}: expected http://HOST:PORT with nothing after the port"
            )));
        }
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            Error::invalid(format!("{url}: the port is missing (http://HOST:PORT)"))
        })?;
        let port = port
            .parse::<u16>()
            .map_err(|_| Error::invalid(format!("{url}: {port:?} is not a port number")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(Error::invalid(format!("{url}: the host is missing")));
        }
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// Whether `s` names a daemon by URL rather than a directory.
    pub fn is_url(s: &str) -> bool {
        s.starts_with("http://") || s.starts_with("https://")
    }

    /// The value of the Host header.
    pub(crate) fn host_header(&self) -> String {
        match self {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp { .. } => write!(f, "http://{}", self.host_header()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_back() {
        for (url, host, port) in [
            ("http://127.0.0.1:7641", "127.0.0.1", 7641),
            ("http://localhost:9/", "localhost", 9),
            ("http://[::1]:7641", "::1", 7641),
        ] {
            let e = Endpoint::parse_url(url).unwrap();
            assert_eq!(
                e,
                Endpoint::Tcp {
                    host: host.into(),
                    port
                }
            );
            assert_eq!(Endpoint::parse_url(&e.to_string()).unwrap(), e);
        }
        for bad in [
            "127.0.0.1:7641",
            "http://host",
            "http://host:port",
            "http://:80",
            "http://h:1/x",
        ] {
            assert!(Endpoint::parse_url(bad).is_err(), "{bad}");
        }
    }
}
