//! `wss://` / `https://` URL splitting for endpoint configuration (no query rewriting).

use anyhow::{Context, Result, bail};

/// A parsed endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Whether the scheme is TLS (`wss`, `https`).
    pub tls: bool,
    /// Host name or IP literal (brackets removed).
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path[?query]]` for `ws`, `wss`, `http`, `https`.
    pub fn parse(text: &str) -> Result<Url> {
        let (scheme, rest) = text
            .split_once("://")
            .with_context(|| format!("`{text}` is not a URL (scheme://host...)"))?;
        let (tls, default_port) = match scheme {
            "wss" | "https" => (true, 443),
            "ws" | "http" => (false, 80),
            other => bail!("`{text}`: unsupported scheme `{other}`"),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .with_context(|| format!("`{text}`: unterminated IPv6 literal"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().with_context(|| format!("`{text}`: bad port"))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().with_context(|| format!("`{text}`: bad port"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            bail!("`{text}`: empty host");
        }
        Ok(Url {
            tls,
            host,
            port,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u =
            Url::parse("wss://stream.binance.com:9443/stream").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "stream.binance.com", 9443, "/stream")
        );
        let u = Url::parse("wss://ws-live-data.polymarket.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        let u = Url::parse("https://[::1]:8443?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8443, "/?x=1")
        );
        let u = Url::parse("ws://127.0.0.1:80/a/b?c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((u.tls, u.path.as_str()), (false, "/a/b?c"));
        for bad in [
            "stream.binance.com",
            "ftp://x",
            "wss://:1",
            "wss://h:port",
            "wss://[::1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
