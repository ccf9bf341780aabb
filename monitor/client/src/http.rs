//! One HTTP/1.1 exchange with a daemon, over its socket or TCP (hyper's client connection; one connection per
//! request, so a daemon that restarted between two requests is simply reached again).

use std::time::Duration;

use htsr_api::wire::VERSION_HEADER;
use htsr_api::{Error, ErrorKind, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::endpoint::Endpoint;

/// How long connecting may take before the daemon is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a daemon may take to start answering a request (its store reads are bounded: this is a hang guard).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

fn connection_error(endpoint: &Endpoint, what: impl std::fmt::Display) -> Error {
    Error::connection(format!("the htsr-watch daemon at {endpoint}: {what}"))
}

async fn handshake<S>(
    endpoint: &Endpoint,
    io: S,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| connection_error(endpoint, e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `method target` and returns the response once its head arrived (the body is read by the caller).
pub(crate) async fn send(
    endpoint: &Endpoint,
    method: &str,
    target: &str,
    token: Option<&str>,
) -> Result<Response<Incoming>> {
    let connect = async {
        match endpoint {
            Endpoint::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                Ok(s) => handshake(endpoint, s).await,
                Err(e) => Err(connection_error(endpoint, e)),
            },
            Endpoint::Tcp { host, port } => {
                match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        handshake(endpoint, s).await
                    }
                    Err(e) => Err(connection_error(endpoint, e)),
                }
            }
        }
    };
    let mut sender = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(result) => result?,
        Err(_) => return Err(connection_error(endpoint, "no answer to connect")),
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header(hyper::header::HOST, endpoint.host_header())
        .header(VERSION_HEADER, htsr_api::API_VERSION);
    if let Some(t) = token {
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::invalid(format!("{target}: {e}")))?;
    match tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(request)).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(connection_error(endpoint, e)),
        Err(_) => Err(connection_error(endpoint, "no answer")),
    }
}

/// The whole body of a successful response, or the daemon's error.
pub(crate) async fn body(endpoint: &Endpoint, response: Response<Incoming>) -> Result<Bytes> {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| connection_error(endpoint, format!("reading the answer: {e}")))?
        .to_bytes();
    if status.is_success() {
        Ok(bytes)
    } else {
        Err(error_of(endpoint, status.as_u16(), &bytes))
    }
}

/// The daemon's error as it sent it, or, for a body that is not one (a proxy, another server on the port), the
/// status and text.
pub(crate) fn error_of(endpoint: &Endpoint, status: u16, body: &[u8]) -> Error {
    serde_json::from_slice::<Error>(body).unwrap_or_else(|_| {
        Error::new(
            if status == 401 {
                ErrorKind::Denied
            } else {
                ErrorKind::Connection
            },
            format!(
                "{endpoint} answered HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            ),
        )
    })
}
