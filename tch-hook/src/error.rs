//! The hook's errors: configuration, the run directory, a snapshot libtorch refused, and the writer's errors (one
//! type for every htsr hook, defined in htsr-hook-core).

pub use htsr_hook_core::HookError;
