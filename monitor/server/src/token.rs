//! The access token for viewers on other machines: generated once, kept in the store directory with owner-only
//! permissions, and compared in constant time.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A token and where it is kept.
#[derive(Debug, Clone)]
pub struct TokenFile {
    /// The token.
    pub token: String,
    /// Its file (mode 0600).
    pub path: PathBuf,
    /// True when it was generated now (the caller prints it, once).
    pub created: bool,
}

/// Reads the token of the store at `store`, creating it (256 random bits, hex) when there is none. An existing file
/// that others can read is tightened to 0600 first.
pub fn load_or_create_token(store: &Path) -> io::Result<TokenFile> {
    let path = htsr_api::local::token_path(store);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            return Ok(TokenFile {
                token: text.trim().to_string(),
                path,
                created: false,
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("no randomness for a token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Written under a temporary name with mode 0600 from its creation, then renamed: never readable by others,
    // never half-written.
    let tmp = path.with_file_name(format!(".{}.tmp", htsr_api::local::TOKEN_FILE));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{token}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(TokenFile {
        token,
        path,
        created: true,
    })
}

/// Whether `given` equals `token`, in time that does not depend on where they differ.
pub(crate) fn matches(token: &str, given: &str) -> bool {
    let (a, b) = (token.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_owner_only_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(dir.path()).unwrap();
        assert!(first.created);
        assert_eq!(first.token.len(), 64);
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create_token(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.token, first.token);
        // Loosened by hand: tightened again.
        std::fs::set_permissions(&first.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create_token(dir.path()).unwrap();
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn tokens_match_only_exactly() {
        assert!(matches("abc", "abc"));
        for other in ["abd", "ab", "abcd", "", "ABC"] {
            assert!(!matches("abc", other), "{other}");
        }
    }
}
