//! TURN over TLS (`turn.tls_port` with `cert_file`/`key_file`) or over plain TCP behind
//! a TLS-terminating load balancer (`external_tls`): the byte stream of one client
//! connection, non-blocking, for the TURN thread. rustls is driven by hand (read_tls /
//! process_new_packets / write_tls), so the thread stays a single poll loop.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// Plaintext a connection may hold for a client that does not read; past it the
/// connection is closed (a TURN stream cannot drop bytes in the middle).
const MAX_PENDING: usize = 1 << 20;
/// The largest frame: a STUN message or ChannelData with 64 KiB of payload.
const MAX_FRAME: usize = 4 + 65_535 + 3;

/// The bytes at the head of a TURN stream are neither a STUN message nor ChannelData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotTurn;

/// The next frame of a TURN stream (RFC 5766 §11.5, RFC 8656 §12.5): a STUN message, or
/// ChannelData padded to four bytes. `Ok(Some((frame_len, consumed)))` when `buf`
/// starts with a complete one (the frame without its padding, and the bytes it takes),
/// `Ok(None)` when more bytes are needed, `Err` when it starts with neither.
pub fn next_frame(buf: &[u8]) -> Result<Option<(usize, usize)>, NotTurn> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let body = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let (len, consumed) = match buf[0] >> 6 {
        0b00 => (20 + body, 20 + body),
        0b01 => (4 + body, (4 + body).div_ceil(4) * 4),
        _ => return Err(NotTurn),
    };
    Ok((buf.len() >= consumed).then_some((len, consumed)))
}

/// ChannelData to a stream client, padded to four bytes as TCP requires (STUN
/// messages already are).
pub fn pad_for_stream(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_channel = data.first().is_some_and(|b| b >> 6 == 0b01);
    if !is_channel || data.len().is_multiple_of(4) {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut padded = data.to_vec();
    padded.resize(data.len().div_ceil(4) * 4, 0);
    std::borrow::Cow::Owned(padded)
}

/// The TLS server configuration from PEM files, with the TLS provider str0m and the
/// webhooks already use.
pub fn server_config(cert_file: &str, key_file: &str) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("turn.cert_file {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("turn.cert_file {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("turn.cert_file {cert_file}: no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("turn.key_file {key_file}: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("turn.cert_file/key_file: {e}"))
        .map(Arc::new)
}

/// One client's stream: TLS, or plain TCP (`external_tls`).
pub struct StreamConn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    tls: Option<ServerConnection>,
    /// Plain TCP: bytes the socket has not taken yet.
    unsent: Vec<u8>,
    /// Plaintext received and not yet cut into frames.
    inbox: Vec<u8>,
    pub closed: bool,
    /// Closed for breaking the rules (not TURN, a TLS error, not reading), not by
    /// the client.
    pub refused: bool,
}

impl StreamConn {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<&Arc<ServerConfig>>,
    ) -> std::io::Result<Self> {
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        let tls = match tls {
            Some(config) => {
                let mut conn = ServerConnection::new(config.clone())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                conn.set_buffer_limit(Some(MAX_PENDING));
                Some(conn)
            }
            None => None,
        };
        Ok(StreamConn {
            stream,
            peer,
            tls,
            unsent: Vec::new(),
            inbox: Vec::new(),
            closed: false,
            refused: false,
        })
    }

    /// Reads what arrived and returns the complete frames it holds, without padding.
    /// Anything that is not a TURN frame closes the connection.
    pub fn frames(&mut self) -> Vec<Vec<u8>> {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.read(&mut inbox);
        let mut frames = Vec::new();
        let mut at = 0;
        loop {
            match next_frame(&inbox[at..]) {
                Ok(Some((len, consumed))) => {
                    frames.push(inbox[at..at + len].to_vec());
                    at += consumed;
                }
                Ok(None) => break,
                Err(NotTurn) => {
                    self.refuse();
                    break;
                }
            }
        }
        inbox.drain(..at);
        if inbox.len() > MAX_FRAME {
            self.refuse();
        }
        self.inbox = inbox;
        frames
    }

    /// Whether there is something to write when the socket allows it.
    pub fn wants_write(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.wants_write(),
            None => !self.unsent.is_empty(),
        }
    }

    /// Reads what the socket has; appends the plaintext to `out`.
    fn read(&mut self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 16 * 1024];
        match self.tls.as_mut() {
            None => loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => {
                        self.closed = true;
                        return;
                    }
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.closed = true;
                        return;
                    }
                }
            },
            Some(tls) => {
                loop {
                    match tls.read_tls(&mut self.stream) {
                        Ok(0) => {
                            self.closed = true;
                            break;
                        }
                        Ok(_) => {
                            if tls.process_new_packets().is_err() {
                                // rustls queued an alert; send it, then close.
                                self.closed = true;
                                self.refused = true;
                                break;
                            }
                            loop {
                                match tls.reader().read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => out.extend_from_slice(&buf[..n]),
                                    Err(_) => break,
                                }
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.closed = true;
                            break;
                        }
                    }
                }
                // Handshake replies.
                self.flush();
            }
        }
    }

    /// Queues `data` for the client and writes what the socket takes now.
    pub fn write(&mut self, data: &[u8]) {
        if self.closed {
            return;
        }
        let data = &pad_for_stream(data)[..];
        match self.tls.as_mut() {
            Some(tls) => {
                if tls.writer().write_all(data).is_err() {
                    // Over MAX_PENDING: the client does not read.
                    self.refuse();
                    return;
                }
            }
            None => {
                if self.unsent.len() + data.len() > MAX_PENDING {
                    self.refuse();
                    return;
                }
                self.unsent.extend_from_slice(data);
            }
        }
        self.flush();
    }

    fn refuse(&mut self) {
        self.closed = true;
        self.refused = true;
    }

    /// Writes what is queued until the socket would block.
    pub fn flush(&mut self) {
        match self.tls.as_mut() {
            Some(tls) => {
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.closed = true;
                            return;
                        }
                    }
                }
            }
            None => {
                while !self.unsent.is_empty() {
                    match self.stream.write(&self.unsent) {
                        Ok(0) => {
                            self.closed = true;
                            return;
                        }
                        Ok(n) => {
                            self.unsent.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.closed = true;
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_from_the_stream_with_channel_padding() {
        let stun = {
            let mut m = vec![0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42];
            m.extend_from_slice(&[7; 12]);
            m.extend_from_slice(&[1, 2, 3, 4]);
            m
        };
        assert_eq!(next_frame(&stun), Ok(Some((24, 24))));
        assert_eq!(next_frame(&stun[..23]), Ok(None));
        let channel = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(next_frame(&channel), Ok(Some((9, 12))));
        assert_eq!(
            next_frame(&channel[..10]),
            Ok(None),
            "waits for the padding"
        );
        assert_eq!(
            next_frame(&[0x80, 0, 0, 0]),
            Err(NotTurn),
            "RTP is not a TURN frame"
        );
        assert_eq!(next_frame(&[0x00, 0x01]), Ok(None));
    }

    #[test]
    fn channel_data_to_a_stream_is_padded() {
        assert_eq!(pad_for_stream(&[0x40, 0, 0, 1, 9]).len(), 8);
        assert_eq!(pad_for_stream(&[0x40, 0, 0, 4, 1, 2, 3, 4]).len(), 8);
        let stun = [0u8; 20];
        assert_eq!(pad_for_stream(&stun).len(), 20);
    }
}
