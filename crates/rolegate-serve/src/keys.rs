//! Stage: the token signing key. Input: a key from the configuration, or the data folder.
//! Output: the HS256 secret. Without a configured key, the server generates 64 random bytes
//! once and keeps them, hex-encoded, in `<data folder>/serve-signing-key`, created with mode
//! 0600; a key file that the group or others may read is refused (as ssh refuses such keys).

use std::io::Write;
use std::path::Path;

/// The key file's name in the data folder.
pub const KEY_FILE: &str = "serve-signing-key";

/// The shortest configured key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Why there is no key.
#[derive(Debug, thiserror::Error)]
#[error("signing key: {0}")]
pub struct KeyError(pub String);

/// The configured key (at least [`MIN_KEY_BYTES`] bytes), else the data folder's.
pub fn signing_key(configured: Option<&[u8]>, data_dir: &Path) -> Result<Vec<u8>, KeyError> {
    if let Some(key) = configured {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError(format!(
                "a configured key needs at least {MIN_KEY_BYTES} bytes"
            )));
        }
        return Ok(key.to_vec());
    }
    let path = data_dir.join(KEY_FILE);
    match create(&path) {
        Ok(key) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(KeyError(format!("cannot create {}: {e}", path.display()))),
    }
}

/// Creates the key file (fails with `AlreadyExists` when there is one).
fn create(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut key = vec![0_u8; 64];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(hex(&key).as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

/// Reads the key file, refusing one that others may read.
fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    let shown = path.display();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| KeyError(format!("{shown}: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError(format!(
                "{shown} may be read by others: `chmod 600` it"
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| KeyError(format!("{shown}: {e}")))?;
    let key = unhex(text.trim()).ok_or_else(|| KeyError(format!("{shown} is not hex")))?;
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError(format!(
            "{shown} holds fewer than {MIN_KEY_BYTES} bytes"
        )));
    }
    Ok(key)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = signing_key(None, dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(signing_key(None, dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(signing_key(None, dir.path()).is_err());
        }
        assert!(signing_key(Some(b"short"), dir.path()).is_err());
        assert_eq!(unhex(&hex(&first)).unwrap(), first);
    }
}
