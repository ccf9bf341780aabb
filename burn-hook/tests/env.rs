//! HTSR_DIR, HTSR_RUN, HTSR_EVERY and HTSR_MODE configure the hook; explicit builder calls win. (Its own test
//! binary: it changes the process environment.)

mod common;

use htsr_burn_hook::{HookError, HtsrBurnHook, Mode, StepOutcome};

#[test]
fn environment_variables_configure_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::Mlp::new(8, &common::device());
    std::env::set_var("HTSR_DIR", tmp.path());
    std::env::set_var("HTSR_RUN", "from-env");
    std::env::set_var("HTSR_EVERY", "3");
    std::env::set_var("HTSR_MODE", "both");
    let mut hook = HtsrBurnHook::builder().build().unwrap();
    assert_eq!(
        (hook.run(), hook.every(), hook.mode()),
        ("from-env", 3, Mode::Both)
    );
    assert_eq!(hook.run_dir(), tmp.path().join("from-env"));
    let outcomes: Vec<_> = (0..4).map(|s| hook.step(s, &model).unwrap()).collect();
    assert_eq!(outcomes[1], StepOutcome::NotDue);
    assert_eq!(outcomes[2], StepOutcome::NotDue);
    assert_ne!(outcomes[3], StepOutcome::NotDue);
    hook.finish().unwrap();
    for file in [
        "step-000000003.safetensors",
        "step-000000003.esd.safetensors",
    ] {
        assert!(tmp.path().join("from-env").join(file).is_file(), "{file}");
    }

    // Explicit calls override the environment.
    let hook = HtsrBurnHook::builder()
        .run("explicit")
        .every(7)
        .mode(Mode::Weights)
        .build()
        .unwrap();
    assert_eq!(
        (hook.run(), hook.every(), hook.mode()),
        ("explicit", 7, Mode::Weights)
    );
    drop(hook);

    // Malformed values are clear configuration errors, unless the builder sets the option itself.
    std::env::set_var("HTSR_EVERY", "often");
    let err = HtsrBurnHook::builder().build().unwrap_err();
    assert!(matches!(err, HookError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("HTSR_EVERY"), "{err}");
    assert!(HtsrBurnHook::builder().every(2).build().is_ok());
    std::env::set_var("HTSR_EVERY", "3");
    std::env::set_var("HTSR_MODE", "eigen");
    let err = HtsrBurnHook::builder().build().unwrap_err();
    assert!(err.to_string().contains("HTSR_MODE"), "{err}");
    assert!(HtsrBurnHook::builder().mode(Mode::Spectra).build().is_ok());
    // A rank that is not a rank of the world, from a launcher's environment.
    std::env::set_var("HTSR_MODE", "weights");
    std::env::set_var("RANK", "2");
    std::env::set_var("WORLD_SIZE", "2");
    let err = HtsrBurnHook::builder().build().unwrap_err();
    assert!(err.to_string().contains("RANK"), "{err}");
    for k in [
        "HTSR_DIR",
        "HTSR_RUN",
        "HTSR_EVERY",
        "HTSR_MODE",
        "RANK",
        "WORLD_SIZE",
    ] {
        std::env::remove_var(k);
    }
}
