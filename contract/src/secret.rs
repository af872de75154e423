//! Secrets (API keys) given on the command line, in the environment, or in a file: the `*_FILE`
//! variants keep keys out of `ps` and shell history. Shared by the gateway and the recorder.

use std::path::Path;

/// A secret given directly or as a file (`*_FILE`); surrounding whitespace (the file's final
/// newline) is not part of it. An empty secret counts as none; an unreadable or empty file is
/// an error, so a typo in a path never silently turns the key off.
pub fn secret(
    value: Option<String>,
    file: Option<&Path>,
    setting: &str,
) -> anyhow::Result<Option<String>> {
    let Some(path) = file else {
        return Ok(value.filter(|v| !v.is_empty()));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {setting} {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        anyhow::bail!("{setting} {} is empty", path.display());
    }
    Ok(Some(key.to_owned()))
}
