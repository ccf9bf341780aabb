//! Key encoding: every key is ordered bytes, so that sled's lexicographic order is the order we query in.
//!
//! Strings are escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x00. That keeps them order-preserving and
//! prefix-free: "a" sorts before "a\0" and before "ab", and no run's prefix is a prefix of another run's keys.
//! Numbers are big-endian, so `run | layer index | step` scans one layer's trajectory in step order.

/// Appends the escaped, terminated form of `s` to `out`.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Reads a string written by [`push_str`]; returns it and the rest of the key.
pub fn take_str(key: &[u8]) -> Option<(String, &[u8])> {
    let mut s = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let b = key[i];
        if b == 0 {
            match key.get(i + 1)? {
                0 => return Some((String::from_utf8(s).ok()?, &key[i + 2..])),
                0xFF => {
                    s.push(0);
                    i += 2;
                    continue;
                }
                _ => return None,
            }
        }
        s.push(b);
        i += 1;
    }
    None
}

/// `run` alone: the prefix of every key of that run in every per-run tree.
pub fn run_prefix(run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(run.len() + 2);
    push_str(&mut k, run);
    k
}

/// The smallest key greater than every key that starts with `run_prefix(run)`: where the next run begins.
pub fn after_run(run: &str) -> Vec<u8> {
    let mut k = run_prefix(run);
    // The terminator 0x00 0x00 becomes 0x00 0x01: above every key of this run, below "run\0..." (0x00 0xFF).
    if let Some(last) = k.last_mut() {
        *last = 1;
    }
    k
}

/// `run | step`: checkpoints, phase rows, pins.
pub fn run_step(run: &str, step: u64) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

/// `run | layer`: the prefix of one layer's trajectory.
pub fn run_layer(run: &str, layer: u32) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.extend_from_slice(&layer.to_be_bytes());
    k
}

/// `run | layer | step`: trajectory points and reports, one layer's history contiguous and in step order.
pub fn run_layer_step(run: &str, layer: u32, step: u64) -> Vec<u8> {
    let mut k = run_layer(run, layer);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

/// `run | step | layer`: raw eigenvalues, so that dropping one checkpoint's raw values is one prefix scan.
pub fn run_step_layer(run: &str, step: u64, layer: u32) -> Vec<u8> {
    let mut k = run_step(run, step);
    k.extend_from_slice(&layer.to_be_bytes());
    k
}

/// `run | layer name`: the interning tree's key.
pub fn run_name(run: &str, name: &str) -> Vec<u8> {
    let mut k = run_prefix(run);
    push_str(&mut k, name);
    k
}

/// `path | size | mtime | header hash`: a checkpoint file's identity. mtime is offset by 2^127 so that
/// negative times still sort below positive ones.
pub fn identity(path: &str, size: u64, mtime_ns: i128, header_hash: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(path.len() + header_hash.len() + 30);
    push_str(&mut k, path);
    k.extend_from_slice(&size.to_be_bytes());
    k.extend_from_slice(&((mtime_ns as u128) ^ (1u128 << 127)).to_be_bytes());
    push_str(&mut k, header_hash);
    k
}

/// Reads a big-endian u64 from the start of `bytes`.
pub fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Reads a big-endian u32 from the start of `bytes`.
pub fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// Splits a `run | ...` key into its run and the rest.
pub fn split_run(key: &[u8]) -> Option<(String, &[u8])> {
    take_str(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn key_order_is_run_layer_step_order(
            a in (".{0,6}", any::<u32>(), any::<u64>()),
            b in (".{0,6}", any::<u32>(), any::<u64>()),
        ) {
            let ka = run_layer_step(&a.0, a.1, a.2);
            let kb = run_layer_step(&b.0, b.1, b.2);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }

        #[test]
        fn strings_with_nul_bytes_keep_order(
            a in ("[a\\x00\\x01]{0,5}", any::<u64>()),
            b in ("[a\\x00\\x01]{0,5}", any::<u64>()),
        ) {
            let ka = run_step(&a.0, a.1);
            let kb = run_step(&b.0, b.1);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let (run, rest) = split_run(&ka).unwrap();
            prop_assert_eq!(run, a.0.clone());
            prop_assert_eq!(be_u64(rest), Some(a.1));
        }

        #[test]
        fn a_run_prefix_never_matches_another_run(a in "[a\\x00]{0,4}", b in "[a\\x00]{0,4}", step in any::<u64>()) {
            prop_assume!(a != b);
            let key = run_step(&b, step);
            prop_assert!(!key.starts_with(&run_prefix(&a)));
            // Every key of run `a` lies below after_run(a), and keys of other runs are on one side of the range.
            let ka = run_step(&a, step);
            prop_assert!(ka < after_run(&a));
            prop_assert!(key < run_prefix(&a) || key >= after_run(&a));
        }

        #[test]
        fn identity_order_follows_mtime(t1 in any::<i128>(), t2 in any::<i128>()) {
            let k1 = identity("p", 1, t1, "h");
            let k2 = identity("p", 1, t2, "h");
            prop_assert_eq!(k1.cmp(&k2), t1.cmp(&t2));
        }
    }
}
