//! A sound server of the test's own with one microphone that the test can unplug:
//! [`SoundServer`] runs a private PulseAudio daemon whose only input is a null source (a
//! microphone that hears silence, paced in real time like a real one). The app reaches it as
//! it reaches any Linux desktop's microphone: cpal's ALSA `default` device, which the ALSA
//! PulseAudio plugin routes to the server named in `PULSE_SERVER` ([`SoundServer::env`]).
//!
//! [`SoundServer::unplug`] unloads the source, which is what PulseAudio does when a USB
//! microphone is pulled out: the stream recording from it fails, and the app hears of it the
//! way it would from a real unplugged device (cpal's error callback, through ALSA).
//!
//! Needs `pulseaudio`, `pactl` (pulseaudio-utils) and the ALSA PulseAudio plugin
//! (libasound2-plugins); `scripts/e2e.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The null source's name on the server.
const MICROPHONE: &str = "e2e_microphone";

/// A private PulseAudio daemon, killed (and its folder removed) on drop.
pub struct SoundServer {
    daemon: Child,
    /// Runtime, state and config folders of the daemon, and its socket.
    dir: PathBuf,
    socket: PathBuf,
}

impl SoundServer {
    /// Starts the daemon with one microphone and waits until it answers. `log` receives the
    /// daemon's own log.
    pub fn start(log: &Path) -> anyhow::Result<SoundServer> {
        let pulseaudio = program("pulseaudio")?;
        program("pactl")?;
        // A Unix socket path must stay under ~100 bytes: a short folder of its own in /tmp,
        // not the (possibly long) artifacts folder.
        let dir = std::env::temp_dir().join(format!("e2e-pulse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["run", "state", "config"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let socket = dir.join("native");
        let script = dir.join("e2e.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n\
                 load-module module-null-source source_name={MICROPHONE} rate=48000 channels=1\n\
                 set-default-source {MICROPHONE}\n",
                socket = socket.display()
            ),
        )?;
        let daemon = Command::new(pulseaudio)
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "-n",
            ])
            .arg("-F")
            .arg(&script)
            .arg(format!("--log-target=file:{}", log.display()))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("PULSE_RUNTIME_PATH", dir.join("run"))
            .env("PULSE_STATE_PATH", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = SoundServer {
            daemon,
            dir,
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if server.pactl(&["info"]).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.daemon.try_wait()? {
                anyhow::bail!(
                    "pulseaudio exited at start ({status}); its log: {}",
                    log.display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "pulseaudio did not answer within 20 s; its log: {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the app's environment needs to use this server (the ALSA plugin honours it).
    pub fn env(&self) -> (&'static str, PathBuf) {
        (
            "PULSE_SERVER",
            PathBuf::from(format!("unix:{}", self.socket.display())),
        )
    }

    /// How many streams record from the microphone now.
    pub fn recording_streams(&self) -> anyhow::Result<usize> {
        let list = self.pactl(&["list", "short", "source-outputs"])?;
        Ok(list.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// Whether the microphone is plugged in.
    pub fn has_microphone(&self) -> anyhow::Result<bool> {
        let list = self.pactl(&["list", "short", "sources"])?;
        Ok(list
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(MICROPHONE)))
    }

    /// Pulls the microphone out: its source goes from the server, as a USB microphone's does.
    pub fn unplug(&self) -> anyhow::Result<()> {
        self.pactl(&["unload-module", "module-null-source"])?;
        anyhow::ensure!(
            !self.has_microphone()?,
            "the microphone is still listed after the unplug"
        );
        Ok(())
    }

    fn pactl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(program("pactl")?)
            .args(args)
            .env("PULSE_SERVER", self.env().1)
            .stdin(Stdio::null())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "pactl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn program(name: &str) -> anyhow::Result<PathBuf> {
    crate::which(name).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} is not installed; the unplugged-microphone test needs a PulseAudio server \
             (scripts/e2e.sh installs it: apt-get install pulseaudio pulseaudio-utils \
             libasound2-plugins)"
        )
    })
}
