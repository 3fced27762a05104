//! Keeps the plugin's shared library mapped after a host unloads it (`-z nodelete`).
//!
//! Hosts `dlclose` plugins, but Rust's thread-local destructors (registered by the inference
//! thread and by std) may still run afterwards; unmapping the code under them crashes the host.
//! A plugin that stays mapped costs a few megabytes of address space and nothing else.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
