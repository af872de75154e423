//! Driving the app's page through WebDriver, shared by the WebDriver tests: open a session on
//! the app ([`connect`]), poll what a script reads until it holds ([`wait_for_read`]), click,
//! take screenshots, and end a run with its verdict ([`finish`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::TauriDriver;

/// Ends a WebDriver run: a screenshot on failure, the session closed, the driver's process
/// group killed, then the verdict.
pub async fn finish(
    client: Client,
    driver: TauriDriver,
    outcome: Result<anyhow::Result<()>, tokio::time::error::Elapsed>,
    failure_shot: &Path,
) {
    if !matches!(outcome, Ok(Ok(()))) {
        save_screenshot(&client, failure_shot).await;
    }
    // Closing the session closes the window; while the app records it asks before quitting
    // (a native dialog WebDriver cannot answer) and the close never completes: bounded, then
    // the driver's process group goes, the app with it.
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}\n(screenshot: {})", failure_shot.display()),
        Err(_) => panic!("the WebDriver test did not finish within 240 s"),
    }
}

/// A new WebDriver session on the app binary. tauri-driver accepts connections before its
/// WebKitWebDriver is ready, so a refused first attempt is retried.
pub async fn connect(driver: &TauriDriver, app: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "tauri:options".into(),
        json!({ "application": app.display().to_string() }),
    );
    let mut attempt = 1;
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // Bounded: a launch that dies before WebKitWebDriver answers can leave the request
        // hanging, and then no test timeout would end the run.
        let opened = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&driver.url()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(fantoccini::error::NewSessionError::Lost(
                std::io::Error::other("no answer to the new session within 60 s"),
            ))
        });
        match opened {
            Ok(client) => return client,
            Err(e) if attempt < 3 => {
                eprintln!("WebDriver session attempt {attempt} failed ({e}); retrying");
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!(
                "cannot open a WebDriver session on {}: {e} (driver logs in {})",
                app.display(),
                crate::artifacts_dir().display()
            ),
        }
    }
}

/// Polls what the script `read` returns until `ready` holds; fails with the last answer seen
/// after `secs`.
pub async fn wait_for_read(
    client: &Client,
    read: &str,
    what: &str,
    secs: u64,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        // A read can fail while the page is busy (WebKitWebDriver then answers an error with
        // no message); the wait is for what the page shows, so only the deadline ends it.
        let page = client.execute(read, vec![]).await;
        if let Ok(page) = &page
            && ready(page)
        {
            return Ok(page.clone());
        }
        if Instant::now() > deadline {
            match page {
                Ok(page) => anyhow::bail!("waited {secs} s for {what}; the page shows {page:#}"),
                Err(e) => anyhow::bail!("waited {secs} s for {what}; reading the page: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| anyhow::anyhow!("{css}: {e}"))?
        .click()
        .await
        .map_err(|e| anyhow::anyhow!("click {css}: {e}"))?;
    Ok(())
}

/// The window through WebDriver, or the whole X screen with ImageMagick's `import`.
pub async fn save_screenshot(client: &Client, path: &Path) -> bool {
    if let Ok(png) = client.screenshot().await
        && std::fs::write(path, png).is_ok()
    {
        return true;
    }
    std::process::Command::new("import")
        .args(["-window", "root"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh directory for one test's settings and data, under the artifacts directory.
pub fn tempdir(artifacts: &Path, name: &str) -> PathBuf {
    let dir = artifacts.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// WebDriver's Tab key: leaving a field fires its `change`, as a user's Tab does.
pub const TAB: &str = "\u{E004}";

/// Types `text` over a field's whole content and leaves it with Tab, as a user does (so the
/// page sees one `change`, never the field empty as `clear` would make it).
pub async fn replace_text(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    type_over(client, css, &format!("{text}{TAB}")).await
}

/// Focuses a field, selects what it holds and types `text` over it. Not WebDriver's `clear`:
/// that blurs the field, and a page that refreshes unfocused fields (the speakers panel does
/// on every resolution) may write the old value back before the keys arrive.
pub async fn type_over(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let field = client
        .find(Locator::Css(css))
        .await
        .map_err(|e| anyhow::anyhow!("{css}: {e}"))?;
    client
        .execute(
            "const el = document.querySelector(arguments[0]); el.focus(); el.select();",
            vec![json!(css)],
        )
        .await
        .map_err(|e| anyhow::anyhow!("select {css}: {e}"))?;
    field
        .send_keys(text)
        .await
        .map_err(|e| anyhow::anyhow!("type into {css}: {e}"))?;
    Ok(())
}
