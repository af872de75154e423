//! Issue 9, "keeping it fixed": a five-minute recording through a TCP proxy that stalls, drops
//! and resets the connection at random, while the gateway process is killed (SIGKILL) twice and
//! started again on the same data. At the end the gateway's audio is the local copy, byte for
//! byte, with no second missing.
//!
//! The audio is framed by the real pipeline and sent by the real uplink as fast as the
//! connection allows, so five minutes of audio meet every fault in a few seconds. The faults
//! come from a seeded generator (the seed is printed), so a failure can be replayed.
#![cfg(unix)]

mod e2e_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e_support::*;
use recorder::endpoint::GatewayEndpoint;
use recorder::spool::{Durability, Spool};
use recorder::uplink::{Backoff, Uplink, UplinkConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const SECONDS: u32 = 300;

/// The `gateway` binary of this workspace, built beside this test's own executable.
fn gateway_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join("gateway");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p gateway; `cargo test --workspace` does)",
        binary.display()
    );
    binary
}

/// A `gateway serve` child on a free port; returns it with its address.
async fn start_gateway_process(data: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(gateway_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--durability",
            "process",
        ])
        .arg("--data-dir")
        .arg(data)
        .env_remove("GATEWAY_API_KEY")
        .env_remove("GATEWAY_OBJECTS")
        .env_remove("INFERENCE_BASE_URL")
        .env("GATEWAY_INFERENCE", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway binary");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .expect("a startup line in time")
        .unwrap();
    let addr = line
        .strip_prefix("gateway listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    // Keep stdout drained so that a later print never blocks or fails the child.
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink).await;
    });
    (child, addr)
}

/// xorshift64*: small, seeded, good enough to scatter faults.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What the proxy did, for the printout.
#[derive(Debug, Default)]
struct Faults {
    stalls: u32,
    drops: u32,
    resets: u32,
}

/// Forwards each connection to the current gateway, and on about one read in 40 stalls it
/// (0.2–1.5 s), drops it, or resets it.
async fn chaos_proxy(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    dice: Arc<Mutex<Dice>>,
    faults: Arc<Mutex<Faults>>,
) {
    loop {
        let (client, _) = listener.accept().await.unwrap();
        let target = *upstream.lock().unwrap();
        let Ok(server) = TcpStream::connect(target).await else {
            continue; // the gateway is down: the client sees a closed connection
        };
        let (dice, faults) = (Arc::clone(&dice), Arc::clone(&faults));
        tokio::spawn(async move {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let mut up = vec![0u8; 16 * 1024];
            let mut down = vec![0u8; 16 * 1024];
            loop {
                let (n, towards_server) = tokio::select! {
                    n = client_read.read(&mut up) => (n, true),
                    n = server_read.read(&mut down) => (n, false),
                };
                let Ok(n) = n else { return };
                if n == 0 {
                    return;
                }
                let roll = dice.lock().unwrap().below(120);
                match roll {
                    0 => {
                        faults.lock().unwrap().drops += 1;
                        return;
                    }
                    1 => {
                        faults.lock().unwrap().resets += 1;
                        let client = client_read.reunite(client_write).unwrap();
                        let _ = client.set_zero_linger();
                        return;
                    }
                    2 => {
                        let pause = 200 + dice.lock().unwrap().below(1300);
                        faults.lock().unwrap().stalls += 1;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    _ => {}
                }
                let written = if towards_server {
                    server_write.write_all(&up[..n]).await
                } else {
                    client_write.write_all(&down[..n]).await
                };
                if written.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_minute_recording_survives_a_faulty_network_and_two_gateway_kills() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("chaos seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(&dir.path().join("talk.wav"), SECONDS);
    let data = dir.path().join("gateway");
    let (mut gateway, addr) = start_gateway_process(&data).await;
    let upstream = Arc::new(Mutex::new(addr));
    let faults = Arc::new(Mutex::new(Faults::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chaos_proxy(
        listener,
        Arc::clone(&upstream),
        Arc::new(Mutex::new(Dice(seed))),
        Arc::clone(&faults),
    ));

    let local_copy = dir.path().join("local.wav");
    let frames = frame_wav(&wav, &local_copy);
    assert_eq!(frames.len(), SECONDS as usize);

    let session = "chaos";
    let spool = Spool::open(dir.path().join("spool"), session, Durability::Flush).unwrap();
    let mut config = UplinkConfig::new(GatewayEndpoint::parse(&proxy, None).unwrap(), session);
    config.answer_timeout = Duration::from_secs(1);
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.2,
    };
    config.report_interval = Duration::ZERO;
    let uplink = Uplink::start(config, spool, recorder::events::EventSink::new());
    let mut counters = uplink.counters();
    let sender = uplink.frames();
    for frame in frames {
        sender.send(frame);
    }
    drop(sender);

    for (kill, after_acks) in [(1, 100), (2, 200)] {
        tokio::time::timeout(
            Duration::from_secs(120),
            counters.wait_for(|c| c.acked >= after_acks),
        )
        .await
        .unwrap_or_else(|_| panic!("{after_acks} ACKs before kill {kill}"))
        .unwrap();
        gateway.start_kill().unwrap(); // SIGKILL
        gateway.wait().await.unwrap();
        let (restarted, addr) = start_gateway_process(&data).await;
        gateway = restarted;
        *upstream.lock().unwrap() = addr;
    }
    let outcome = uplink.finish(Duration::from_secs(120)).await;
    let faults = std::mem::take(&mut *faults.lock().unwrap());
    let c = &outcome.counters;
    println!(
        "chaos: {faults:?}; sent {} (resent {}), acked {} (stored {}, duplicate {}), reconnects {}",
        c.sent, c.resent, c.acked, c.stored, c.duplicate, c.reconnects
    );
    assert!(outcome.drained, "{outcome:?}");
    assert_eq!((c.pending, c.rejected), (0, 0), "{c:?}");

    // Read straight from the gateway, not through the proxy.
    let base = format!("http://{}", *upstream.lock().unwrap());
    let (remote, missing) = gateway_pcm(&base, session).await;
    assert_eq!(missing, 0);
    assert_same_audio(&remote, &wav_pcm(&local_copy));
    let ingest = gateway_state(&base, session).await.ingest.unwrap().status;
    assert_eq!((ingest.last_seq, ingest.missing_chunks), (300, 0));
}
