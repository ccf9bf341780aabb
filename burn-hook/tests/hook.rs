//! The Burn hook in a hand-written training loop: file names, metadata and the model's bytes; keep-last-K;
//! back-pressure; I/O errors reported by the next call; and a step that is not a checkpoint doing no work.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use burn::optim::SgdConfig;
use common::{batch, device, linear_bytes, train_step, Mlp};
use htsr_burn_hook::{HookError, HtsrBurnHook, StepInfo, StepOutcome, WhenBehind};
use htsr_hook_core::test_support::{files, metadata, tensors};

fn name(step: u64) -> String {
    format!("step-{step:09}.safetensors")
}

/// The bytes a checkpoint of `m` should hold, by tensor name.
fn expected(m: &Mlp) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        ("fc1.weight".to_string(), linear_bytes(&m.fc1)),
        ("fc2.weight".to_string(), linear_bytes(&m.fc2)),
        ("out.weight".to_string(), linear_bytes(&m.out)),
    ])
}

#[test]
fn checkpoints_have_expected_names_metadata_and_the_models_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let data = batch(&device);
    let mut model = Mlp::new(24, &device);
    let mut optim = SgdConfig::new().init();
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("mlp")
        .every(5)
        .metadata("optimizer", "sgd")
        .metadata("htsr.note", "test")
        .build()
        .unwrap();
    let mut want = BTreeMap::new();
    let mut loss = f64::NAN;
    for step in 0..23u64 {
        let info = StepInfo::new()
            .epoch(step / 10)
            .loss(loss)
            .lr(0.05)
            .batch_size(64);
        let outcome = hook.step_with(step, &model, info).unwrap();
        if step % 5 == 0 {
            assert!(
                matches!(outcome, StepOutcome::Queued | StepOutcome::Waited(_)),
                "step {step}: {outcome:?}"
            );
            want.insert(step, (expected(&model), loss));
        } else {
            assert_eq!(outcome, StepOutcome::NotDue, "step {step}");
        }
        (model, loss) = train_step(model, &mut optim, &data);
    }
    let outcome = hook
        .epoch_end(23, &model, StepInfo::new().epoch(2))
        .unwrap();
    assert!(matches!(
        outcome,
        StepOutcome::Queued | StepOutcome::Waited(_)
    ));
    want.insert(23, (expected(&model), f64::NAN));
    assert_eq!(
        hook.epoch_end(23, &model, StepInfo::new()).unwrap(),
        StepOutcome::NotDue,
        "a second call for the same step writes nothing more"
    );
    let stats = hook.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (6, 0));

    let dir = tmp.path().join("mlp");
    let names: BTreeSet<String> = want.keys().map(|&s| name(s)).collect();
    assert_eq!(files(&dir), names, "no temporary file may remain");
    for (step, (weights, loss)) in &want {
        let path = dir.join(name(*step));
        let meta = metadata(&path);
        assert_eq!(meta["htsr.step"], step.to_string());
        assert_eq!(meta["htsr.run"], "mlp");
        assert_eq!(meta["htsr.optimizer"], "sgd");
        assert_eq!(meta["htsr.note"], "test");
        assert!(meta["htsr.wall_time"].parse::<f64>().unwrap() > 1.6e9);
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
        let file: BTreeMap<String, Vec<u8>> = tensors(&path)
            .into_iter()
            .map(|(n, (dtype, _, bytes))| {
                assert_eq!(dtype, safetensors::Dtype::F32);
                (n, bytes)
            })
            .collect();
        assert_eq!(
            &file, weights,
            "step {step}: the model's weights, biases left out"
        );
    }
    assert_ne!(
        want[&0].0["fc1.weight"], want[&20].0["fc1.weight"],
        "training moved the weights"
    );
}

#[test]
fn a_step_that_is_not_a_checkpoint_does_no_work() {
    let tmp = tempfile::tempdir().unwrap();
    // Fresh Burn parameters are lazy: nothing reads them until a snapshot does.
    let model = Mlp::new(16, &device());
    assert!(!model.fc1.weight.is_initialized());
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("idle")
        .every(10)
        .build()
        .unwrap();
    let before = hook.stats();
    for step in 1..10u64 {
        assert!(!hook.is_due(step));
        assert_eq!(hook.step(step, &model).unwrap(), StepOutcome::NotDue);
    }
    hook.flush().unwrap();
    assert_eq!(hook.stats(), before, "no snapshot queued, no file written");
    assert!(
        !model.fc1.weight.is_initialized() && !model.out.weight.is_initialized(),
        "the model was not visited"
    );
    assert!(files(&tmp.path().join("idle")).is_empty());
    // The due step reads them.
    assert!(hook.is_due(10));
    hook.step(10, &model).unwrap();
    assert!(model.fc1.weight.is_initialized());
    assert!(!hook.is_due(10), "a step is checkpointed once");
    assert_eq!(hook.finish().unwrap().written, 1);
}

#[test]
fn keep_last_k_keeps_exactly_the_k_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let data = batch(&device);
    let mut model = Mlp::new(16, &device);
    let mut optim = SgdConfig::new().init();
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("k")
        .every(2)
        .keep_last(3)
        .build()
        .unwrap();
    for step in 0..20u64 {
        hook.step(step, &model).unwrap();
        model = train_step(model, &mut optim, &data).0;
    }
    hook.finish().unwrap();
    let want: BTreeSet<String> = [14, 16, 18].into_iter().map(name).collect();
    assert_eq!(files(&tmp.path().join("k")), want);
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-regular-file");
    fs::write(&file, b"not a directory").unwrap();
    let err = HtsrBurnHook::builder()
        .dir(&file)
        .run("r")
        .every(1)
        .build()
        .unwrap_err();
    assert!(matches!(err, HookError::CreateDir { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cannot create checkpoint directory") && msg.contains("a-regular-file"));
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
}

#[test]
fn a_write_failure_mid_training_is_returned_by_the_next_call_and_leaves_no_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("r");
    let device = device();
    let data = batch(&device);
    let mut model = Mlp::new(16, &device);
    let mut optim = SgdConfig::new().init();
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("r")
        .every(1)
        .build()
        .unwrap();
    for step in 0..3u64 {
        hook.step(step, &model).unwrap();
        model = train_step(model, &mut optim, &data).0;
    }
    hook.flush().unwrap();
    assert_eq!(files(&dir).len(), 3);
    // The run directory disappears and a regular file takes its place: every write now fails.
    fs::remove_dir_all(&dir).unwrap();
    fs::write(&dir, b"in the way").unwrap();
    let mut errors = Vec::new();
    for step in 3..8u64 {
        // Each failure surfaces exactly once: in the next call, or at the flush.
        match hook.step(step, &model) {
            Ok(outcome) => assert_eq!(outcome, StepOutcome::Queued),
            Err(e) => errors.push(e),
        }
        model = train_step(model, &mut optim, &data).0;
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
        assert!(!message.is_empty());
    }
    assert!(
        fs::metadata(&dir).unwrap().is_file(),
        "nothing was written in place of the obstacle"
    );
    // The directory comes back: later checkpoints are written again.
    fs::remove_file(&dir).unwrap();
    fs::create_dir(&dir).unwrap();
    for step in 8..10u64 {
        hook.step(step, &model).unwrap();
    }
    let stats = hook.finish().unwrap();
    assert_eq!(stats.failed, 5);
    let want: BTreeSet<String> = [8, 9].into_iter().map(name).collect();
    assert_eq!(files(&dir), want);
}

#[test]
fn when_behind_skip_skips_and_wait_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Mlp::new(16, &device());
    let mut hook = HtsrBurnHook::builder()
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
    let outcomes: Vec<StepOutcome> = (0..4).map(|s| hook.step(s, &model).unwrap()).collect();
    control.hold(false);
    hook.flush().unwrap();
    assert_eq!(hook.step(4, &model).unwrap(), StepOutcome::Queued);
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
    assert_eq!(files(&tmp.path().join("s")), want);

    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("w")
        .every(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let control = hook.writer_control();
    control.hold(true);
    assert_eq!(hook.step(0, &model).unwrap(), StepOutcome::Queued);
    let releaser = std::thread::spawn(move || {
        while control.waiting_callers() == 0 {
            std::thread::yield_now();
        }
        control.hold(false);
    });
    let second = hook.step(1, &model).unwrap();
    releaser.join().unwrap();
    assert!(matches!(second, StepOutcome::Waited(_)), "{second:?}");
    let stats = hook.finish().unwrap();
    assert_eq!((stats.queued, stats.waited, stats.skipped), (1, 1, 0));
    assert_eq!(files(&tmp.path().join("w")).len(), 2);
}

#[test]
fn dropping_the_hook_flushes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Mlp::new(16, &device());
    {
        let mut hook = HtsrBurnHook::builder()
            .dir(tmp.path())
            .run("f")
            .every(1)
            .build()
            .unwrap();
        hook.step(7, &model).unwrap();
        // dropped here without finish(): the pending write must still complete
    }
    let names: Vec<String> = tensors(&tmp.path().join("f").join(name(7)))
        .into_keys()
        .collect();
    assert_eq!(names, ["fc1.weight", "fc2.weight", "out.weight"]);
}
