//! Typed errors of the transport and protocol layers.

use std::io;
use std::time::Duration;

/// Everything that can go wrong on a ringbolt connection. A connection that returns an error is
/// dead: drop it and reconnect (the layers never panic or hang on a bad peer).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An OS-level I/O failure (connect, send, recv, ring setup).
    #[error("i/o error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// DNS resolution gave no usable address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The peer closed the TCP connection (EOF).
    #[error("connection closed by peer")]
    Closed,
    /// The peer reset the connection.
    #[error("connection reset by peer")]
    Reset,
    /// Nothing was received within the configured read/idle timeout.
    #[error("timed out after {0:?} ({1})")]
    Timeout(Duration, &'static str),
    /// TLS failure (handshake, certificate, record layer).
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// Invalid TLS configuration (bad CA file, bad server name).
    #[error("tls config: {0}")]
    TlsConfig(String),
    /// The WebSocket opening handshake failed.
    #[error("websocket handshake: {0}")]
    WsHandshake(String),
    /// The peer violated RFC 6455 framing.
    #[error("websocket protocol: {0}")]
    WsProtocol(&'static str),
    /// A message exceeded the configured size limit.
    #[error("message of {len_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        /// Size announced or accumulated, bytes.
        len_bytes: u64,
        /// Configured limit, bytes.
        limit_bytes: u64,
    },
    /// The peer completed the WebSocket close handshake (code, if any).
    #[error("websocket closed by peer (code {0:?})")]
    WsClosed(Option<u16>),
    /// HTTP/2 connection error (GOAWAY with this code sent; the connection is unusable).
    #[error(transparent)]
    H2(#[from] crate::h2wire::ConnError),
    /// The server reset the stream (RST_STREAM with this error code).
    #[error("http2 stream reset by the server (code {0})")]
    StreamReset(u32),
    /// The HTTP/2 server sent GOAWAY; in-flight streams above the last id failed. Reconnect.
    #[error("http2 connection went away")]
    GoAway,
    /// The HTTP/2 handshake did not complete.
    #[error("http2 handshake did not complete")]
    H2Handshake,
    /// A malformed HTTP/1.1 response (head or chunk framing).
    #[error("http: {0}")]
    Http(String),
    /// A request could not be built (bad header name/value, bad URI).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A bounded queue is full; the caller must drain it first (the reason names the queue).
    #[error("back-pressure: {0}")]
    Backpressure(&'static str),
    /// The connection id does not refer to an open connection.
    #[error("unknown or closed connection")]
    UnknownConn,
}

impl NetError {
    /// Wraps an `io::Error` with the operation name, mapping resets and EOFs to their variants.
    pub fn io(op: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => NetError::Reset,
            io::ErrorKind::UnexpectedEof => NetError::Closed,
            _ => NetError::Io { op, source },
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = NetError> = std::result::Result<T, E>;
