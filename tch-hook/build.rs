// Puts libtorch's lib folder in the run path of this crate's test, bench and example binaries, so they run
// without LD_LIBRARY_PATH. torch-sys reports the folder it linked against as DEP_TCH_LIBTORCH_LIB. The path is
// kept as given (through the `.venv/libtorch` link), not resolved, so that rebuilding the virtual environment
// with another Python does not leave binaries pointing at a folder that is gone.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Some(dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!(
            "cargo:rustc-link-arg=-Wl,-rpath,{}",
            std::path::Path::new(&dir).display()
        );
    }
}
