//! gRPC calls over a bare HTTP/2 stream (the h2 crate), for what the
//! generated clients will not send: a message cut in the middle, a
//! connection dropped mid-message, a deadline the client does not enforce
//! itself.

use bytes::{BufMut, Bytes, BytesMut};
use tonic::Code;

/// One message in gRPC's length-prefixed framing, uncompressed.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(body.len()).expect("message under 4 GiB"));
    out.put_slice(&body);
    out.freeze()
}

/// An HTTP/2 connection to a plaintext gRPC server.
pub struct RawConnection {
    client: h2::client::SendRequest<Bytes>,
    authority: String,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How a raw call ended.
#[derive(Debug, PartialEq)]
pub enum Ending {
    /// The server answered with this gRPC status (from trailers, or from
    /// the headers of a trailers-only reply).
    Status(Code, String),
    /// The stream was reset or the connection closed without a status.
    Reset,
}

impl RawConnection {
    pub async fn open(addr: std::net::SocketAddr) -> RawConnection {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        RawConnection {
            client,
            authority: addr.to_string(),
            driver,
        }
    }

    /// Starts a call to `path` (`/package.Service/Method`) with extra
    /// headers; returns the response future and the request body sender.
    pub async fn start(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).expect("request");
        let client = self.client.clone().ready().await.expect("ready");
        self.client = client;
        self.client
            .send_request(request, false)
            .expect("send request")
    }

    /// Sends `body` as the whole request and ends the stream, then reads
    /// the status, discarding response messages.
    pub async fn call(&mut self, path: &str, headers: &[(&str, &str)], body: Bytes) -> Ending {
        let (response, mut send) = self.start(path, headers).await;
        // A server may answer (and reset the request half) before the body
        // is sent, as for an unknown method: the answer is what counts.
        let _ = send.send_data(body, true);
        ending(response).await
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<(Code, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some((Code::from_i32(code), message))
}

/// Waits for the call's status, reading and discarding its messages.
pub async fn ending(response: h2::client::ResponseFuture) -> Ending {
    let Ok(response) = response.await else {
        return Ending::Reset;
    };
    if let Some((code, message)) = status_of(response.headers()) {
        return Ending::Status(code, message);
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Err(_) => return Ending::Reset,
        }
    }
    match body.trailers().await {
        Ok(Some(trailers)) => status_of(&trailers)
            .map(|(code, message)| Ending::Status(code, message))
            .unwrap_or(Ending::Reset),
        _ => Ending::Reset,
    }
}
