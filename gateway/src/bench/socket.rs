//! The load generator's end of an ingest socket, written to cost the measured cores little.
//!
//! `gateway bench` shares the machine with the gateway it measures, so every microsecond the
//! generator spends per frame is taken from the gateway. Through tokio-tungstenite a frame cost
//! the generator two copies of its 43 KB and a masking pass before the kernel's own copy. Here
//! the text goes to the kernel as it lies, in one gather write: a small per-frame head (the JSON
//! up to `content_b64`), the shared base64 of the frame's audio, and the closing `"}`.
//!
//! The frames are still proper client frames: masked, as RFC 6455 requires, with a masking key
//! of zero. The key should be unpredictable on a real network (it keeps a client's bytes from
//! steering a caching proxy), which does not apply on a loopback benchmark; the gateway unmasks
//! every frame all the same, so its work per frame is what a recorder's frames cost it.

use std::io::IoSlice;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client WebSocket over a plain TCP connection: text frames out, text frames in.
pub struct BenchSocket {
    stream: TcpStream,
    /// Bytes read from the gateway and not yet taken as a frame.
    read: Vec<u8>,
}

/// Opcodes of the frames this end sends or reads (RFC 6455 §5.2).
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

impl BenchSocket {
    /// Opens `ws://{addr}{path}`: the HTTP upgrade, answered with 101.
    pub async fn connect(addr: &str, path: &str) -> anyhow::Result<BenchSocket> {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        // The key is any 16 bytes in base64; the answer's accept header is not checked, the
        // 101 is proof enough of a WebSocket server for a benchmark.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: YmVuY2gtc29ja2V0LWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut read = Vec::with_capacity(4096);
        let end = loop {
            if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if read.len() > 16 * 1024 || stream.read_buf(&mut read).await? == 0 {
                bail!("no HTTP answer to the upgrade of {path}");
            }
        };
        let status = String::from_utf8_lossy(&read[..end]);
        let line = status.lines().next().unwrap_or_default();
        if !line.starts_with("HTTP/1.1 101") {
            bail!("upgrade of {path} refused: {line}");
        }
        read.drain(..end);
        Ok(BenchSocket { stream, read })
    }

    /// Sends one text frame whose payload is `parts`, in order, with one gather write.
    pub async fn send_text(&mut self, parts: &[&[u8]]) -> anyhow::Result<()> {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let head = frame_head(TEXT, len);
        let mut slices = Vec::with_capacity(parts.len() + 1);
        slices.push(IoSlice::new(&head));
        slices.extend(parts.iter().map(|part| IoSlice::new(part)));
        write_all_vectored(&mut self.stream, &mut slices).await
    }

    /// The next text frame from the gateway; pings are answered, a close is an error.
    pub async fn recv_text(&mut self) -> anyhow::Result<String> {
        loop {
            match self.take_frame()? {
                Some((TEXT, payload)) => {
                    return String::from_utf8(payload).context("gateway sent invalid UTF-8");
                }
                Some((PING, payload)) => {
                    let head = frame_head(PONG, payload.len());
                    let mut slices = [IoSlice::new(&head), IoSlice::new(&payload)];
                    write_all_vectored(&mut self.stream, &mut slices).await?;
                }
                Some((CLOSE, _)) => bail!("gateway closed the socket"),
                Some((opcode, _)) => bail!("unexpected frame from the gateway (opcode {opcode})"),
                None => {
                    if self.stream.read_buf(&mut self.read).await? == 0 {
                        bail!("gateway closed the connection");
                    }
                }
            }
        }
    }

    /// Sends a close frame (normal closure) and stops writing.
    pub async fn close(mut self) {
        let code = 1000u16.to_be_bytes();
        let head = frame_head(CLOSE, code.len());
        let mut slices = [IoSlice::new(&head), IoSlice::new(&code)];
        let _ = write_all_vectored(&mut self.stream, &mut slices).await;
        let _ = self.stream.shutdown().await;
    }

    /// One whole server frame off the front of what was read: opcode and payload.
    fn take_frame(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        let Some(&[first, second]) = self.read.get(..2) else {
            return Ok(None);
        };
        if first & 0x80 == 0 {
            bail!("the gateway sent a fragmented frame, which the benchmark does not read");
        }
        if second & 0x80 != 0 {
            bail!("the gateway sent a masked frame (RFC 6455 forbids it)");
        }
        let (len, start) = match second & 0x7F {
            126 => match self.read.get(2..4) {
                Some(bytes) => (u16::from_be_bytes([bytes[0], bytes[1]]) as usize, 4),
                None => return Ok(None),
            },
            127 => match self.read.get(2..10) {
                Some(bytes) => (
                    u64::from_be_bytes(bytes.try_into().expect("8 bytes")) as usize,
                    10,
                ),
                None => return Ok(None),
            },
            short => (short as usize, 2),
        };
        if self.read.len() < start + len {
            return Ok(None);
        }
        let payload = self.read[start..start + len].to_vec();
        self.read.drain(..start + len);
        Ok(Some((first & 0x0F, payload)))
    }
}

/// A client frame's header: FIN, the opcode, the payload length and a zero masking key.
fn frame_head(opcode: u8, len: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(14);
    head.push(0x80 | opcode);
    match len {
        0..=125 => head.push(0x80 | len as u8),
        126..=0xFFFF => {
            head.push(0x80 | 126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            head.push(0x80 | 127);
            head.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    head.extend_from_slice(&[0; 4]);
    head
}

async fn write_all_vectored(
    stream: &mut TcpStream,
    mut slices: &mut [IoSlice<'_>],
) -> anyhow::Result<()> {
    while !slices.is_empty() {
        let written = stream.write_vectored(slices).await?;
        if written == 0 {
            bail!("the gateway stopped taking data");
        }
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_heads_carry_the_length_in_the_shortest_form_and_a_zero_mask() {
        assert_eq!(frame_head(TEXT, 5), [0x81, 0x85, 0, 0, 0, 0]);
        assert_eq!(
            frame_head(TEXT, 42_700),
            [0x81, 0xFE, 0xA6, 0xCC, 0, 0, 0, 0]
        );
        assert_eq!(
            frame_head(CLOSE, 70_000),
            [0x88, 0xFF, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 0, 0, 0, 0]
        );
    }
}
