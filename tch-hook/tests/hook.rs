//! The hook on real tch training: names, metadata and bytes of the files; keep-last-K; back-pressure; and I/O
//! errors that are reported by the next call. The writer's own guarantees (atomicity seen by a concurrent reader,
//! ...) are tested without libtorch in htsr-writer's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use htsr_tch_hook::{HookError, HtsrHook, StepInfo, StepOutcome, WhenBehind};
use safetensors::SafeTensors;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// A small MLP and its optimizer; `width` scales the file size.
struct Model {
    vs: nn::VarStore,
    net: nn::Sequential,
    opt: nn::Optimizer,
    x: Tensor,
    y: Tensor,
}

impl Model {
    fn new(width: i64, seed: i64) -> Self {
        tch::set_num_threads(1); // tests run in parallel on few cores; OpenMP spinning would only slow them
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let net = nn::seq()
            .add(nn::linear(&root / "fc1", 16, width, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&root / "fc2", width, width, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&root / "out", width, 4, Default::default()));
        let opt = nn::Sgd {
            momentum: 0.9,
            ..Default::default()
        }
        .build(&vs, 0.05)
        .unwrap();
        let x = Tensor::randn([64, 16], (Kind::Float, Device::Cpu));
        let y = x.narrow(1, 0, 4).argmax(1, false);
        Model { vs, net, opt, x, y }
    }

    /// One SGD step; returns the loss.
    fn train_step(&mut self) -> f64 {
        let loss = self.net.forward(&self.x).cross_entropy_for_logits(&self.y);
        self.opt.backward_step(&loss);
        loss.double_value(&[])
    }

    /// The raw bytes of every 2-D variable, as the VarStore holds them now.
    fn weight_bytes(&self) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
        self.vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.dim() >= 2)
            .map(|(name, t)| {
                let mut bytes = vec![0u8; t.numel() * 4];
                t.copy_data_u8(&mut bytes, t.numel());
                (
                    name,
                    (t.size().iter().map(|&d| d as usize).collect(), bytes),
                )
            })
            .collect()
    }
}

fn final_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.') && n.ends_with(".safetensors"))
        .collect()
}

fn all_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn name(step: u64) -> String {
    format!("step-{step:09}.safetensors")
}

#[test]
fn checkpoints_have_expected_names_metadata_and_the_varstore_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Model::new(24, 1);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("mlp")
        .every(5)
        .metadata("optimizer", "sgd")
        .metadata("htsr.note", "test")
        .build()
        .unwrap();
    let mut expected = BTreeMap::new();
    let mut loss = f64::NAN;
    for step in 0..23u64 {
        let info = StepInfo::new()
            .epoch(step / 10)
            .loss(loss)
            .lr(0.05)
            .batch_size(64);
        let outcome = hook.step_with(step, &m.vs, info).unwrap();
        if step % 5 == 0 {
            assert!(
                matches!(outcome, StepOutcome::Queued | StepOutcome::Waited(_)),
                "step {step}: {outcome:?}"
            );
            expected.insert(step, (m.weight_bytes(), loss));
        } else {
            assert_eq!(outcome, StepOutcome::NotDue, "step {step}");
        }
        loss = m.train_step();
    }
    // An epoch-end checkpoint at a step that is not a multiple of 5, without a loss.
    let outcome = hook.epoch_end(23, &m.vs, StepInfo::new().epoch(2)).unwrap();
    assert!(matches!(
        outcome,
        StepOutcome::Queued | StepOutcome::Waited(_)
    ));
    expected.insert(23, (m.weight_bytes(), f64::NAN));
    // A second call for the same step writes nothing more.
    assert_eq!(
        hook.epoch_end(23, &m.vs, StepInfo::new()).unwrap(),
        StepOutcome::NotDue
    );
    let stats = hook.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (6, 0));

    let dir = tmp.path().join("mlp");
    let want: BTreeSet<String> = expected.keys().map(|&s| name(s)).collect();
    assert_eq!(all_files(&dir), want, "no temporary file may remain");
    for (step, (weights, loss)) in &expected {
        let bytes = fs::read(dir.join(name(*step))).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().expect("__metadata__ present");
        assert_eq!(meta["htsr.step"], step.to_string());
        assert_eq!(meta["htsr.run"], "mlp");
        assert_eq!(meta["htsr.optimizer"], "sgd");
        assert_eq!(meta["htsr.note"], "test");
        let wall: f64 = meta["htsr.wall_time"].parse().unwrap();
        assert!(wall > 1.6e9, "wall time {wall}");
        if *step == 23 {
            assert_eq!(meta["htsr.epoch"], "2");
            for absent in ["htsr.loss", "htsr.lr", "htsr.batch_size"] {
                assert!(
                    !meta.contains_key(absent),
                    "{absent} was not given at step 23"
                );
            }
        } else {
            assert_eq!(meta["htsr.epoch"], (step / 10).to_string());
            assert_eq!(meta["htsr.batch_size"], "64");
            assert_eq!(meta["htsr.lr"].parse::<f64>().unwrap(), 0.05);
            let got: f64 = meta["htsr.loss"].parse().unwrap();
            assert!(
                got == *loss || (got.is_nan() && loss.is_nan()),
                "loss {got} vs {loss}"
            );
        }
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names().into_iter().map(String::from).collect::<Vec<_>>();
        names.sort();
        assert_eq!(
            names,
            ["fc1.weight", "fc2.weight", "out.weight"],
            "biases (1-D) are not saved"
        );
        for (n, (shape, data)) in weights {
            let t = st.tensor(n).unwrap();
            assert_eq!(t.dtype(), safetensors::Dtype::F32);
            assert_eq!(t.shape(), shape.as_slice(), "{n}");
            assert!(
                t.data() == data.as_slice(),
                "{n} at step {step} differs from the VarStore's bytes"
            );
        }
    }
    // The weights did change between checkpoints, so the comparison above is not vacuous.
    assert_ne!(
        expected[&0].0["fc1.weight"].1,
        expected[&20].0["fc1.weight"].1
    );
}

#[test]
fn keep_last_k_keeps_exactly_the_k_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Model::new(16, 3);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("k")
        .every(2)
        .keep_last(3)
        .build()
        .unwrap();
    for step in 0..20u64 {
        hook.step(step, &m.vs).unwrap();
        m.train_step();
    }
    hook.finish().unwrap();
    let want: BTreeSet<String> = [14, 16, 18].into_iter().map(name).collect();
    assert_eq!(all_files(&tmp.path().join("k")), want);
}

#[test]
fn an_unwritable_directory_is_a_clear_error_and_training_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-regular-file");
    fs::write(&file, b"not a directory").unwrap();
    let err = HtsrHook::builder()
        .dir(&file)
        .run("r")
        .every(1)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HookError::CreateDir { .. }), "{err:?}");
    assert!(
        msg.contains("cannot create checkpoint directory") && msg.contains("a-regular-file"),
        "{msg}"
    );
    // Nothing was created in the file's place, and the same builder aimed at a directory works.
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
    let hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("r")
        .every(1)
        .build()
        .unwrap();
    assert_eq!(hook.run_dir(), tmp.path().join("r"));
}

#[test]
fn a_write_failure_mid_training_is_returned_by_the_next_call_and_leaves_no_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("r");
    let mut m = Model::new(16, 5);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("r")
        .every(1)
        .build()
        .unwrap();
    for step in 0..3u64 {
        hook.step(step, &m.vs).unwrap();
        m.train_step();
    }
    hook.flush().unwrap();
    assert_eq!(final_files(&dir).len(), 3);
    // The run directory disappears, and a regular file takes its place: every write now fails.
    fs::remove_dir_all(&dir).unwrap();
    fs::write(&dir, b"in the way").unwrap();
    let mut errors = Vec::new();
    for step in 3..8u64 {
        // Each call takes its snapshot whatever happened before. Its failure surfaces at the flush, or already in
        // the call if the writer failed before the call returned: either way, exactly once.
        match hook.step(step, &m.vs) {
            Ok(outcome) => assert_eq!(outcome, StepOutcome::Queued),
            Err(e) => errors.push(e),
        }
        m.train_step();
        hook.flush().map_err(|e| errors.push(e)).ok();
    }
    assert_eq!(
        errors.len(),
        5,
        "one error per failed checkpoint: {errors:?}"
    );
    for (e, step) in errors.iter().zip(3u64..) {
        let HookError::Write { path, message } = e else {
            panic!("unexpected error {e:?}")
        };
        assert_eq!(path, &dir.join(name(step)));
        assert!(path.starts_with(&dir), "{}", path.display());
        assert!(!message.is_empty());
        assert!(e.to_string().contains("writing checkpoint"), "{e}");
    }
    assert!(
        fs::metadata(&dir).unwrap().is_file(),
        "no checkpoint was written in place of the obstacle"
    );
    // The directory comes back: later checkpoints are written again, the failed steps have no file.
    fs::remove_file(&dir).unwrap();
    fs::create_dir(&dir).unwrap();
    for step in 8..10u64 {
        hook.step(step, &m.vs).unwrap();
        m.train_step();
    }
    let stats = hook.finish().unwrap();
    assert_eq!(stats.failed, 5);
    let want: BTreeSet<String> = [8, 9].into_iter().map(name).collect();
    assert_eq!(all_files(&dir), want);
}

#[test]
fn when_behind_skip_skips_while_the_writer_is_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Model::new(16, 7);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("s")
        .every(1)
        .queue_capacity(1)
        .when_behind(WhenBehind::Skip)
        .build()
        .unwrap();
    // A held writer keeps the first checkpoint's queue slot: the writer is "behind", deterministically.
    let control = hook.writer_control();
    control.hold(true);
    let outcomes: Vec<StepOutcome> = (0..4).map(|s| hook.step(s, &m.vs).unwrap()).collect();
    control.hold(false);
    hook.flush().unwrap();
    assert_eq!(hook.step(4, &m.vs).unwrap(), StepOutcome::Queued);
    let stats = hook.finish().unwrap();
    assert_eq!(
        outcomes,
        [
            StepOutcome::Queued,
            StepOutcome::Skipped,
            StepOutcome::Skipped,
            StepOutcome::Skipped
        ]
    );
    assert_eq!((stats.queued, stats.skipped, stats.written), (2, 3, 2));
    let want: BTreeSet<String> = [0, 4].into_iter().map(name).collect();
    assert_eq!(all_files(&tmp.path().join("s")), want);
}

#[test]
fn when_behind_wait_waits_and_writes_every_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Model::new(16, 8);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("w")
        .every(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let control = hook.writer_control();
    control.hold(true);
    assert_eq!(hook.step(0, &m.vs).unwrap(), StepOutcome::Queued);
    let releaser = std::thread::spawn(move || {
        // Let the writer go only once the training thread is blocked waiting for the slot.
        while control.waiting_callers() == 0 {
            std::thread::yield_now();
        }
        control.hold(false);
    });
    let second = hook.step(1, &m.vs).unwrap();
    releaser.join().unwrap();
    assert!(matches!(second, StepOutcome::Waited(_)), "{second:?}");
    let stats = hook.finish().unwrap();
    assert_eq!((stats.queued, stats.waited, stats.skipped), (1, 1, 0));
    let want: BTreeSet<String> = (0..2).map(name).collect();
    assert_eq!(all_files(&tmp.path().join("w")), want);
}

#[test]
fn the_name_filter_and_dropping_the_hook_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Model::new(16, 6);
    {
        let mut hook = HtsrHook::builder()
            .dir(tmp.path())
            .run("f")
            .every(1)
            .filter(|n| n.starts_with("fc"))
            .build()
            .unwrap();
        hook.step(7, &m.vs).unwrap();
        // dropped here without finish(): the pending write must still complete
    }
    let bytes = fs::read(tmp.path().join("f").join(name(7))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names().into_iter().map(String::from).collect::<Vec<_>>();
    names.sort();
    assert_eq!(names, ["fc1.weight", "fc2.weight"]);
}
