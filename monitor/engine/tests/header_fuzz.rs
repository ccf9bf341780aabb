//! Fuzzing the header-parsing path: no input makes `Checkpoint::open`, `probe_file` or the analysis panic, and
//! every error names the file. A kept corpus of hand-made hostile headers (tests/fixtures/header-corpus) always
//! runs; proptest then mutates valid files (bit flips, truncation, length-field and JSON edits) and throws raw
//! bytes at the parser. Failing cases are persisted by proptest under proptest-regressions/.

use std::path::Path;

use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_engine::checkpoint::{probe_file, Checkpoint};
use proptest::prelude::*;

fn valid_file() -> Vec<u8> {
    let header = br#"{"__metadata__":{"htsr.step":"7"},"fc.weight":{"dtype":"F32","shape":[12,10],"data_offsets":[0,480]},"fc.bias":{"dtype":"F32","shape":[12],"data_offsets":[480,528]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend((0..132u32).flat_map(|i| ((i as f32).sin()).to_le_bytes()));
    bytes
}

/// Parses `bytes` as a file every way htsr does; panics only if htsr does, or if an error forgets the file.
/// Returns whether the file opened as a checkpoint.
fn exercise(dir: &Path, bytes: &[u8]) -> bool {
    let path = dir.join("fuzz.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let shown = path.display().to_string();
    if let Err(e) = probe_file(&path) {
        assert!(
            e.to_string().contains(&shown),
            "probe error without the file: {e}"
        );
    }
    match Checkpoint::open(&path) {
        Ok(c) => {
            let mut buf = Vec::new();
            for t in c.tensors() {
                c.read_tensor(t, &mut buf).unwrap();
                assert_eq!(buf.len(), t.byte_len());
            }
            // Whatever parsed must also analyze without panicking.
            let a = analyze_checkpoint(&path, &AnalyzeOptions::default()).unwrap();
            assert_eq!(a.layers.len(), c.tensors().len());
            true
        }
        Err(e) => {
            assert!(
                e.to_string().contains(&shown),
                "open error without the file: {e}"
            );
            false
        }
    }
}

#[test]
fn kept_corpus_of_hostile_headers() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/header-corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let opened = exercise(dir.path(), &std::fs::read(&path).unwrap());
        // Every hostile header is refused; only the one valid file opens.
        let valid = path.file_name().unwrap() == "valid-tiny.bin";
        assert_eq!(opened, valid, "{}", path.display());
        n += 1;
    }
    assert!(n >= 15, "the corpus is there ({n} files)");
    // The one valid member of the corpus opens.
    let valid = std::fs::read(corpus.join("valid-tiny.bin")).unwrap();
    let path = dir.path().join("valid.safetensors");
    std::fs::write(&path, valid).unwrap();
    assert_eq!(Checkpoint::open(&path).unwrap().tensors().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_valid_files_never_panic(
        flips in prop::collection::vec((0usize..700, 0u8..8), 0..6),
        cut in prop::option::of(0usize..700),
        length_delta in -3i64..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = valid_file();
        for (at, bit) in flips {
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1 << bit;
            }
        }
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as i64 + length_delta;
        bytes[..8].copy_from_slice(&(len.max(0) as u64).to_le_bytes());
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let _ = exercise(dir.path(), &bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = exercise(dir.path(), &bytes);
    }
}
