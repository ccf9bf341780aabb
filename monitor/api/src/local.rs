//! Where the daemon that holds a store can be reached, computed the same way by the daemon and by every client.
//!
//! The socket is `<store>.sock` beside the store (`DIR/.htsr.sock`, next to the `DIR/.htsr.log` log), owner-only.
//! A Unix socket's path is limited to 107 bytes; a store whose socket path would be longer is served at
//! `/tmp/htsr-<uid>/<hash of the store's path>.sock` instead, in a directory only its owner can enter. Both sides
//! work from the store's canonical path, so a daemon started with a relative `DIR` and a client given an absolute
//! one agree.

use std::path::{Path, PathBuf};

/// The longest socket path used beside the store (the kernel's limit is 107 bytes; a little is kept spare).
const MAX_SOCKET_PATH: usize = 100;

/// The file inside a store that holds the token remote viewers must present (owner-only).
pub const TOKEN_FILE: &str = "serve.token";

/// The socket of the daemon serving the store at `store` (which must exist, to be made canonical; a store that
/// does not exist has no daemon, and its path as given is used).
pub fn socket_path(store: &Path) -> PathBuf {
    let canonical = store.canonicalize().unwrap_or_else(|_| store.to_path_buf());
    let mut beside = canonical.clone().into_os_string();
    beside.push(".sock");
    if beside.len() <= MAX_SOCKET_PATH {
        return PathBuf::from(beside);
    }
    runtime_dir().join(format!(
        "{:016x}.sock",
        htsr_contracts::naming::stable_hash(canonical.as_os_str().as_encoded_bytes())
    ))
}

/// `/tmp/htsr-<uid>`: where the sockets of stores with long paths live.
pub fn runtime_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("htsr-{uid}"))
}

/// The token file of the store at `store`.
pub fn token_path(store: &Path) -> PathBuf {
    store.join(TOKEN_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_stores_get_a_socket_beside_them_and_long_ones_a_hashed_one() {
        let dir = std::env::temp_dir().join(format!("htsr-api-local-{}", std::process::id()));
        let store = dir.join(".htsr");
        std::fs::create_dir_all(&store).unwrap();
        let s = socket_path(&store);
        assert_eq!(
            s,
            store.canonicalize().unwrap().with_file_name(".htsr.sock")
        );
        // The same store named through a relative path with `..` gets the same socket.
        let odd = dir.join("x").join("..").join(".htsr");
        std::fs::create_dir_all(dir.join("x")).unwrap();
        assert_eq!(socket_path(&odd), s);

        let long = dir.join("a".repeat(120)).join(".htsr");
        std::fs::create_dir_all(&long).unwrap();
        let l = socket_path(&long);
        assert!(l.starts_with(runtime_dir()), "{}", l.display());
        assert!(l.as_os_str().len() <= MAX_SOCKET_PATH, "{}", l.display());
        assert_eq!(l, socket_path(&long), "stable");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_socket_hash_is_fnv_1a() {
        // Test vectors of FNV-1a 64 (Fowler, Noll, Vo): the daemon and its clients may be built apart.
        use htsr_contracts::naming::stable_hash;
        assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x85944171f73967e8);
    }
}
