//! HTSR_DIR, HTSR_RUN and HTSR_EVERY configure the hook; explicit builder calls win. (Its own test binary: it
//! changes the process environment.)

use htsr_tch_hook::{HookError, HtsrHook, StepOutcome};

#[test]
fn environment_variables_configure_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _w = vs.root().randn("w", &[4, 3], 0.0, 1.0);
    std::env::set_var("HTSR_DIR", tmp.path());
    std::env::set_var("HTSR_RUN", "from-env");
    std::env::set_var("HTSR_EVERY", "3");
    let mut hook = HtsrHook::builder().build().unwrap();
    assert_eq!(hook.run(), "from-env");
    assert_eq!(hook.every(), 3);
    assert_eq!(hook.run_dir(), tmp.path().join("from-env"));
    let outcomes: Vec<_> = (0..4).map(|s| hook.step(s, &vs).unwrap()).collect();
    assert_eq!(outcomes[1], StepOutcome::NotDue);
    assert_eq!(outcomes[2], StepOutcome::NotDue);
    assert_ne!(outcomes[3], StepOutcome::NotDue);
    hook.finish().unwrap();
    assert!(tmp
        .path()
        .join("from-env/step-000000003.safetensors")
        .is_file());

    // Explicit calls override the environment.
    let hook = HtsrHook::builder()
        .run("explicit")
        .every(7)
        .build()
        .unwrap();
    assert_eq!((hook.run(), hook.every()), ("explicit", 7));
    drop(hook);

    // A malformed HTSR_EVERY is a clear configuration error.
    std::env::set_var("HTSR_EVERY", "often");
    let err = HtsrHook::builder().build().unwrap_err();
    assert!(matches!(err, HookError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("HTSR_EVERY"), "{err}");
    for k in ["HTSR_DIR", "HTSR_RUN", "HTSR_EVERY"] {
        std::env::remove_var(k);
    }
}
